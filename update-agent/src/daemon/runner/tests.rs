//! Unit tests of the daemon loop against the recording fakes — no root, no
//! bus, no disk: `FakeSlotDisk` (shared, so the test sees what was
//! written), `FakeLogin`, `FakeServer`, `FakeHealth`, `NoNotify` and a
//! frozen `TestClock`. Each test drives the loop turn by turn and checks
//! what a user would: when the node reboots, what the server hears, what
//! the slot table holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use moho_core::slot_attrs::SlotAttributes;
use moho_core::slot_table::{SlotEntry, SlotName, SlotTable};
use moho_disk::{DiskError, FakeSlotDisk, SlotDisk, SlotExtent, TableHealth};
use moho_protocol::node::{AgentState as WireState, NodeAction};

use super::{Daemon, Runtime, Systems};
use crate::daemon::clock::TestClock;
use crate::daemon::commands::{Answer, Command, CommandError, Reply, Request};
use crate::daemon::health::HealthReport;
use crate::daemon::health::fake::{FakeHealth, unit};
use crate::daemon::login::fake::FakeLogin;
use crate::daemon::notify::NoNotify;
use crate::daemon::reboot_gate::Inhibitor;
use crate::daemon::server::fake::FakeServer;
use crate::daemon::status::StatusHandle;
use crate::fetch::fake::FakeTransport;
use crate::service::disk::NodeDisk;
use crate::state::store::StateStore;
use crate::state::{AgentState, Staged, Trial, Waiting};
use crate::system::FakeSystem;

/// A fake disk the test keeps a handle on.
#[derive(Debug, Clone)]
struct SharedDisk {
    path: PathBuf,
    inner: Arc<Mutex<FakeSlotDisk>>,
}

impl SharedDisk {
    fn new(table: SlotTable) -> Self {
        Self {
            path: PathBuf::from("/fake/disk"),
            inner: Arc::new(Mutex::new(FakeSlotDisk::new(table))),
        }
    }

    fn fields(&self, slot: SlotName) -> (u8, u8, bool) {
        let a = self.inner.lock().unwrap().table.attrs(slot);
        (a.priority(), a.tries(), a.successful())
    }

    fn commits(&self) -> usize {
        self.inner.lock().unwrap().commits().len()
    }
}

impl SlotDisk for SharedDisk {
    fn path(&self) -> &Path {
        &self.path
    }
    fn slot_extent(&self, name: SlotName) -> Result<SlotExtent, DiskError> {
        self.inner.lock().unwrap().slot_extent(name)
    }
    fn read_slots(&mut self) -> Result<SlotTable, DiskError> {
        self.inner.lock().unwrap().read_slots()
    }
    fn health(&self) -> TableHealth {
        self.inner.lock().unwrap().health()
    }
    fn commit_slots(&mut self, expected: &SlotTable, next: &SlotTable) -> Result<(), DiskError> {
        self.inner.lock().unwrap().commit_slots(expected, next)
    }
}

