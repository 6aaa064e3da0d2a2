//! The conventions a user meets first, checked on every Moho binary as
//! built: no ANSI escape on a stderr that is not a terminal (colour on a
//! terminal, unless `NO_COLOR`), JSON log lines on request, and a stdout
//! closed by its reader (`... | head -1`) ends every printing command
//! quietly, with success and without a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use moho_e2e::local_server::LocalServer;
use moho_e2e::{assert_quiet_end, bin, make_disk, ok, with_closed_stdout};

/// A D-Bus address with nobody behind it: the agent's CLI then logs that
/// the daemon is not reachable (whatever this machine runs).
const NO_BUS: &str = "unix:path=/nonexistent/moho-test-bus";

fn assert_no_ansi(what: &str, stderr: &[u8]) {
    assert!(
        !stderr.contains(&0x1b),
        "{what}: ANSI escape on a stderr that is not a terminal:\n{}",
        String::from_utf8_lossy(stderr).escape_debug()
    );
}

/// A scratch node: a disk image with a good slot A, and a config directory
/// whose state directory is inside the scratch directory.
struct Scratch {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    disk: PathBuf,
    config_dir: PathBuf,
    /// An empty signed repository.
    repo: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let disk = make_disk(&dir, "disk.img", "256M", "64MiB");
        let keys = dir.join("keys");
        let repo = dir.join("repo");
        ok(
            bin("image-tools"),
            [
                OsString::from("keygen"),
                "--out".into(),
                keys.clone().into(),
            ],
        );
        ok(
            bin("image-tools"),
            [
                OsString::from("repo"),
                "init".into(),
                "--repo".into(),
                repo.clone().into(),
                "--keys".into(),
                keys.into(),
            ],
        );
        let config_dir = dir.join("agent.d");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::write(
            config_dir.join("10-test.toml"),
            format!(
                "[repository]\nurl = \"http://127.0.0.1:9/repo/\"\nroot = \"{}\"\n\
                 [node]\nboard = \"amd64-generic\"\n[agent]\nstate_dir = \"{}\"\n",
                repo.join("metadata/1.root.json").display(),
                dir.join("state").display()
            ),
        )
        .unwrap();
        Scratch {
            _tmp: tmp,
            dir,
            disk,
            config_dir,
            repo,
        }
    }

    /// `update-agent --config-dir C --booted A ARGS`, off any real bus.
    fn agent(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("update-agent"));
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", NO_BUS)
            .env_remove("MOHO_LOG")
            .env_remove("MOHO_LOG_FORMAT")
            .env_remove("NO_COLOR")
            .arg("--config-dir")
            .arg(&self.config_dir)
            .args(["--booted", "A"])
            .args(args);
        cmd
    }

    fn disk_arg(&self) -> OsString {
        self.disk.clone().into_os_string()
    }

    /// Makes the booted slot A unblessed again, so that `mark-good` has
    /// work to do (and logs that the daemon is not reachable).
    fn unbless(&self) {
        let out = self
            .agent(&["slots", "set", "A", "--successful", "false"])
            .arg("--disk")
            .arg(&self.disk)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    /// The repository's trusted root.
    fn root(&self) -> PathBuf {
        self.repo.join("metadata/1.root.json")
    }
}

/// `moho-admin` with the server and its admin token from the environment.
fn admin(server: &LocalServer) -> Command {
    let mut cmd = Command::new(bin("moho-admin"));
    cmd.env("MOHO_SERVER", server.base())
        .env("MOHO_TOKEN", &server.admin_token)
        .env("HOME", &server.data_dir)
        .env_remove("MOHO_ADMIN_CONFIG")
        .env_remove("MOHO_TOKEN_FILE");
    cmd
}

fn image_tools(args: &[&Path]) -> Command {
    let mut cmd = Command::new(bin("image-tools"));
    cmd.env_remove("MOHO_LOG").args(args);
    cmd
}

