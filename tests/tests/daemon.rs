//! The update daemon end to end (issue 6): the real `update-server` over
//! HTTPS, a real `dbus-daemon` as the system bus with a fake logind on it,
//! the daemon running in this process with an injected clock, its disk on
//! a loop device, and `update-agent status|mark-good` as a user runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use moho_e2e::dbus_env::{FakeLogind, TestBus};
use moho_e2e::fleet::{ReleaseRepo, payload};
use moho_e2e::vm::server::UpdateServer;
use moho_e2e::{
    LoopDevice, assert_quiet_end, bin, ok, require_root, slot_fields, slots_json,
    with_closed_stdout,
};
use serde_json::{Value, json};
use update_agent::daemon::clock::TestClock;
use update_agent::daemon::commands::{Command as DaemonCommand, Request};
use update_agent::daemon::runner::Daemon;
use update_agent::daemon::status::StatusHandle;
use update_agent::daemon_cmd::DaemonArgs;

const BOARD: &str = "daemon-test";

/// Server, repository, bus and logind shared by one test.
struct Fleet {
    dir: PathBuf,
    repo: ReleaseRepo,
    server: UpdateServer,
    bus: TestBus,
    logind: FakeLogind,
    _logind_conn: zbus::blocking::Connection,
    v1: PathBuf,
}

impl Fleet {
    fn new(dir: &Path) -> Self {
        let repo = ReleaseRepo::new(&dir.join("rel"), BOARD);
        let v1 = repo.build("1.0.0", &payload(3 << 20, 1));
        let v2 = repo.build("1.1.0", &payload(3 << 20, 2));
        repo.add(&v1, &["stable"]);
        repo.add(&v2, &["stable"]);
        let server = UpdateServer::start(&dir.join("server"), &repo.repo, &repo.root());
        let bus = TestBus::start(&dir.join("bus"));
        let logind = FakeLogind::default();
        let logind_conn = logind.serve(&bus);
        let fleet = Self {
            dir: dir.to_owned(),
            repo,
            server,
            bus,
            logind,
            _logind_conn: logind_conn,
            v1,
        };
        fleet.server.sync_releases();
        fleet
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.server.api(method, path, body)
    }

    fn rollout(&self, version: &str) -> i64 {
        self.server.rollout(version, BOARD)
    }

    fn rollout_stats(&self, id: i64) -> Value {
        self.server.rollout_stats(id)
    }

    fn base(&self) -> String {
        self.server.base()
    }
}

/// One node: disk on a loop device, config, state.
struct Node {
    config_dir: PathBuf,
    state_dir: PathBuf,
    os_release: PathBuf,
    dev: LoopDevice,
    id: String,
}