fn table(a: (u8, u8, bool), b: (u8, u8, bool)) -> SlotTable {
    let e = |n: u32, l: &str, (p, t, s): (u8, u8, bool)| SlotEntry {
        partition: n,
        label: l.into(),
        partuuid: uuid::Uuid::from_u128(u128::from(n)),
        attrs: SlotAttributes::default().with_fields(p, t, s).unwrap(),
    };
    SlotTable {
        a: e(2, "ROOT-A", a),
        b: e(3, "ROOT-B", b),
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn staged() -> Staged {
    Staged {
        target: "b/1.1.0/root.img".into(),
        version: "1.1.0".into(),
        slot: SlotName::B,
        revert: false,
    }
}

/// Monday 09:00 UTC.
const MONDAY_9: &str = "2026-11-23T09:00:00Z";
const WINDOW_10_TO_11: &str = "[reboot]\nstrategy = \"windows\"\n[[reboot.windows]]\n\
    days = [\"mon\"]\nstart = \"10:00\"\nlength = \"1h\"\ntime_zone = \"UTC\"\n";

/// Everything one test drives and looks at.
struct Node {
    dir: tempfile::TempDir,
    clock: TestClock,
    disk: SharedDisk,
    login: FakeLogin,
    server: FakeServer,
    health: FakeHealth,
    notify: NoNotify,
    status: StatusHandle,
    tx: Sender<Request>,
    rx: Option<Receiver<Request>>,
    booted: SlotName,
    extra_config: String,
}

impl Node {
    /// A node booted from `booted` with `disk`, in `state`, at `now`, with
    /// `config` appended to a base configuration that has a server.
    fn new(booted: SlotName, disk: SlotTable, state: &AgentState, now: &str, config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        StateStore::new(&dir.path().join("state"))
            .save(state)
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let n = Self {
            clock: TestClock::frozen_at(ts(now)),
            disk: SharedDisk::new(disk),
            login: FakeLogin::default(),
            server: FakeServer::default(),
            health: FakeHealth::pending(),
            notify: NoNotify::default(),
            status: StatusHandle::default(),
            tx,
            rx: Some(rx),
            booted,
            extra_config: config.to_owned(),
            dir,
        };
        n.set_version(if booted == SlotName::A {
            "1.0.0"
        } else {
            "1.1.0"
        });
        n
    }

    fn set_version(&self, v: &str) {
        std::fs::write(
            self.dir.path().join("os-release"),
            format!("VERSION_ID={v}\n"),
        )
        .unwrap();
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn config(&self) -> crate::config::AgentConfig {
        let conf = self.dir.path().join("agent.d");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("10-test.toml"),
            format!(
                "[repository]\nurl = \"file:///nonexistent/repo/\"\nroot = \"/nonexistent/root.json\"\n\
                 [server]\nurl = \"https://fake.invalid/\"\n\
                 [node]\nboard = \"b\"\nos_release = \"{}\"\nid = \"node-1\"\n\
                 [agent]\nstate_dir = \"{}\"\n{}",
                self.dir.path().join("os-release").display(),
                self.state_dir().display(),
                self.extra_config,
            ),
        )
        .unwrap();
        crate::config::load(&[conf]).unwrap().0
    }

    /// The daemon, started (it assessed the boot).
    fn daemon(&mut self) -> Daemon {
        let rx = self.rx.take().unwrap_or_else(|| {
            let (tx, rx) = mpsc::channel();
            self.tx = tx;
            rx
        });
        let lock = self.config().reboot.strategy.clone();
        let rt = Runtime {
            disk: NodeDisk::new(Box::new(self.disk.clone()), true),
            systems: Systems {
                clock: Arc::new(self.clock.clone()),
                transport: Arc::new(FakeTransport::new()),
                login: Box::new(self.login.clone()),
                health: Box::new(self.health.clone()),
                server: Some(Box::new(self.server.clone())),
                lock: matches!(lock, crate::config::types::RebootStrategy::FleetLock { .. }).then(
                    || Box::new(self.server.clone()) as Box<dyn crate::daemon::server::RebootLock>,
                ),
                notify: Arc::new(self.notify.clone()),
                system: Box::new(FakeSystem::default()),
                booted_override: Some(self.booted),
                node_id: "node-1".into(),
                public_key: "key".into(),
                hostname: None,
            },
        };
        let mut d = Daemon::new(self.config(), rt, self.status.clone(), rx).unwrap();
        d.start();
        d
    }

    fn reboots(&self) -> usize {
        self.login.calls().iter().filter(|c| *c == "Reboot").count()
    }

    fn events(&self) -> Vec<&'static str> {
        self.server.event_types()
    }

    fn answer(&self, action: NodeAction) {
        self.server.with(|s| s.answers.push_back(action));
    }

    fn persisted(&self) -> AgentState {
        StateStore::new(&self.state_dir()).load().unwrap()
    }
}

fn command(d: &mut Daemon, command: Command) -> Reply {
    let (tx, rx) = futures_channel::oneshot::channel();
    d.handle(Request {
        command,
        reply: Some(tx),
    });
    futures_executor_block(rx)
}

/// Waits for a oneshot answer given synchronously by `handle`.
fn futures_executor_block(mut rx: futures_channel::oneshot::Receiver<Reply>) -> Reply {
    loop {
        match rx.try_recv() {
            Ok(Some(r)) => return r,
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(_) => panic!("the daemon dropped the answer"),
        }
    }
}

fn staged_state() -> AgentState {
    AgentState::UpdatedNeedReboot(Waiting::new(staged()))
}

fn armed() -> SlotTable {
    table((1, 0, true), (2, 1, false))
}

#[test]
fn a_staged_update_waits_for_its_window_then_reboots_exactly_once() {
    let mut n = Node::new(
        SlotName::A,
        armed(),
        &staged_state(),
        MONDAY_9,
        WINDOW_10_TO_11,
    );
    let mut d = n.daemon();
    for _ in 0..3 {
        d.turn();
        n.clock.advance(Duration::from_secs(60));
    }
    assert_eq!(n.reboots(), 0, "rebooted outside the window");
    assert_eq!(
        n.status.get().reboot_blocked_by,
        "reboot window closed until 2026-11-23T10:00:00Z"
    );
    assert!(
        n.notify.statuses().contains(
            &"updated-need-reboot: reboot window closed until 2026-11-23T10:00:00Z".into()
        ),
        "{:?}",
        n.notify.statuses()
    );
    // Staged nodes keep checking in, saying so.
    let check_in = n.server.with(|s| s.check_ins[0].clone());
    assert_eq!(check_in.state, WireState::Staged);
    assert_eq!(check_in.staged_version.as_deref(), Some("1.1.0"));

    n.clock.set(ts("2026-11-23T10:00:00Z"));
    d.turn();
    assert_eq!(n.reboots(), 1);
    assert_eq!(n.persisted(), AgentState::Rebooting(staged()));
    for _ in 0..3 {
        n.clock.advance(Duration::from_secs(60));
        d.turn();
    }
    assert_eq!(n.reboots(), 1, "{:?}", n.login.calls());
    // The "rebooting" report went out before the reboot.
    assert!(n.events().contains(&"rebooting"), "{:?}", n.events());
}

#[test]
fn logged_in_users_delay_the_reboot_for_the_bounded_time_even_across_a_restart() {
    let mut n = Node::new(SlotName::A, armed(), &staged_state(), MONDAY_9, "");
    n.login.0.lock().unwrap().users = vec!["alice".into()];
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.reboots(), 0);
    assert_eq!(
        n.status.get().reboot_blocked_by,
        "users logged in (alice): waiting until 2026-11-23T10:00:00Z at most"
    );
    // The bound belongs to the staged state: a restarted daemon keeps it.
    let AgentState::UpdatedNeedReboot(w) = n.persisted() else {
        panic!("{:?}", n.persisted())
    };
    assert_eq!(w.reboot.allowed_since, Some(ts(MONDAY_9)));
    drop(d);
    n.clock.set(ts("2026-11-23T09:59:00Z"));
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.reboots(), 0);
    n.clock.set(ts("2026-11-23T10:00:00Z"));
    d.turn();
    assert_eq!(n.reboots(), 1, "alice's hour is up");
}

