//! The daemon loop (DESIGN §3 steps 2–11): on start, find out what the last
//! boot did with a staged update; then check in on schedule, install what
//! the server offers, reboot when the strategy allows, report every step,
//! and answer commands from D-Bus. Every decision is made by the pure code
//! ([`super::reboot_gate`], [`super::boot_assess`], [`super::schedule`],
//! the state machine); this file only carries it out against the external
//! systems in [`Runtime`].

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use moho_core::slot_table::{SlotName, SlotTable};
use moho_disk::{GptSlotDisk, SlotDisk};
use moho_protocol::node::{self as wire, CheckIn, NodeAction};

use super::boot_assess::{BootFinding, assess};
use super::clock::Clock;
use super::commands::{Command, Reply, Request};
use super::login::Login;
use super::notify::Notify;
use super::outbox::Outbox;
use super::progress::DaemonProgress;
use super::reboot_gate::{self, GateInput, Strategy, Verdict};
use super::schedule;
use super::server::{LockAnswer, RebootLock, UpdateServer};
use super::status::StatusHandle;
use super::wire_events::event_for;
use crate::config::AgentConfig;
use crate::config::types::{RebootStrategy, WindowSpec};
use crate::denylist::DenyList;
use crate::install_cmd::InstallArgs;
use crate::slots_cmd::SlotsContext;
use crate::state::machine::{Action, Report};
use crate::state::store::StateStore;
use crate::state::{AgentState, Event, Staged};
use crate::system::SystemView;