impl Node {
    fn new(fleet: &Fleet, name: &str, reboot: &str) -> Self {
        let dir = fleet.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let disk = dir.join("disk.img");
        ok(
            bin("image-tools"),
            [
                OsStr::new("disk"),
                OsStr::new("create"),
                OsStr::new("--out"),
                disk.as_os_str(),
                OsStr::new("--size"),
                OsStr::new("200M"),
                OsStr::new("--slot-size"),
                OsStr::new("48M"),
                OsStr::new("--slot-a"),
                fleet.v1.as_os_str(),
                OsStr::new("--force"),
            ],
        );
        let dev = LoopDevice::attach(&disk);
        let config_dir = dir.join("agent.d");
        let state_dir = dir.join("state");
        let os_release = dir.join("os-release");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::write(&os_release, "VERSION_ID=1.0.0\n").unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, &fleet.server.ca_pem).unwrap();
        let id = format!("node-{name}");
        std::fs::write(
            config_dir.join("10-test.toml"),
            format!(
                "[repository]\nurl = \"{base}repo/\"\nroot = \"{root}\"\nca_cert = \"{ca}\"\n\
                 [server]\nurl = \"{base}\"\nca_cert = \"{ca}\"\n\
                 [node]\nboard = \"{BOARD}\"\nchannel = \"stable\"\nos_release = \"{osr}\"\n\
                 disk = \"{disk}\"\nid = \"{id}\"\n[agent]\nstate_dir = \"{state}\"\n\
                 [update]\ncheck_interval = \"10s\"\ndownload_attempts = 3\n\
                 download_backoff = \"100ms\"\n{reboot}",
                base = fleet.base(),
                root = fleet.repo.root().display(),
                ca = ca.display(),
                osr = os_release.display(),
                disk = dev.path.display(),
                state = state_dir.display(),
            ),
        )
        .unwrap();
        Self {
            config_dir,
            state_dir,
            os_release,
            dev,
            id,
        }
    }

    fn slots(&self, booted: &str) -> Value {
        slots_json(&self.dev.path, Some(booted))
    }

    /// What the boot selector does at boot: choose, use a try, write.
    fn boot(&self) -> String {
        ok(
            bin("update-agent"),
            [
                OsStr::new("slots"),
                OsStr::new("--disk"),
                self.dev.path.as_os_str(),
                OsStr::new("boot"),
            ],
        )
        .trim()
        .to_owned()
    }

    fn agent(&self, bus: &TestBus, booted: &str, args: &[&str]) -> std::process::Output {
        Command::new(bin("update-agent"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .arg("--config-dir")
            .arg(&self.config_dir)
            .args(["--booted", booted])
            .args(args)
            .output()
            .unwrap()
    }

    fn status(&self, bus: &TestBus) -> Value {
        let out = self.agent(bus, "A", &["status", "--json"]);
        assert!(
            out.status.success(),
            "update-agent status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The daemon, in this process, on the test bus.
struct RunningDaemon {
    tx: mpsc::Sender<Request>,
    thread: Option<JoinHandle<()>>,
    conn: zbus::blocking::Connection,
}

impl RunningDaemon {
    fn start(fleet: &Fleet, node: &Node, booted: &str, clock: &TestClock) -> Self {
        let (config, _) =
            update_agent::config::load(std::slice::from_ref(&node.config_dir)).unwrap();
        let conn = fleet.bus.connect();
        let rt = update_agent::daemon_cmd::runtime(
            &config,
            &DaemonArgs {
                disk: None,
                booted: Some(booted.parse().unwrap()),
            },
            Arc::new(clock.clone()),
            &conn,
        )
        .unwrap();
        let status = StatusHandle::default();
        let (tx, rx) = mpsc::channel();
        update_agent::dbus::service::serve(&conn, status.clone(), tx.clone()).unwrap();
        let daemon = Daemon::new(config, rt, status, rx).unwrap();
        let thread = std::thread::spawn(move || daemon.run().unwrap());
        Self {
            tx,
            thread: Some(thread),
            conn,
        }
    }

    /// Stops it as a service stop would, and gives the bus name back.
    fn stop(mut self) {
        self.tx
            .send(Request {
                command: DaemonCommand::Stop,
                reply: None,
            })
            .unwrap();
        self.thread.take().unwrap().join().unwrap();
        self.conn.release_name("org.moho.Agent1").unwrap();
        let _ = self
            .conn
            .object_server()
            .remove::<update_agent::dbus::service::Agent1, _>("/org/moho/Agent1");
    }
}

/// `update-agent status --json --follow`, collected.
struct Follower {
    child: Child,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Follower {
    fn start(bus: &TestBus) -> Self {
        let mut child = Command::new(bin("update-agent"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .args(["status", "--json", "--follow"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    s.lock().unwrap().push(v);
                }
            }
        });
        Self { child, seen }
    }

    fn states(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for v in self.seen.lock().unwrap().iter() {
            let s = v["state"].as_str().unwrap_or("").to_owned();
            if out.last() != Some(&s) {
                out.push(s);
            }
        }
        out
    }

    fn saw(&self, f: impl Fn(&Value) -> bool) -> bool {
        self.seen.lock().unwrap().iter().any(f)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn reboots(logind: &FakeLogind) -> usize {
    logind
        .calls()
        .iter()
        .filter(|c| c.starts_with("Reboot"))
        .count()
}

#[test]
fn the_daemon_waits_for_its_window_reboots_once_and_denies_a_release_that_falls_back() {
    require_root("the daemon test uses loop devices");
    let tmp = tempfile::tempdir().unwrap();
    let fleet = Fleet::new(tmp.path());
    let rollout = fleet.rollout("1.1.0");
    let node = Node::new(
        &fleet,
        "win",
        "[reboot]\nstrategy = \"windows\"\n[[reboot.windows]]\ndays = [\"mon\"]\n\
         start = \"10:00\"\nlength = \"1h\"\ntime_zone = \"UTC\"\n",
    );
    // Monday 09:00 UTC: the window opens in an hour (of injected time).
    let clock = TestClock::starting_at("2026-11-23T09:00:00Z".parse().unwrap());
    let daemon = RunningDaemon::start(&fleet, &node, "A", &clock);
    let follow = Follower::start(&fleet.bus);

    // Staged, and (once the gate was asked) waiting for the window.
    wait_for(
        "the update to be staged, waiting for the window",
        120,
        || {
            let st = node.status(&fleet.bus);
            st["state"] == "updated-need-reboot"
                && st["reboot_blocked_by"] == "reboot window closed until 2026-11-23T10:00:00Z"
        },
    );
    let st = node.status(&fleet.bus);
    assert_eq!(st["staged_version"], "1.1.0");
    assert_eq!(st["booted_slot"], "A");
    assert_eq!(st["booted_version"], "1.0.0");
    // B is armed for one try; the booted slot is untouched.
    let slots = node.slots("A");
    assert_eq!(slot_fields(&slots, "B"), (2, 1, false));
    assert!(slot_fields(&slots, "A").2);
    // Written under a delay inhibitor; no reboot yet.
    let calls = fleet.logind.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("Inhibit(shutdown, delay, writing an update to slot B")),
        "{calls:?}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(reboots(&fleet.logind), 0, "rebooted outside the window");

    // The window opens.
    clock.set("2026-11-23T10:00:00Z".parse().unwrap());
    wait_for("the reboot", 30, || reboots(&fleet.logind) == 1);
    wait_for("state rebooting", 10, || {
        node.status(&fleet.bus)["state"] == "rebooting"
    });
    // Exactly once, however long we wait.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(reboots(&fleet.logind), 1, "{:?}", fleet.logind.calls());
    assert!(fleet.logind.calls().contains(&"Reboot(false)".to_owned()));
    let states = follow.states();
    for s in ["downloading", "updated-need-reboot", "rebooting"] {
        assert!(states.contains(&s.to_owned()), "{s} not seen in {states:?}");
    }
    assert!(follow.saw(|v| v["state"] == "updated-need-reboot"
        && v["reboot_blocked_by"] == "reboot window closed until 2026-11-23T10:00:00Z"));
    daemon.stop();

    // The new slot fails: the selector boots B (its one try), the daemon
    // there sees its trial boot, but a health check fails so B is never
    // marked good; the next boot falls back to A.
    assert_eq!(node.boot(), "B");
    std::fs::write(&node.os_release, "VERSION_ID=1.1.0\n").unwrap();
    let daemon = RunningDaemon::start(&fleet, &node, "B", &clock);
    wait_for("the trial boot", 30, || {
        node.status(&fleet.bus)["state"] == "pending-mark-good"
    });
    daemon.stop();
    assert_eq!(node.boot(), "A");
    std::fs::write(&node.os_release, "VERSION_ID=1.0.0\n").unwrap();
    let daemon = RunningDaemon::start(&fleet, &node, "A", &clock);
    wait_for("the rollback to be recorded", 30, || {
        node.status(&fleet.bus)["state"] == "idle"
            && std::fs::read_to_string(node.state_dir.join("denylist.json"))
                .is_ok_and(|d| d.contains("1.1.0"))
    });
    let deny = node.agent(&fleet.bus, "A", &["denylist", "--json"]);
    let deny: Value = serde_json::from_slice(&deny.stdout).unwrap();
    assert_eq!(deny["1.1.0"]["count"], 1, "{deny}");
    assert!(
        deny["1.1.0"]["reason"]
            .as_str()
            .unwrap()
            .contains("did not boot successfully"),
        "{deny}"
    );
    wait_for("the server to count the rollback", 30, || {
        fleet.rollout_stats(rollout)["failed"] == 1
    });
    // Asked again, the node does not install 1.1.0 again.
    let inhibits_before = fleet.logind.calls().len();
    let check = node.agent(&fleet.bus, "A", &["check"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(!said.contains("installing"), "{said}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(fleet.logind.calls().len(), inhibits_before);
    assert_eq!(node.status(&fleet.bus)["state"], "idle");
    // B was not armed again.
    assert_eq!(slot_fields(&node.slots("A"), "B").1, 0);
    daemon.stop();
}

#[test]
fn a_node_staged_for_a_distant_window_is_in_flight_not_failed_and_cancels_an_aborted_rollout() {
    require_root("the daemon test uses loop devices");
    let tmp = tempfile::tempdir().unwrap();
    let fleet = Fleet::new(tmp.path());
    // An update timeout far shorter than the wait for the node's window.
    let (status, body) = fleet.api(
        "POST",
        "/api/v1/rollouts",
        Some(
            json!({"version": "1.1.0", "board": BOARD, "channel": "stable",
                    "group": "default",
                    "policy": {"steps": [{"percent": 100}], "update_timeout": "3s"}}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    let rollout = body["id"].as_i64().unwrap();
    let node = Node::new(
        &fleet,
        "far",
        "[reboot]\nstrategy = \"windows\"\n[[reboot.windows]]\ndays = [\"mon\"]\n\
         start = \"10:00\"\nlength = \"1h\"\ntime_zone = \"UTC\"\n",
    );
    // Tuesday 09:00 UTC: the window opens in six days (of injected time).
    let clock = TestClock::starting_at("2026-11-24T09:00:00Z".parse().unwrap());
    let daemon = RunningDaemon::start(&fleet, &node, "A", &clock);
    wait_for(
        "the update to be staged, waiting for the window",
        120,
        || {
            let st = node.status(&fleet.bus);
            st["state"] == "updated-need-reboot"
                && st["reboot_blocked_by"] == "reboot window closed until 2026-11-30T10:00:00Z"
        },
    );
    assert_eq!(slot_fields(&node.slots("A"), "B"), (2, 1, false));
    let server_node = || {
        fleet
            .api("GET", &format!("/api/v1/nodes/{}", node.id), None)
            .1
    };
    wait_for("the server to see the node staged", 30, || {
        server_node()["state"] == "staged"
    });

    // Well past the update timeout (and a few ticks of the server's
    // rollout job), the staged node is still in flight, not failed: it
    // waits for its own reboot policy.
    std::thread::sleep(Duration::from_secs(8));
    let stats = fleet.rollout_stats(rollout);
    assert_eq!(stats["failed"], 0, "{stats}");
    assert_eq!(stats["in_flight"], 1, "{stats}");
    let (_, r) = fleet.api("GET", &format!("/api/v1/rollouts/{rollout}"), None);
    assert_eq!(r["state"]["status"], "active", "{r}");

    // The operator aborts the rollout; at its next check-in (a minute
    // later) the node clears the armed slot and is idle again.
    let (status, body) = fleet.api(
        "POST",
        &format!("/api/v1/rollouts/{rollout}/actions"),
        Some(json!({"action": "abort"})),
    );
    assert_eq!(status, 200, "{body}");
    clock.set("2026-11-24T09:01:00Z".parse().unwrap());
    wait_for("the cancel", 60, || {
        node.status(&fleet.bus)["state"] == "idle"
    });
    let slots = node.slots("A");
    assert_eq!(slot_fields(&slots, "B"), (0, 0, false), "{slots}");
    assert_eq!(slot_fields(&slots, "A"), (1, 0, true), "{slots}");
    wait_for("the server to hear of the cancel", 30, || {
        server_node()["state"] == "idle"
    });
    // (The rollout's counters follow the node's report.)
    wait_for("the rollout to count the cancel", 30, || {
        fleet.rollout_stats(rollout)["in_flight"] == 0
    });

    // The window opens: nothing reboots, nothing is installed again.
    clock.set("2026-11-30T10:00:00Z".parse().unwrap());
    std::thread::sleep(Duration::from_secs(3));
    clock.set("2026-11-30T10:01:00Z".parse().unwrap());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(reboots(&fleet.logind), 0, "{:?}", fleet.logind.calls());
    assert_eq!(node.status(&fleet.bus)["state"], "idle");
    assert_eq!(slot_fields(&node.slots("A"), "B"), (0, 0, false));
    // A cancelled release is not denied: a new rollout may offer it again.
    let deny = node.agent(&fleet.bus, "A", &["denylist", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&deny.stdout).unwrap(),
        json!({})
    );
    daemon.stop();
}

#[test]
fn a_good_boot_is_marked_good_reported_healthy_and_releases_the_fleet_lock() {
    require_root("the daemon test uses loop devices");
    let tmp = tempfile::tempdir().unwrap();
    let fleet = Fleet::new(tmp.path());
    let rollout = fleet.rollout("1.1.0");
    let lock = format!(
        "[reboot]\nstrategy = \"fleet_lock\"\nfleet_lock_url = \"{}\"\n",
        fleet.base()
    );
    let node = Node::new(&fleet, "lock", &lock);
    let clock = TestClock::starting_at(Timestamp::now());
    let daemon = RunningDaemon::start(&fleet, &node, "A", &clock);
    wait_for("the reboot", 120, || reboots(&fleet.logind) == 1);
    let holders = fleet.api("GET", "/api/v1/fleetlock/default", None).1;
    assert_eq!(holders["holders"][0]["node_id"], node.id, "{holders}");
    // The node told the server its host name (the dashboard shows it).
    let seen = fleet
        .api("GET", &format!("/api/v1/nodes/{}", node.id), None)
        .1;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(seen["hostname"], host.trim(), "{seen}");
    daemon.stop();

    // The selector boots B; the new system comes up as 1.1.0.
    assert_eq!(node.boot(), "B");
    std::fs::write(&node.os_release, "VERSION_ID=1.1.0\n").unwrap();
    let daemon = RunningDaemon::start(&fleet, &node, "B", &clock);
    wait_for("the trial boot", 30, || {
        node.status(&fleet.bus)["state"] == "pending-mark-good"
    });
    // On trial the lock is still held, and nothing new is installed.
    let holders = fleet.api("GET", "/api/v1/fleetlock/default", None).1;
    assert_eq!(holders["holders"].as_array().unwrap().len(), 1, "{holders}");

    // boot-complete.target reached: the mark-good unit runs.
    let out = node.agent(&fleet.bus, "B", &["mark-good"]);
    assert!(
        out.status.success(),
        "mark-good: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let slots = node.slots("B");
    assert!(slot_fields(&slots, "B").2, "B not marked good: {slots}");
    wait_for("the lock to be released", 30, || {
        fleet.api("GET", "/api/v1/fleetlock/default", None).1["holders"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    wait_for("the server to count the node healthy", 30, || {
        fleet.rollout_stats(rollout)["healthy"] == 1
    });
    assert_eq!(node.status(&fleet.bus)["state"], "idle");
    // `update-agent status | head -1` ends quietly (the other printing
    // commands: tests/cli_conventions.rs).
    for args in [&["status"][..], &["status", "--json"]] {
        let out = with_closed_stdout(
            Command::new(bin("update-agent"))
                .env("DBUS_SYSTEM_BUS_ADDRESS", &fleet.bus.address)
                .args(args),
        );
        assert_quiet_end(&format!("update-agent {}", args.join(" ")), &out);
    }

    // Only root may change the agent: an unprivileged caller is refused.
    use std::os::unix::fs::PermissionsExt;
    for d in [tmp.path().to_owned(), tmp.path().join("bus")] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin("update-agent"))
        .arg("check")
        .env("DBUS_SYSTEM_BUS_ADDRESS", &fleet.bus.address)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&nobody.stderr);
    assert!(!nobody.status.success(), "nobody could call Check");
    assert!(
        err.contains("uid 65534 may not change the update agent"),
        "{err}"
    );

    // The operator reverts the release: the node boots back into 1.0.0
    // and will not take 1.1.0 again.
    let (status, body) = fleet.api(
        "POST",
        &format!("/api/v1/rollouts/{rollout}/actions"),
        Some(json!({"action": "revert"})),
    );
    assert_eq!(status, 200, "{body}");
    let out = node.agent(&fleet.bus, "B", &["check"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("the server reverts 1.1.0"),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the reboot back", 30, || reboots(&fleet.logind) == 2);
    let slots = node.slots("B");
    assert_eq!(slot_fields(&slots, "A"), (2, 0, true), "{slots}");
    let deny = node.agent(&fleet.bus, "B", &["denylist", "--json"]);
    let deny: Value = serde_json::from_slice(&deny.stdout).unwrap();
    assert_eq!(deny["1.1.0"]["reason"], "reverted by the server", "{deny}");
    // An operator may take a version off the list again.
    let cleared = node.agent(&fleet.bus, "B", &["denylist", "--clear", "1.1.0"]);
    assert!(cleared.status.success());
    let deny = node.agent(&fleet.bus, "B", &["denylist", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&deny.stdout).unwrap(),
        json!({})
    );
    daemon.stop();
    // B is good already: mark-good (run at every boot by its unit) has
    // nothing to do and asks nobody, daemon or not.
    let out = node.agent(&fleet.bus, "B", &["mark-good"]);
    assert!(
        out.status.success(),
        "mark-good without daemon: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "slot B is already marked good"
    );
}

#[test]
fn a_repository_the_daemon_cannot_read_shows_as_the_last_error() {
    require_root("the daemon test uses loop devices");
    let tmp = tempfile::tempdir().unwrap();
    let fleet = Fleet::new(tmp.path());
    let node = Node::new(&fleet, "norepo", "");
    // Repository only (no server), in an empty directory (a repository
    // disk that is not mounted yet).
    let empty = tmp.path().join("mnt-repo");
    std::fs::create_dir_all(&empty).unwrap();
    let text = std::fs::read_to_string(node.config_dir.join("10-test.toml")).unwrap();
    let mut out = Vec::new();
    let mut section = "";
    for line in text.lines() {
        if line.starts_with('[') {
            section = if line == "[server]" { "skip" } else { "" };
            if section == "skip" {
                continue;
            }
        }
        if section == "skip" {
            continue;
        }
        if line.starts_with("url = ") {
            out.push(format!("url = \"file://{}/\"", empty.display()));
        } else {
            out.push(line.to_owned());
        }
    }
    std::fs::write(node.config_dir.join("10-test.toml"), out.join("\n")).unwrap();
    let clock = TestClock::starting_at(Timestamp::now());
    let daemon = RunningDaemon::start(&fleet, &node, "A", &clock);
    wait_for("the failed check", 30, || {
        node.status(&fleet.bus)["state"] == "error"
    });
    let st = node.status(&fleet.bus);
    let err = st["last_error"].as_str().unwrap();
    assert!(err.contains("mnt-repo/"), "{st}");
    // Nothing was written: B is as it was.
    assert_eq!(slot_fields(&node.slots("A"), "B"), (0, 0, false));
    daemon.stop();
}