#[test]
fn block_inhibitors_hold_the_reboot_until_their_bound() {
    let mut n = Node::new(SlotName::A, armed(), &staged_state(), MONDAY_9, "");
    n.login.0.lock().unwrap().inhibitors = vec![Inhibitor {
        who: "backup".into(),
        why: "writing a snapshot".into(),
    }];
    let mut d = n.daemon();
    d.turn();
    assert_eq!(
        n.status.get().reboot_blocked_by,
        "inhibited by backup (writing a snapshot): waiting until 2026-11-23T09:30:00Z at most"
    );
    n.clock.set(ts("2026-11-23T09:29:59Z"));
    d.turn();
    assert_eq!(n.reboots(), 0);
    n.clock.set(ts("2026-11-23T09:30:00Z"));
    d.turn();
    assert_eq!(n.reboots(), 1);
}

#[test]
fn the_servers_cancel_clears_the_staged_slot_and_nothing_reboots_when_the_window_opens() {
    let mut n = Node::new(
        SlotName::A,
        armed(),
        &staged_state(),
        MONDAY_9,
        WINDOW_10_TO_11,
    );
    n.answer(NodeAction::Cancel {
        version: "1.1.0".into(),
        reason: "the rollout of 1.1.0 was aborted".into(),
    });
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.disk.fields(SlotName::B), (0, 0, false), "cancel_armed");
    assert_eq!(n.disk.fields(SlotName::A), (1, 0, true));
    assert_eq!(n.persisted(), AgentState::Idle);
    assert_eq!(n.events(), ["cancelled"]);
    let reason = n.server.with(|s| s.events[0].clone());
    assert!(
        serde_json::to_string(&reason).unwrap().contains("aborted"),
        "{reason:?}"
    );
    n.clock.set(ts("2026-11-23T10:30:00Z"));
    for _ in 0..3 {
        d.turn();
        n.clock.advance(Duration::from_secs(600));
    }
    assert_eq!(n.reboots(), 0, "a cancelled release never boots");
}

