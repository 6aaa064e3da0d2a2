//! The files in `systemd/` as the system would load them: the units pass
//! `systemd-analyze verify`, the D-Bus policy is accepted by `dbus-daemon`,
//! the tmpfiles entry creates the state directory root-only, the server's
//! sysusers and tmpfiles entries make its user and directories, its unit
//! is hardened (`systemd-analyze security`), and the default config drop-in
//! validates once an image adds its own keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use moho_e2e::bin;

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd")
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = bin("update-agent");
    let server = bin("update-server");
    let mut units = Vec::new();
    for f in [
        "moho-agent.service",
        "moho-mark-good.service",
        "moho-grow-state.service",
        "moho-provision.service",
        "moho-ssh-host-keys.service",
        "examples/moho-health-check.service",
        "update-server.service",
    ] {
        let text = std::fs::read_to_string(systemd_dir().join(f)).unwrap();
        // verify checks that ExecStart exists: point it at the built binary.
        let text = text
            .replace("/usr/bin/update-agent", agent.to_str().unwrap())
            .replace("/usr/bin/update-server", server.to_str().unwrap());
        let name = Path::new(f).file_name().unwrap();
        let out = tmp.path().join(name);
        std::fs::write(&out, text).unwrap();
        units.push(out);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    // Warnings count too: nothing in our units may be questionable.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("moho-") || l.contains("update-server"))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
    let agent_unit = std::fs::read_to_string(systemd_dir().join("moho-agent.service")).unwrap();
    for needed in [
        "Type=notify",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=CAP_SYS_ADMIN CAP_SYS_BOOT\n",
        "WatchdogSec=",
    ] {
        assert!(
            agent_unit.contains(needed),
            "moho-agent.service lacks {needed}"
        );
    }
    let mark_good = std::fs::read_to_string(systemd_dir().join("moho-mark-good.service")).unwrap();
    assert!(mark_good.contains("After=boot-complete.target"));
    // multi-user.target must not wait for it (and so for the health
    // checks): a hanging check would hold the whole boot.
    assert!(mark_good.contains("DefaultDependencies=no"));
    let grow = std::fs::read_to_string(systemd_dir().join("moho-grow-state.service")).unwrap();
    for needed in [
        "RequiresMountsFor=/var",
        "Before=moho-agent.service",
        "ExecStart=/usr/bin/update-agent grow-state",
        "WantedBy=local-fs.target",
    ] {
        assert!(
            grow.contains(needed),
            "moho-grow-state.service lacks {needed}"
        );
    }
    assert!(agent_unit.contains("Requires=moho-provision.service"));
    let provision = std::fs::read_to_string(systemd_dir().join("moho-provision.service")).unwrap();
    for needed in [
        "Before=moho-agent.service",
        "ExecStart=/usr/bin/update-agent provision",
        "StandardOutput=journal+console",
    ] {
        assert!(
            provision.contains(needed),
            "moho-provision.service lacks {needed}"
        );
    }
    let check =
        std::fs::read_to_string(systemd_dir().join("examples/moho-health-check.service")).unwrap();
    assert!(check.contains("Before=boot-complete.target"));
    assert!(check.contains("RequiredBy=boot-complete.target"));
}

#[test]
fn the_server_unit_is_a_hardened_notify_service() {
    let text = std::fs::read_to_string(systemd_dir().join("update-server.service")).unwrap();
    for needed in [
        "Type=notify",
        "NotifyAccess=main",
        "User=moho-server",
        "ExecReload=/bin/sh -c 'kill -HUP $$MAINPID'",
        "StateDirectory=moho-server",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
    ] {
        assert!(
            text.contains(needed),
            "update-server.service lacks {needed}"
        );
    }
    // The stop timeout leaves room for the drain (--drain-timeout, 30 s).
    assert!(text.contains("TimeoutStopSec=2min"));
    let tmp = tempfile::tempdir().unwrap();
    let unit = tmp.path().join("update-server.service");
    std::fs::write(&unit, text.replace("/usr/bin/update-server", "/bin/true")).unwrap();
    // Exposure 2.0 of 10 at most ("OK"; the agent's, which must write the
    // boot disk and reboot, is higher).
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sysusers_and_tmpfiles_make_the_servers_user_and_directories() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(systemd_dir().join("update-server.sysusers"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("moho-server:"))
        .unwrap_or_else(|| panic!("no moho-server user in {passwd}"));
    let uid: u32 = line.split(':').nth(2).unwrap().parse().unwrap();
    assert!(
        line.ends_with(":/var/lib/moho-server:/usr/sbin/nologin"),
        "{line}"
    );
    let out = Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", root.path().display()))
        .arg("--create")
        .arg(systemd_dir().join("update-server.tmpfiles"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = std::fs::metadata(root.path().join("var/lib/moho-server")).unwrap();
    assert_eq!(data.permissions().mode() & 0o777, 0o700);
    assert_eq!(data.uid(), uid);
    let conf = std::fs::metadata(root.path().join("etc/moho/update-server")).unwrap();
    assert_eq!(conf.permissions().mode() & 0o777, 0o750);
    assert_eq!(conf.uid(), 0);
}

#[test]
fn the_dbus_policy_loads_into_a_bus() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\" \
             \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n\
             <listen>unix:path={}</listen>\n<auth>EXTERNAL</auth>\n<include>{}</include>\n</busconfig>\n",
            tmp.path().join("sock").display(),
            systemd_dir().join("org.moho.Agent1.conf").display()
        ),
    )
    .unwrap();
    // --print-address is written once the configuration is loaded.
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--print-address"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        line.starts_with("unix:"),
        "dbus-daemon refused the policy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tmpfiles_makes_the_state_directory_root_only() {
    let root = tempfile::tempdir().unwrap();
    let out = Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", root.path().display()))
        .arg("--create")
        .arg(systemd_dir().join("moho.tmpfiles"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(root.path().join("var/lib/moho")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert!(root.path().join("etc/moho/agent.d").is_dir());
}

#[test]
fn the_default_dropin_validates_with_an_images_own_keys() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("60-image.toml"),
        "[repository]\nurl = \"https://updates.example.com/repo/\"\n\
         root = \"/usr/share/moho/root.json\"\n[node]\nboard = \"amd64-generic\"\n",
    )
    .unwrap();
    let out = Command::new(bin("update-agent"))
        .arg("--config-dir")
        .arg(systemd_dir().join("agent.d"))
        .arg("--config-dir")
        .arg(tmp.path())
        .args(["config", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = v.to_string();
    assert!(text.contains("\"immediate\""), "{text}");
    assert!(text.contains("50-defaults.toml"), "{text}");
}