/// The external systems the daemon works with.
pub struct Runtime {
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// logind.
    pub login: Box<dyn Login>,
    /// The update server (`None`: repository only, install the newest).
    pub server: Option<Box<dyn UpdateServer>>,
    /// FleetLock (strategy `fleet_lock` only).
    pub lock: Option<Box<dyn RebootLock>>,
    /// systemd's notify socket.
    pub notify: Arc<dyn Notify>,
    /// The running system (booted slot detection).
    pub system: Box<dyn SystemView + Send + Sync>,
    /// `--booted`.
    pub booted_override: Option<SlotName>,
    /// The disk holding the slots.
    pub disk: PathBuf,
    /// The node id.
    pub node_id: String,
    /// The node's public key (check-ins register it).
    pub public_key: String,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("disk", &self.disk)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// Why the daemon could not run at all (everything else is logged, shown
/// as `LastError` and retried).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state file.
    #[error(transparent)]
    State(#[from] crate::state::store::StoreError),
    /// The outbox file.
    #[error(transparent)]
    Outbox(#[from] super::outbox::OutboxError),
    /// A reboot window that does not validate.
    #[error("reboot.windows: {0}")]
    Window(#[from] moho_rollout::window::WindowError),
}

/// The daemon.
pub struct Daemon {
    config: AgentConfig,
    rt: Runtime,
    status: StatusHandle,
    commands: Receiver<Request>,
    store: StateStore,
    state: AgentState,
    outbox: Arc<Mutex<Outbox>>,
    strategy: Strategy,
    seed: u64,
    checks: u64,
    next_check: Timestamp,
    next_flush: Timestamp,
    allowed_since: Option<Timestamp>,
    reboot_requested: bool,
    lock_refused: Option<(String, Timestamp)>,
    lock_release_pending: bool,
    booted: Option<SlotName>,
    booted_version: Option<String>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    moho_core::report::render_chain(e)
}

impl Daemon {
    /// Prepares the daemon; nothing runs until [`Daemon::run`].
    pub fn new(
        config: AgentConfig,
        rt: Runtime,
        status: StatusHandle,
        commands: Receiver<Request>,
    ) -> Result<Self, DaemonError> {
        let store = StateStore::new(&config.state_dir);
        let state = store.load()?;
        let outbox = Outbox::load(&config.state_dir)?;
        let strategy = match &config.reboot.strategy {
            RebootStrategy::Immediate => Strategy::Immediate,
            RebootStrategy::Off => Strategy::Off,
            RebootStrategy::FleetLock { group, .. } => Strategy::FleetLock {
                group: group.to_string(),
            },
            RebootStrategy::Windows { windows } => {
                Strategy::Windows(moho_rollout::window::Windows::new(
                    windows
                        .iter()
                        .map(WindowSpec::to_window)
                        .collect::<Result<_, _>>()?,
                ))
            }
        };
        let now = rt.clock.now();
        let seed = schedule::seed(&rt.node_id);
        Ok(Self {
            config,
            status,
            commands,
            store,
            state,
            outbox: Arc::new(Mutex::new(outbox)),
            strategy,
            seed,
            checks: 0,
            next_check: now,
            next_flush: now,
            allowed_since: None,
            reboot_requested: false,
            lock_refused: None,
            lock_release_pending: false,
            booted: None,
            booted_version: None,
            rt,
        })
    }

    /// Runs until a [`Command::Stop`] or the command channel closes.
    pub fn run(mut self) -> Result<(), DaemonError> {
        self.start();
        self.rt.notify.ready();
        loop {
            let now = self.rt.clock.now();
            self.step(now);
            self.publish();
            self.rt.notify.watchdog();
            let wait = self.sleep_for(self.rt.clock.now());
            match self.commands.recv_timeout(wait) {
                Ok(req) => {
                    if req.command == Command::Stop {
                        req.answer(Ok("stopping".into()));
                        return Ok(());
                    }
                    self.handle(req);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    fn sleep_for(&self, now: Timestamp) -> Duration {
        let tick = self.rt.clock.tick();
        let until =
            |t: Timestamp| Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO);
        let mut d = tick;
        if self.checks_allowed() {
            d = d.min(until(self.next_check));
        }
        if !self.pending_events().is_empty() {
            d = d.min(until(self.next_flush));
        }
        d.max(Duration::from_millis(10))
    }

    fn pending_events(&self) -> Vec<wire::Event> {
        self.outbox
            .lock()
            .map(|o| o.pending().to_vec())
            .unwrap_or_default()
    }

    // ----- start-up ------------------------------------------------------

    fn start(&mut self) {
        match self.read_table() {
            Ok(table) => {
                let booted = crate::booted::detect_booted(
                    self.rt.system.as_ref(),
                    self.rt.booted_override,
                    &table,
                    &self.rt.disk,
                );
                match booted {
                    Ok(Some(b)) => self.booted = Some(b.slot),
                    Ok(None) => {
                        self.error("the running system did not boot from a slot of this disk")
                    }
                    Err(e) => self.error(&chain(&e)),
                }
            }
            Err(e) => self.error(&e),
        }
        match crate::os_release::booted_version(&self.config.node.os_release) {
            Ok(v) => self.booted_version = v.map(|v| v.to_string()),
            Err(e) => self.error(&chain(&e)),
        }
        self.reconcile_boot();
        // A node that starts steady gives back any reboot slot it may still
        // hold (a crash between marking good and releasing, say).
        if matches!(self.state, AgentState::Idle) && self.booted_is_good() {
            self.lock_release_pending = self.rt.lock.is_some();
        }
        self.status.update(|s| {
            s.booted_slot = self.booted.map(|b| b.to_string()).unwrap_or_default();
            s.booted_version = self.booted_version.clone().unwrap_or_default();
        });
    }

    fn read_table(&self) -> Result<SlotTable, String> {
        let mut disk = GptSlotDisk::open(&self.rt.disk, false).map_err(|e| chain(&e))?;
        disk.read_slots().map_err(|e| chain(&e))
    }

    fn booted_is_good(&self) -> bool {
        match (self.booted, self.read_table()) {
            (Some(b), Ok(t)) => t.attrs(b).successful(),
            _ => false,
        }
    }

    /// Applies what the last boot did to a staged update.
    fn reconcile_boot(&mut self) {
        let (Some(booted), Ok(table)) = (self.booted, self.read_table()) else {
            return;
        };
        let finding = assess(&self.state, booted, &table, self.booted_version.as_deref());
        if let BootFinding::Events(events) = finding {
            for e in events {
                self.apply(e);
            }
        }
    }

    // ----- one turn of the loop -----------------------------------------

    fn step(&mut self, now: Timestamp) {
        if self.lock_release_pending {
            self.release_lock();
        }
        if now >= self.next_flush {
            self.flush(now);
        }
        match &self.state {
            AgentState::UpdatedNeedReboot(_) => self.consider_reboot(now),
            AgentState::Rebooting(_) => self.status.update(|s| s.reboot_blocked_by.clear()),
            AgentState::PendingMarkGood(_) => self.status.update(|s| {
                s.reboot_blocked_by.clear();
            }),
            _ => {
                self.status.update(|s| s.reboot_blocked_by.clear());
                if now >= self.next_check {
                    let _ = self.check(now);
                    // A freshly staged update meets the reboot gate at once.
                    if matches!(self.state, AgentState::UpdatedNeedReboot(_)) {
                        self.consider_reboot(self.rt.clock.now());
                    }
                }
            }
        }
    }

    fn checks_allowed(&self) -> bool {
        !matches!(
            self.state,
            AgentState::UpdatedNeedReboot(_)
                | AgentState::Rebooting(_)
                | AgentState::PendingMarkGood(_)
        )
    }

    fn flush(&mut self, now: Timestamp) {
        let Some(server) = &self.rt.server else {
            return;
        };
        let result = match self.outbox.lock() {
            Ok(mut o) => o.flush(server.as_ref()).map_err(|e| chain(&e)),
            Err(_) => Err("event outbox lock poisoned".to_owned()),
        };
        match result {
            Ok(_) => self.next_flush = now,
            Err(e) => {
                tracing::warn!(error = %e, "could not report events; will retry");
                self.next_flush = schedule::after(now, Duration::from_secs(30));
            }
        }
    }

    /// Checks in (or, without a server, looks at the repository) and then
    /// runs the install it decided on.
    fn check(&mut self, now: Timestamp) -> Reply {
        let decided = self.check_decide(now);
        match decided {
            Checked::Install { target, what } => {
                self.install(target);
                let s = self.status.get();
                if s.last_error.is_empty() {
                    Ok(format!("{what}: state {}", s.state))
                } else {
                    Err(s.last_error)
                }
            }
            Checked::Done(m) => Ok(m),
            Checked::Failed(m) => Err(m),
        }
    }

    fn check_decide(&mut self, now: Timestamp) -> Checked {
        self.checks += 1;
        self.status.update(|s| s.last_check = now.to_string());
        self.next_check = schedule::next_check(
            now,
            self.config.update.check_interval,
            self.seed,
            self.checks,
        );
        if !self.booted_is_good() {
            let m = "the booted slot is not marked good yet; no update is installed before it is";
            tracing::info!("{m}");
            self.error(m);
            return Checked::Failed(m.into());
        }
        let Some(server) = &self.rt.server else {
            return Checked::Install {
                target: None,
                what: "checked the repository".into(),
            };
        };
        let req = self.check_in_body();
        match server.check_in(&req) {
            Ok(resp) => match resp.action {
                NodeAction::Install { target, version } => {
                    if let Ok(deny) = DenyList::load(&self.config.state_dir)
                        && let Some(d) = deny.get(&version)
                    {
                        let m = format!(
                            "the server offers {version}, which is on the local deny list ({}); \
                             not installing it",
                            d.reason
                        );
                        self.error(&m);
                        return Checked::Failed(m);
                    }
                    Checked::Install {
                        target: Some(target),
                        what: format!("the server offers {version}"),
                    }
                }
                NodeAction::Revert { from_version } => {
                    self.revert(&from_version, now);
                    Checked::Done(format!(
                        "the server reverts {from_version}: state {}",
                        self.state.name()
                    ))
                }
                NodeAction::Wait {
                    retry_after_secs,
                    reason,
                    ..
                } => {
                    tracing::info!(%reason, retry_after_secs, "nothing to install now");
                    self.next_check = schedule::after_server_wait(now, retry_after_secs);
                    self.status.update(|s| s.last_error.clear());
                    Checked::Done(format!("nothing to install: {reason}"))
                }
            },
            Err(e) => {
                let m = chain(&e);
                self.error(&m);
                // Retry sooner than the full interval, but not in a hot loop.
                let retry = (self.config.update.check_interval / 10)
                    .clamp(Duration::from_secs(10), Duration::from_secs(300));
                self.next_check = schedule::after(now, retry);
                Checked::Failed(m)
            }
        }
    }

    fn check_in_body(&self) -> CheckIn {
        let state = match &self.state {
            AgentState::Downloading(_) | AgentState::Verifying(_) | AgentState::Finalizing(_) => {
                wire::AgentState::Updating
            }
            AgentState::UpdatedNeedReboot(_) => wire::AgentState::Staged,
            AgentState::Rebooting(_) => wire::AgentState::Rebooting,
            AgentState::Error { .. } => wire::AgentState::Error,
            AgentState::Idle | AgentState::Checking | AgentState::PendingMarkGood(_) => {
                wire::AgentState::Idle
            }
        };
        CheckIn {
            node_id: self.rt.node_id.clone(),
            public_key: self.rt.public_key.clone(),
            channel: self.config.node.channel.to_string(),
            group: self.config.node.group.to_string(),
            board: self.config.node.board.to_string(),
            booted: wire::BootedImage {
                version: self
                    .booted_version
                    .clone()
                    .unwrap_or_else(|| "0.0.0".into()),
                slot: match self.booted {
                    Some(SlotName::B) => wire::Slot::B,
                    _ => wire::Slot::A,
                },
            },
            fallback_version: None,
            state,
            // Shown on the dashboard beside the id; not reported yet.
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| moho_protocol::names::check_hostname(h).is_ok()),
            enrollment_token: self
                .config
                .server
                .as_ref()
                .and_then(|s| s.enrollment_token.clone()),
        }
    }

    fn install(&mut self, target: Option<String>) {
        let inactive = self.booted.map(SlotName::other);
        let why = format!(
            "writing an update to slot {}",
            inactive.map_or("?".into(), |s| s.to_string())
        );
        // Held while the slot is written: a shutdown waits for us (up to
        // logind's InhibitDelayMaxSec) instead of cutting a write short.
        let guard = match self.rt.login.delay_shutdown(&why) {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::warn!(error = %e, "no delay inhibitor; installing anyway");
                None
            }
        };
        let progress = DaemonProgress {
            notify: Arc::clone(&self.rt.notify),
            status: self.status.clone(),
            total: Mutex::new(0),
            done: Mutex::new(0),
        };
        let outbox = Arc::clone(&self.outbox);
        let clock = Arc::clone(&self.rt.clock);
        let server = self.rt.server.as_deref();
        let report = move |r: &Report| {
            if let Some(kind) = event_for(r)
                && let Ok(mut o) = outbox.lock()
            {
                if let Err(e) = o.push(wire::Event {
                    at: clock.now(),
                    kind,
                }) {
                    tracing::warn!(error = %e, "could not queue an event");
                }
                if let Some(s) = server
                    && let Err(e) = o.flush(s)
                {
                    tracing::warn!(error = %e, "could not report an install step; will retry");
                }
            }
        };
        let result = crate::install_cmd::run(
            &self.config,
            &InstallArgs {
                disk: Some(self.rt.disk.clone()),
                target,
                version: None,
            },
            self.rt.system.as_ref(),
            self.rt.booted_override,
            &progress,
            &report,
        );
        drop(guard);
        // The install path kept the persisted state; take it over.
        match self.store.load() {
            Ok(s) => self.state = s,
            Err(e) => self.error(&chain(&e)),
        }
        match result {
            Ok(outcome) => {
                tracing::info!("{}", crate::install_cmd::render(&outcome));
                self.status.update(|s| s.last_error.clear());
                self.allowed_since = None;
            }
            Err(e) => self.error(&format!("{e:#}")),
        }
    }

    fn revert(&mut self, from_version: &str, now: Timestamp) {
        if self.booted_version.as_deref() != Some(from_version) {
            tracing::info!(
                from_version,
                "the server reverts a version this node does not run"
            );
            return;
        }
        match self.rollback_slots() {
            Ok(slot) => {
                if let Ok(mut deny) = DenyList::load(&self.config.state_dir)
                    && let Err(e) =
                        deny.deny(from_version, "reverted by the server", &now.to_string())
                {
                    self.error(&chain(&e));
                }
                self.apply(Event::RevertArmed(Staged {
                    target: String::new(),
                    version: "previous".into(),
                    slot,
                    revert: true,
                }));
            }
            Err(e) => self.error(&format!(
                "the server asked for a revert of {from_version}: {e}"
            )),
        }
    }

    fn rollback_slots(&self) -> Result<SlotName, String> {
        let mut disk = GptSlotDisk::open(&self.rt.disk, true).map_err(|e| chain(&e))?;
        let mut ctx = SlotsContext {
            disk: &mut disk,
            system: self.rt.system.as_ref(),
            booted_override: self.rt.booted_override,
        };
        ctx.rollback().map_err(|e| chain(&e))?;
        self.booted
            .map(SlotName::other)
            .ok_or_else(|| "the booted slot is unknown".to_owned())
    }

    fn consider_reboot(&mut self, now: Timestamp) {
        let users = self.rt.login.users().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list sessions");
            Vec::new()
        });
        let inhibitors = self.rt.login.block_inhibitors().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list inhibitors");
            Vec::new()
        });
        // A refusal is remembered for a while before the lock is asked again.
        if self
            .lock_refused
            .as_ref()
            .is_some_and(|(_, until)| now >= *until)
        {
            self.lock_refused = None;
        }
        let decision = reboot_gate::decide(&GateInput {
            now,
            strategy: &self.strategy,
            requested: self.reboot_requested,
            allowed_since: self.allowed_since,
            users: &users,
            inhibitors: &inhibitors,
            max_user_delay: self.config.reboot.max_user_delay,
            max_inhibitor_wait: self.config.reboot.max_inhibitor_wait,
            lock_refused: self.lock_refused.as_ref().map(|(d, _)| d.as_str()),
        });
        self.allowed_since = decision.allowed_since;
        match decision.verdict {
            Verdict::Wait(blocker) => {
                let text = blocker.to_string();
                self.status.update(|s| s.reboot_blocked_by = text);
            }
            Verdict::Reboot { take_lock } => {
                if take_lock && !self.take_lock(now) {
                    return;
                }
                self.status.update(|s| s.reboot_blocked_by.clear());
                self.reboot_requested = false;
                self.apply(Event::RebootStarted);
            }
        }
    }