#[test]
fn a_release_aborted_long_after_the_last_check_in_is_cancelled_when_the_window_opens_not_booted() {
    // The default interval: the next regular check-in would come an hour
    // after the last one, long after the window opened.
    let mut n = Node::new(
        SlotName::A,
        armed(),
        &staged_state(),
        MONDAY_9,
        WINDOW_10_TO_11,
    );
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.server.with(|s| s.check_ins.len()), 1);
    // Meanwhile the operator aborted the rollout. The window opens: the
    // node asks the server before it reboots, and cancels instead.
    n.answer(NodeAction::Cancel {
        version: "1.1.0".into(),
        reason: "the rollout of 1.1.0 was aborted".into(),
    });
    n.clock.set(ts("2026-11-23T10:00:00Z"));
    d.turn();
    assert_eq!(n.reboots(), 0, "{:?}", n.login.calls());
    // Asked staged, then (idle again) told the server at once.
    let states: Vec<WireState> = n
        .server
        .with(|s| s.check_ins.iter().map(|c| c.state).collect());
    assert_eq!(
        states,
        [WireState::Staged, WireState::Staged, WireState::Idle]
    );
    assert_eq!(n.disk.fields(SlotName::B), (0, 0, false), "cancel_armed");
    assert_eq!(n.persisted(), AgentState::Idle);
    assert_eq!(n.events(), ["cancelled"]);
    for _ in 0..3 {
        n.clock.advance(Duration::from_secs(600));
        d.turn();
    }
    assert_eq!(n.reboots(), 0, "a cancelled release never boots");
}

#[test]
fn a_staged_update_still_offered_reboots_after_its_check_in_and_without_one_when_the_answer_is_fresh()
 {
    let mut n = Node::new(
        SlotName::A,
        armed(),
        &staged_state(),
        MONDAY_9,
        WINDOW_10_TO_11,
    );
    let mut d = n.daemon();
    d.turn();
    // The server still offers the staged release at the window's opening.
    n.answer(NodeAction::Install {
        target: "b/1.1.0/root.img".into(),
        version: "1.1.0".into(),
    });
    n.clock.set(ts("2026-11-23T10:00:00Z"));
    d.turn();
    assert_eq!(n.server.with(|s| s.check_ins.len()), 2);
    assert_eq!(n.reboots(), 1);
    assert_eq!(n.persisted(), AgentState::Rebooting(staged()));

    // The window opens 30 s after a check-in: no second one.
    let mut n = Node::new(
        SlotName::A,
        armed(),
        &staged_state(),
        "2026-11-23T09:59:30Z",
        WINDOW_10_TO_11,
    );
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.reboots(), 0);
    n.clock.set(ts("2026-11-23T10:00:00Z"));
    d.turn();
    assert_eq!(n.server.with(|s| s.check_ins.len()), 1);
    assert_eq!(n.reboots(), 1);
}