#[test]
fn every_printing_command_ends_quietly_when_its_reader_goes_away() {
    let s = Scratch::new();
    let disk = s.disk_arg();
    let disk = disk.to_str().unwrap();
    let agent_cmds: &[&[&str]] = &[
        &["--help"],
        &["slots", "--help"],
        &["slots", "--disk", disk],
        &["slots", "--disk", disk, "--json"],
        &["slots", "--disk", disk, "next"],
        &["config"],
        &["config", "--json"],
        &["denylist"],
        &["denylist", "--json"],
        &["mark-good", "--disk", disk],
    ];
    for args in agent_cmds {
        if args[0] == "mark-good" {
            s.unbless();
        }
        let out = with_closed_stdout(&mut s.agent(args));
        assert_quiet_end(&format!("update-agent {}", args.join(" ")), &out);
    }
    // mark-good did its work before it found nobody reading.
    let slots: serde_json::Value = serde_json::from_str(&ok(
        bin("update-agent"),
        ["--booted", "A", "slots", "--json", "--disk", disk],
    ))
    .unwrap();
    assert!(slots.to_string().contains("\"successful\":true"), "{slots}");

    let (repo, root) = (s.repo.clone(), s.root());
    let keys2 = s.dir.join("keys2");
    let image_cmds: Vec<Vec<&Path>> = vec![
        vec![Path::new("--help")],
        vec![
            Path::new("repo"),
            Path::new("list"),
            Path::new("--repo"),
            &repo,
        ],
        vec![
            Path::new("repo"),
            Path::new("list"),
            Path::new("--json"),
            Path::new("--repo"),
            &repo,
        ],
        vec![
            Path::new("verify"),
            Path::new("--repo"),
            &repo,
            Path::new("--root"),
            &root,
        ],
        vec![Path::new("keygen"), Path::new("--out"), &keys2],
    ];
    for args in &image_cmds {
        let out = with_closed_stdout(&mut image_tools(args));
        let shown: Vec<_> = args.iter().map(|a| a.display().to_string()).collect();
        assert_quiet_end(&format!("image-tools {}", shown.join(" ")), &out);
    }
    assert!(keys2.join("root-1.pem").exists(), "keygen wrote its keys");

    let data = s.dir.join("server");
    let server_cmds: Vec<Vec<&Path>> = vec![
        vec![Path::new("--help")],
        vec![
            Path::new("token"),
            Path::new("create"),
            Path::new("--role"),
            Path::new("viewer"),
            Path::new("--data-dir"),
            &data,
        ],
        vec![
            Path::new("token"),
            Path::new("list"),
            Path::new("--all"),
            Path::new("--data-dir"),
            &data,
        ],
        vec![
            Path::new("token"),
            Path::new("list"),
            Path::new("--json"),
            Path::new("--data-dir"),
            &data,
        ],
    ];
    for args in &server_cmds {
        let mut cmd = Command::new(bin("update-server"));
        let out = with_closed_stdout(cmd.args(args));
        let shown: Vec<_> = args.iter().map(|a| a.display().to_string()).collect();
        assert_quiet_end(&format!("update-server {}", shown.join(" ")), &out);
    }
    let out = with_closed_stdout(Command::new(bin("moho-loadgen")).arg("--help"));
    assert_quiet_end("moho-loadgen --help", &out);

    // moho-admin against the real server: every listing, as text and JSON,
    // and the live event stream.
    let server = LocalServer::start(&s.dir.join("live"), &s.repo, &s.root());
    let admin_cmds: &[&[&str]] = &[
        &["--help"],
        &["channels", "list"],
        &["groups", "list"],
        &["groups", "show", "default"],
        &["releases", "list"],
        &["rollouts", "list"],
        &["holds", "list"],
        &["nodes", "list"],
        &["fleetlock", "holders"],
        &["tokens", "list"],
        &["audit"],
        &["events"],
        &["whoami"],
    ];
    for args in admin_cmds {
        for json in [false, true] {
            let out = with_closed_stdout(admin(&server).args(*args).args(json.then_some("--json")));
            let json = if json { " --json" } else { "" };
            assert_quiet_end(&format!("moho-admin {}{json}", args.join(" ")), &out);
        }
    }
    // The live stream finds its reader gone at its first line (the header;
    // as JSON lines it has none, and like `tail -f` it notices only when
    // an event comes).
    let out =
        with_closed_stdout(admin(&server).args(["events", "--follow", "--interval", "100ms"]));
    assert_quiet_end("moho-admin events --follow", &out);

    // The benchmark tool's figures, one line per page measured.
    let base = server.base();
    let out = with_closed_stdout(Command::new(bin("moho-loadgen")).args([
        "dashboard",
        "--server",
        base.trim_end_matches('/'),
        "--token",
        &server.viewer_token,
        "--requests",
        "1",
        "/ui/",
        "/ui/nodes",
    ]));
    assert_quiet_end("moho-loadgen dashboard", &out);

    // What a user types: the shell's own pipe, status of the Moho command.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {} --booted A slots --disk {disk} | head -1 >/dev/null",
            bin("update-agent").display()
        ))
        .output()
        .unwrap();
    assert_quiet_end("update-agent slots (bash pipe)", &out);
}

