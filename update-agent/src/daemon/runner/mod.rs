//! The daemon loop (DESIGN §3 steps 2–13): on start, find out what the last
//! boot did with a staged update; then check in on schedule (also with an
//! update staged or on trial, so that a withdrawn release is cancelled),
//! install what the server offers, reboot when the strategy allows, watch a
//! trial boot and rescue it when it fails, report every step, and answer
//! commands from D-Bus. Every decision is made by the pure code
//! ([`super::reboot_gate`], [`crate::state::assess`], [`super::trial`],
//! [`super::schedule`], the state machine); this module only carries it out
//! against the external systems in [`Runtime`], all handed in by its caller.
//!
//! - [`check`]: checking in, the server's answers, the install.
//! - [`reboot`]: the reboot gate and the FleetLock.
//! - [`trial`]: watching a trial boot, self-rescue.
//! - [`commands`]: D-Bus commands and their typed answers.
//! - [`effects`]: the one place events are applied and their actions done.

mod check;
mod commands;
mod effects;
mod reboot;
mod trial;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use jiff::Timestamp;
use moho_core::slot_table::SlotName;
use semver::Version;

use super::clock::Clock;
use super::commands::{Answer, Command, Request};
use super::health::BootHealth;
use super::login::Login;
use super::notify::Notify;
use super::outbox::Outbox;
use super::reboot_gate::Strategy;
use super::schedule;
use super::server::{RebootLock, UpdateServer};
use super::status::StatusHandle;
use crate::config::AgentConfig;
use crate::config::types::{RebootStrategy, WindowSpec};
use crate::fetch::Transport;
use crate::service::disk::NodeDisk;
use crate::service::slots::SlotService;
use crate::state::assess::{BootFinding, assess};
use crate::state::{AgentState, StateKeeper};
use crate::system::SystemView;

/// How often a trial boot's health is looked at.
const TRIAL_TICK: Duration = Duration::from_secs(5);

/// The external systems the daemon works with, built by its caller (the
/// real ones by `daemon_cmd`, recording fakes in tests).
#[derive(Debug)]
pub struct Runtime {
    /// The disk holding the slots, opened once.
    pub disk: NodeDisk,
    /// Everything else.
    pub systems: Systems,
}

/// The runtime without the disk: borrowed beside it while an install
/// writes the disk and reports its steps.
pub struct Systems {
    /// The clock: the only source of the time.
    pub clock: Arc<dyn Clock>,
    /// The repository.
    pub transport: Arc<dyn Transport>,
    /// logind.
    pub login: Box<dyn Login>,
    /// systemd's view of the boot's health checks.
    pub health: Box<dyn BootHealth>,
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
    /// The node id.
    pub node_id: String,
    /// The node's public key (check-ins register it).
    pub public_key: String,
    /// The machine's host name (shown on the dashboard).
    pub hostname: Option<String>,
}

impl std::fmt::Debug for Systems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Systems")
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

/// What the daemon knows and keeps between turns.
pub(super) struct Core {
    keeper: StateKeeper,
    outbox: Outbox,
    status: StatusHandle,
    strategy: Strategy,
    state_dir: PathBuf,
    seed: u64,
    checks: u64,
    next_check: Timestamp,
    /// When the server last answered a check-in.
    last_answer: Option<Timestamp>,
    next_flush: Timestamp,
    lock_release_pending: bool,
    booted: Option<SlotName>,
    booted_version: Option<Version>,
}

/// The daemon.
pub struct Daemon {
    config: AgentConfig,
    disk: NodeDisk,
    sys: Systems,
    core: Core,
    commands: Receiver<Request>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("state", self.core.keeper.state())
            .finish_non_exhaustive()
    }
}

pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    moho_core::report::render_chain(e)
}

fn strategy(config: &AgentConfig) -> Result<Strategy, DaemonError> {
    Ok(match &config.reboot.strategy {
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
    })
}

impl Daemon {
    /// Prepares the daemon; nothing runs until [`Daemon::run`].
    pub fn new(
        config: AgentConfig,
        rt: Runtime,
        status: StatusHandle,
        commands: Receiver<Request>,
    ) -> Result<Self, DaemonError> {
        let keeper = StateKeeper::load(&config.state_dir)?;
        let outbox = Outbox::load(&config.state_dir)?;
        let now = rt.systems.clock.now();
        let core = Core {
            keeper,
            outbox,
            status,
            strategy: strategy(&config)?,
            state_dir: config.state_dir.clone(),
            seed: schedule::seed(&rt.systems.node_id),
            checks: 0,
            next_check: now,
            last_answer: None,
            next_flush: now,
            lock_release_pending: false,
            booted: None,
            booted_version: None,
        };
        let Runtime { disk, systems } = rt;
        Ok(Self {
            config,
            disk,
            sys: systems,
            core,
            commands,
        })
    }