#[test]
fn a_cancel_for_another_version_or_at_rest_changes_nothing() {
    let mut n = Node::new(
        SlotName::A,
        armed(),
        &staged_state(),
        MONDAY_9,
        WINDOW_10_TO_11,
    );
    n.answer(NodeAction::Cancel {
        version: "9.9.9".into(),
        reason: "aborted".into(),
    });
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.disk.fields(SlotName::B), (2, 1, false));
    assert!(matches!(n.persisted(), AgentState::UpdatedNeedReboot(_)));
}

#[test]
fn update_agent_cancel_withdraws_the_staged_update_and_is_refused_when_nothing_is_staged() {
    let mut n = Node::new(
        SlotName::A,
        armed(),
        &staged_state(),
        MONDAY_9,
        WINDOW_10_TO_11,
    );
    let mut d = n.daemon();
    let answer = command(&mut d, Command::Cancel).unwrap();
    assert_eq!(
        answer,
        Answer::Cancelled {
            version: "1.1.0".into()
        }
    );
    assert_eq!(
        answer.to_string(),
        "1.1.0 cancelled: its slot is cleared and will not boot"
    );
    assert_eq!(n.disk.fields(SlotName::B), (0, 0, false));
    let commits = n.disk.commits();
    let err = command(&mut d, Command::Cancel).unwrap_err();
    assert!(
        matches!(err, CommandError::NotNow { state: "idle", .. }),
        "{err}"
    );
    assert!(err.is_refusal());
    assert_eq!(n.disk.commits(), commits, "a refusal writes nothing");
    assert!(command(&mut d, Command::Reboot).unwrap_err().is_refusal());
}

#[test]
fn an_operators_reboot_overrides_the_window_but_not_logged_in_users() {
    let mut n = Node::new(
        SlotName::A,
        armed(),
        &staged_state(),
        MONDAY_9,
        WINDOW_10_TO_11,
    );
    n.login.0.lock().unwrap().users = vec!["bob".into()];
    let mut d = n.daemon();
    let a = command(&mut d, Command::Reboot).unwrap();
    assert!(
        matches!(&a, Answer::RebootWaiting { blocked_by } if blocked_by.starts_with("users logged in (bob)")),
        "{a:?}"
    );
    n.login.0.lock().unwrap().users.clear();
    d.turn();
    assert_eq!(n.reboots(), 1, "the request was kept in the staged state");
}

fn on_trial(since: &str) -> AgentState {
    AgentState::PendingMarkGood(Trial {
        staged: staged(),
        since: Some(ts(since)),
    })
}

fn trial_table() -> SlotTable {
    // A good; B armed, its one try used by the selector.
    table((1, 0, true), (2, 0, false))
}

fn failed_check() -> HealthReport {
    let mut check = unit("moho-health-check.service", "failed", "failed");
    check.result = Some("exit-code".into());
    check.status_text = Some("containerd did not answer".into());
    HealthReport {
        complete: false,
        units: vec![check],
    }
}