#[test]
fn logs_are_plain_off_a_terminal_coloured_on_one_and_json_on_request() {
    let s = Scratch::new();
    let disk = s.disk_arg();
    let disk = disk.to_str().unwrap();

    // update-agent: mark-good logs that the daemon is not reachable.
    s.unbless();
    let out = s
        .agent(&["mark-good", "--disk", disk])
        .env("MOHO_LOG", "debug")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INFO"), "no log line to check:\n{stderr}");
    assert_no_ansi("update-agent mark-good", &out.stderr);

    s.unbless();
    let out = s
        .agent(&["--log-format", "json", "mark-good", "--disk", disk])
        .env("MOHO_LOG", "debug")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "INFO" && l["message"].as_str().is_some()),
        "{lines:?}"
    );

    // On a terminal (script(1) gives the agent one) colour is used, and
    // NO_COLOR turns it off.
    let on_terminal = |no_color: bool| {
        s.unbless();
        let agent = s.agent(&["mark-good", "--disk", disk]);
        let mut line = format!("MOHO_LOG=debug DBUS_SYSTEM_BUS_ADDRESS={NO_BUS} ");
        if no_color {
            line.push_str("NO_COLOR=1 ");
        }
        line.push_str(&agent.get_program().to_string_lossy());
        for a in agent.get_args() {
            line.push(' ');
            line.push_str(&a.to_string_lossy());
        }
        line.push_str(" >/dev/null");
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains("INFO"),
            "no log line on the terminal: {text:?}"
        );
        text
    };
    assert!(
        on_terminal(false).contains('\x1b'),
        "no colour on a terminal"
    );
    assert!(
        !on_terminal(true).contains('\x1b'),
        "colour despite NO_COLOR"
    );

    // image-tools: the HTTP client's debug lines (MOHO_LOG) on the way to
    // a repository that is not there.
    let root = s.root();
    let out = image_tools(&[
        Path::new("verify"),
        Path::new("--repo"),
        Path::new("http://127.0.0.1:9/"),
        Path::new("--root"),
        &root,
    ])
    .env("MOHO_LOG", "debug")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("DEBUG") && stderr.contains("error"),
        "no log line or error to check: {out:?}"
    );
    assert_no_ansi("image-tools verify", &out.stderr);
    // As JSON: every log line is an object; only the final error report
    // (the program's message, not a log line) is plain text.
    let out = image_tools(&[
        Path::new("--log-format"),
        Path::new("json"),
        Path::new("verify"),
        Path::new("--repo"),
        Path::new("http://127.0.0.1:9/"),
        Path::new("--root"),
        &root,
    ])
    .env("MOHO_LOG", "debug")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        logs.iter().any(|l| l["level"] == "DEBUG"),
        "no JSON log line: {stderr}"
    );
    assert!(
        !stderr.lines().any(|l| l.contains(" DEBUG ")),
        "a text log line among the JSON ones: {stderr}"
    );

    // moho-admin: its errors (a server that is not there, a bad argument).
    for args in [
        &[
            "--server",
            "http://127.0.0.1:9/",
            "--token",
            "t",
            "channels",
            "list",
        ][..],
        &["channels", "no-such-command"][..],
    ] {
        let out = Command::new(bin("moho-admin"))
            .args(args)
            .env("HOME", &s.dir)
            .env_remove("MOHO_ADMIN_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && !stderr.is_empty(),
            "no error to check: {out:?}"
        );
        assert_no_ansi(&format!("moho-admin {}", args.join(" ")), &out.stderr);
    }

    // update-server: its start-up lines, text and JSON.
    for json in [false, true] {
        let mut cmd = Command::new(bin("update-server"));
        if json {
            cmd.args(["--log-format", "json"]);
        }
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(s.dir.join(format!("server-{json}")))
            .env_remove("RUST_LOG")
            .env_remove("MOHO_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        for line in BufReader::new(child.stderr.take().unwrap()).split(b'\n') {
            let line = line.unwrap();
            let done = String::from_utf8_lossy(&line).contains("listening on");
            lines.push(line);
            if done {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let all = lines.join(&b'\n');
        assert!(
            String::from_utf8_lossy(&all).contains("listening on"),
            "update-server never said it was listening:\n{}",
            String::from_utf8_lossy(&all)
        );
        assert_no_ansi("update-server serve", &all);
        if json {
            for l in &lines {
                let v: serde_json::Value = serde_json::from_slice(l)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(l)));
                assert!(v["level"].is_string() && v["timestamp"].is_string(), "{v}");
            }
        }
    }
}