    /// Runs until a [`Command::Stop`] or the command channel closes.
    pub fn run(mut self) -> Result<(), DaemonError> {
        self.start();
        self.sys.notify.ready();
        loop {
            self.turn();
            let wait = self.sleep_for(self.sys.clock.now());
            match self.commands.recv_timeout(wait) {
                Ok(req) => {
                    if req.command == Command::Stop {
                        req.answer(Ok(Answer::Stopping));
                        return Ok(());
                    }
                    self.handle(req);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    /// One turn of the loop at the clock's time.
    fn turn(&mut self) {
        let now = self.sys.clock.now();
        self.step(now);
        self.core.publish(&self.sys);
        self.sys.notify.watchdog();
    }

    fn sleep_for(&self, now: Timestamp) -> Duration {
        let until =
            |t: Timestamp| Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO);
        let mut d = self.sys.clock.tick();
        if matches!(self.core.keeper.state(), AgentState::PendingMarkGood(_)) {
            d = d.min(TRIAL_TICK);
        }
        if self.checks_allowed() {
            d = d.min(until(self.core.next_check));
        }
        if !self.core.outbox.pending().is_empty() {
            d = d.min(until(self.core.next_flush));
        }
        d.max(Duration::from_millis(10))
    }

    fn slots(&mut self) -> SlotService<'_> {
        SlotService {
            disk: self.disk.table(),
            system: self.sys.system.as_ref(),
            booted_override: self.sys.booted_override,
        }
    }

    // ----- start-up ------------------------------------------------------

    fn start(&mut self) {
        let now = self.sys.clock.now();
        let disk = self.disk.path().to_owned();
        match self.disk.table().read_slots() {
            Ok(table) => {
                let booted = crate::booted::detect_booted(
                    self.sys.system.as_ref(),
                    self.sys.booted_override,
                    &table,
                    &disk,
                );
                match booted {
                    Ok(Some(b)) => self.core.booted = Some(b.slot),
                    Ok(None) => self.core.error(&format!(
                        "{}: the running system did not boot from a slot of this disk",
                        disk.display()
                    )),
                    Err(e) => self.core.error(&chain(&e)),
                }
            }
            Err(e) => self.core.error(&chain(&e)),
        }
        match crate::os_release::booted_version(&self.config.node.os_release) {
            Ok(v) => self.core.booted_version = v,
            Err(e) => self.core.error(&chain(&e)),
        }
        self.reconcile_boot(now);
        // A node that starts steady gives back any reboot slot it may still
        // hold (a crash between marking good and releasing, say).
        if matches!(self.core.keeper.state(), AgentState::Idle) && self.booted_is_good() {
            self.core.lock_release_pending = self.sys.lock.is_some();
        }
        let booted = self.core.booted.map(|b| b.to_string()).unwrap_or_default();
        let version = self.core.version_string();
        self.core.status.update(|s| {
            s.booted_slot = booted;
            s.booted_version = version;
        });
    }

    fn booted_is_good(&mut self) -> bool {
        let Some(b) = self.core.booted else {
            return false;
        };
        self.disk
            .table()
            .read_slots()
            .is_ok_and(|t| t.attrs(b).successful())
    }

    /// Applies what the last boot did to a staged update.
    fn reconcile_boot(&mut self, now: Timestamp) {
        let Some(booted) = self.core.booted else {
            return;
        };
        let table = match self.disk.table().read_slots() {
            Ok(t) => t,
            Err(e) => {
                self.core.error(&chain(&e));
                return;
            }
        };
        let version = self.core.version_string();
        let finding = assess(
            self.core.keeper.state(),
            booted,
            &table,
            (!version.is_empty()).then_some(version.as_str()),
            now,
        );
        if let BootFinding::Events(events) = finding {
            for e in events {
                self.core.record(&self.sys, e);
            }
        }
    }

    // ----- one turn of the loop -----------------------------------------

    fn step(&mut self, now: Timestamp) {
        if self.core.lock_release_pending {
            self.core.release_lock(&self.sys);
        }
        if now >= self.core.next_flush {
            self.core.flush(&self.sys, now);
        }
        match self.core.keeper.state() {
            AgentState::UpdatedNeedReboot(_) | AgentState::TrialFailed(_) => {
                self.consider_reboot(now);
            }
            AgentState::PendingMarkGood(_) => self.watch_trial(now),
            _ => self.core.status.update(|s| s.reboot_blocked_by.clear()),
        }
        if now >= self.core.next_check && self.checks_allowed() {
            let _ = self.check(now);
        }
    }

    /// Whether the loop checks in: with a server, at rest, with an update
    /// staged and on trial (withdrawn releases are cancelled); without one
    /// only when an install may start.
    fn checks_allowed(&self) -> bool {
        let state = self.core.keeper.state();
        if self.sys.server.is_none() {
            return state.may_install();
        }
        state.may_install()
            || matches!(
                state,
                AgentState::UpdatedNeedReboot(_) | AgentState::PendingMarkGood(_)
            )
    }
}

impl Core {
    fn version_string(&self) -> String {
        self.booted_version
            .as_ref()
            .map(Version::to_string)
            .unwrap_or_default()
    }
}