#[test]
fn a_failed_health_check_reports_and_reboots_into_the_fallback_at_once() {
    // Strategy windows, window closed, FleetLock or not: a failed trial is
    // not an update waiting for its window.
    let mut n = Node::new(
        SlotName::B,
        trial_table(),
        &AgentState::Rebooting(staged()),
        MONDAY_9,
        WINDOW_10_TO_11,
    );
    n.health.set(Some(failed_check()));
    // The server is down: the report must wait in the outbox, and the
    // reboot must not wait for the server.
    n.server.with(|s| s.reports_fail = true);
    let mut d = n.daemon();
    assert!(matches!(n.persisted(), AgentState::PendingMarkGood(_)));
    d.turn();
    assert_eq!(n.reboots(), 1, "{:?}", n.login.calls());
    // The trial slot is out of the running; the good one boots next.
    assert_eq!(n.disk.fields(SlotName::B), (0, 0, false));
    assert_eq!(n.disk.fields(SlotName::A), (2, 0, true));
    assert_eq!(n.persisted().name(), "trial-failed");
    let outbox = std::fs::read_to_string(n.state_dir().join("outbox.json")).unwrap();
    assert!(
        outbox.contains("\"type\":\"trial_failed\"")
            && outbox.contains("moho-health-check.service")
            && outbox.contains("containerd did not answer"),
        "{outbox}"
    );
    // While the machine goes down, no second reboot request.
    d.turn();
    assert_eq!(n.reboots(), 1);
    drop(d);

    // The fallback boots; the server is back.
    n.server.with(|s| s.reports_fail = false);
    n.booted = SlotName::A;
    n.set_version("1.0.0");
    n.health.set(Some(HealthReport {
        complete: true,
        units: Vec::new(),
    }));
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.persisted(), AgentState::Idle);
    assert_eq!(
        n.events(),
        ["booted_new_version", "trial_failed", "rollback"],
        "reported once the server answered"
    );
    let deny = crate::denylist::DenyList::load(&n.state_dir()).unwrap();
    let d11 = deny.get("1.1.0").expect("1.1.0 denied");
    assert_eq!(
        d11.reason,
        "health check moho-health-check.service failed: containerd did not answer; fell back to 1.0.0"
    );
    assert_eq!(n.reboots(), 1, "no reboot loop");
    // Not offered again: even if the server offered it, the node refuses.
    n.answer(NodeAction::Install {
        target: "b/1.1.0/root.img".into(),
        version: "1.1.0".into(),
    });
    let err = command(&mut d, Command::Check).unwrap_err();
    assert!(matches!(err, CommandError::Denied { .. }), "{err}");
}

#[test]
fn a_trial_that_never_reaches_boot_complete_fails_at_the_deadline() {
    let mut n = Node::new(
        SlotName::B,
        trial_table(),
        &on_trial(MONDAY_9),
        MONDAY_9,
        "[health]\ndeadline = \"10m\"\n",
    );
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.status.get().trial_deadline, "2026-11-23T09:10:00Z");
    n.clock.set(ts("2026-11-23T09:09:59Z"));
    d.turn();
    assert_eq!(n.reboots(), 0);
    let check_in = n.server.with(|s| s.check_ins[0].clone());
    assert_eq!(check_in.state, WireState::Trial, "trial nodes check in");
    n.clock.set(ts("2026-11-23T09:10:00Z"));
    d.turn();
    assert_eq!(n.reboots(), 1);
    let AgentState::TrialFailed(r) = n.persisted() else {
        panic!("{:?}", n.persisted())
    };
    assert_eq!(
        r.failure.to_string(),
        "boot-complete.target not reached within 10m \
         (waiting for moho-health-check.service: activating (start))"
    );
}

#[test]
fn a_rescue_still_lets_logged_in_users_finish_within_their_bound() {
    let mut n = Node::new(
        SlotName::B,
        trial_table(),
        &on_trial(MONDAY_9),
        MONDAY_9,
        "",
    );
    n.health.set(Some(failed_check()));
    n.login.0.lock().unwrap().users = vec!["carol".into()];
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.reboots(), 0);
    assert!(
        n.status
            .get()
            .reboot_blocked_by
            .starts_with("users logged in (carol)")
    );
    n.clock.set(ts("2026-11-23T10:00:00Z"));
    d.turn();
    assert_eq!(n.reboots(), 1);
}