    fn take_lock(&mut self, now: Timestamp) -> bool {
        let Some(lock) = &self.rt.lock else {
            return true;
        };
        let retry = schedule::after(now, Duration::from_secs(30));
        match lock.pre_reboot() {
            Ok(LockAnswer::Granted) => true,
            Ok(LockAnswer::Refused(detail)) => {
                self.lock_refused = Some((detail, retry));
                self.consider_reboot(now);
                false
            }
            Err(e) => {
                self.lock_refused =
                    Some((format!("lock server unreachable: {}", chain(&e)), retry));
                self.consider_reboot(now);
                false
            }
        }
    }

    fn release_lock(&mut self) {
        let Some(lock) = &self.rt.lock else {
            self.lock_release_pending = false;
            return;
        };
        match lock.steady_state() {
            Ok(()) => self.lock_release_pending = false,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "could not release the reboot lock; will retry")
            }
        }
    }

    // ----- the state machine ----------------------------------------------

    fn apply(&mut self, event: Event) {
        let (next, actions) = match self.state.on(event) {
            Ok(x) => x,
            Err(e) => {
                self.error(&e.to_string());
                return;
            }
        };
        let now = self.rt.clock.now();
        let mut reboot = false;
        for a in actions {
            match a {
                Action::Persist => {
                    if let Err(e) = self.store.save(&next) {
                        self.error(&chain(&e));
                    }
                }
                Action::Report(r) => {
                    if let Some(kind) = event_for(&r)
                        && let Ok(mut o) = self.outbox.lock()
                        && let Err(e) = o.push(wire::Event { at: now, kind })
                    {
                        tracing::warn!(error = %e, "could not queue an event");
                    }
                }
                Action::Deny { version, reason } => {
                    let denied = DenyList::load(&self.config.state_dir)
                        .and_then(|mut d| d.deny(&version, &reason, &now.to_string()));
                    if let Err(e) = denied {
                        self.error(&chain(&e));
                    }
                    tracing::warn!(%version, %reason, "version denied");
                }
                Action::ReleaseLock => self.lock_release_pending = true,
                Action::Reboot => reboot = true,
            }
        }
        tracing::info!(from = self.state.name(), to = next.name(), "agent state");
        self.state = next;
        self.publish();
        if reboot {
            // The "rebooting" report goes out before the machine does.
            self.flush(now);
            tracing::info!("asking logind to reboot");
            if let Err(e) = self.rt.login.reboot() {
                self.apply(Event::RebootFailed {
                    message: e.to_string(),
                });
            }
        }
        if self.lock_release_pending {
            self.release_lock();
        }
        self.flush(now);
    }

    fn error(&self, message: &str) {
        tracing::error!("{message}");
        let m = message.to_owned();
        self.status.update(|s| s.last_error = m);
    }

    fn publish(&self) {
        let state = self.state.clone();
        self.status.update(|s| {
            state.name().clone_into(&mut s.state);
            s.staged_version = match &state {
                AgentState::UpdatedNeedReboot(st)
                | AgentState::Rebooting(st)
                | AgentState::PendingMarkGood(st)
                    if !st.revert =>
                {
                    st.version.clone()
                }
                _ => String::new(),
            };
        });
        let line = match self.status.get() {
            s if s.reboot_blocked_by.is_empty() => s.state,
            s => format!("{}: {}", s.state, s.reboot_blocked_by),
        };
        self.rt.notify.status(&line);
    }

    // ----- commands ---------------------------------------------------------

    fn handle(&mut self, req: Request) {
        let now = self.rt.clock.now();
        let reply: Reply = match req.command {
            Command::Check | Command::Install => {
                if self.checks_allowed() {
                    // Answer once the server has answered; the install (if
                    // any) runs after the reply, followed with `status`.
                    match self.check_decide(now) {
                        Checked::Install { target, what } => {
                            req.answer(Ok(format!("{what}: installing")));
                            self.install(target);
                            if matches!(self.state, AgentState::UpdatedNeedReboot(_)) {
                                self.consider_reboot(self.rt.clock.now());
                            }
                            return;
                        }
                        Checked::Done(m) => Ok(m),
                        Checked::Failed(m) => Err(m),
                    }
                } else {
                    Err(format!(
                        "not checking in state {}: finish the staged update first",
                        self.state.name()
                    ))
                }
            }
            Command::Reboot => match &self.state {
                AgentState::UpdatedNeedReboot(_) => {
                    self.reboot_requested = true;
                    self.consider_reboot(now);
                    let s = self.status.get();
                    if s.reboot_blocked_by.is_empty() {
                        Ok(format!("state {}", s.state))
                    } else {
                        Ok(format!(
                            "reboot requested; waiting: {}",
                            s.reboot_blocked_by
                        ))
                    }
                }
                other => Err(format!(
                    "no update is staged (state {}); nothing to reboot into",
                    other.name()
                )),
            },
            Command::MarkGood => self.mark_good(),
            Command::Rollback => match self.rollback_slots() {
                Ok(slot) => {
                    self.apply(Event::RevertArmed(Staged {
                        target: String::new(),
                        version: "previous".into(),
                        slot,
                        revert: true,
                    }));
                    Ok(format!(
                        "slot {slot} will boot next; reboot per the strategy (state {})",
                        self.state.name()
                    ))
                }
                Err(e) => Err(e),
            },
            Command::Stop => Ok("stopping".into()),
        };
        req.answer(reply);
    }

    /// Marks the booted slot good and, if it was on trial, reports it
    /// healthy and gives back the reboot lock.
    pub fn mark_good(&mut self) -> Reply {
        let marked = GptSlotDisk::open(&self.rt.disk, true)
            .map_err(|e| chain(&e))
            .and_then(|mut disk| {
                let mut ctx = SlotsContext {
                    disk: &mut disk,
                    system: self.rt.system.as_ref(),
                    booted_override: self.rt.booted_override,
                };
                ctx.mark_good(None).map_err(|e| chain(&e))
            });
        match marked {
            Ok(change) => {
                if matches!(self.state, AgentState::PendingMarkGood(_)) {
                    self.apply(Event::MarkedGood);
                }
                self.status.update(|s| s.last_error.clear());
                Ok(change.to_string())
            }
            Err(e) => {
                self.error(&e);
                Err(e)
            }
        }
    }
}

/// What a check decided.
enum Checked {
    /// Install `target` (`None`: the newest for this node).
    Install {
        /// The target.
        target: Option<String>,
        /// What was decided, for the reply.
        what: String,
    },
    /// Nothing to install (or a revert was armed).
    Done(String),
    /// The check failed.
    Failed(String),
}