#[test]
fn a_healthy_trial_is_marked_good_by_the_daemon_and_reported_healthy() {
    let mut n = Node::new(
        SlotName::B,
        trial_table(),
        &on_trial(MONDAY_9),
        MONDAY_9,
        "",
    );
    n.health.set(Some(HealthReport {
        complete: true,
        units: vec![unit("moho-health-check.service", "active", "exited")],
    }));
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.disk.fields(SlotName::B), (2, 0, true));
    assert_eq!(n.persisted(), AgentState::Idle);
    assert_eq!(n.events(), ["healthy"]);
    // The mark-good unit runs too: nothing left to do.
    assert_eq!(
        command(&mut d, Command::MarkGood).unwrap(),
        Answer::AlreadyGood { slot: SlotName::B }
    );
    assert_eq!(n.reboots(), 0);
}

#[test]
fn a_release_withdrawn_during_its_trial_is_abandoned() {
    let mut n = Node::new(
        SlotName::B,
        trial_table(),
        &on_trial(MONDAY_9),
        MONDAY_9,
        "",
    );
    n.answer(NodeAction::Cancel {
        version: "1.1.0".into(),
        reason: "the rollout of 1.1.0 was aborted".into(),
    });
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.reboots(), 1);
    assert_eq!(n.disk.fields(SlotName::A), (2, 0, true));
    assert!(n.events().contains(&"trial_failed"), "{:?}", n.events());
}

#[test]
fn a_trial_offers_no_install_and_systemd_being_unreachable_only_leaves_the_deadline() {
    let mut n = Node::new(
        SlotName::B,
        trial_table(),
        &on_trial(MONDAY_9),
        MONDAY_9,
        "",
    );
    n.health.set(None);
    n.answer(NodeAction::Install {
        target: "b/1.2.0/root.img".into(),
        version: "1.2.0".into(),
    });
    let mut d = n.daemon();
    let reply = command(&mut d, Command::Check).unwrap();
    assert!(
        reply
            .to_string()
            .starts_with("nothing done: the server offers 1.2.0"),
        "{reply}"
    );
    d.turn();
    assert_eq!(n.reboots(), 0);
    assert_eq!(n.disk.commits(), 0, "nothing touched on trial");
}

#[test]
fn the_service_manager_hears_a_watchdog_ping_every_turn_and_every_state() {
    let mut n = Node::new(
        SlotName::A,
        armed(),
        &staged_state(),
        MONDAY_9,
        WINDOW_10_TO_11,
    );
    let mut d = n.daemon();
    for _ in 0..4 {
        d.turn();
    }
    // A ping every turn of the loop: a hung loop is restarted by systemd.
    assert_eq!(n.notify.watchdog_pings(), 4, "{:?}", n.notify.seen());
    n.clock.set(ts("2026-11-23T10:00:00Z"));
    d.turn();
    assert_eq!(
        n.notify.statuses(),
        [
            "updated-need-reboot: reboot window closed until 2026-11-23T10:00:00Z",
            "updated-need-reboot",
            "rebooting"
        ]
    );
}

#[test]
fn a_fleet_lock_refusal_shows_as_the_blocker_and_a_grant_reboots() {
    let mut n = Node::new(
        SlotName::A,
        armed(),
        &staged_state(),
        MONDAY_9,
        "[reboot]\nstrategy = \"fleet_lock\"\nfleet_lock_url = \"https://fake.invalid/\"\n",
    );
    n.server.with(|s| s.lock_busy = true);
    let mut d = n.daemon();
    d.turn();
    assert_eq!(n.reboots(), 0);
    assert_eq!(
        n.status.get().reboot_blocked_by,
        "reboot lock of group default held by other nodes: all 1 slots of group default are held"
    );
    n.server.with(|s| s.lock_busy = false);
    // Asked again only after 30 s.
    n.clock.advance(Duration::from_secs(10));
    d.turn();
    assert_eq!(n.reboots(), 0);
    n.clock.advance(Duration::from_secs(30));
    d.turn();
    assert_eq!(n.reboots(), 1);
    let calls = n.server.with(|s| s.lock_calls.clone());
    assert_eq!(
        calls.iter().filter(|c| **c == "pre-reboot").count(),
        2,
        "{calls:?}"
    );
}
