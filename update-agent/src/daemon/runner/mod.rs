//! The daemon loop (DESIGN §3 steps 2–11): on start, find out what the last
//! boot did with a staged update; then check in on schedule, install what
//! the server offers, reboot when the strategy allows, report every step,
//! and answer commands from D-Bus. Every decision is made by the pure code
//! ([`super::reboot_gate`], [`super::boot_assess`], [`super::schedule`],
//! the state machine); this file only carries it out against the external
//! systems in [`Runtime`]. [`check`]: checking and installing; [`reboot`]:
//! the reboot gate and the FleetLock; [`commands`]: D-Bus commands.

mod check;
mod commands;
mod reboot;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use moho_core::slot_table::{SlotName, SlotTable};
use moho_disk::{GptSlotDisk, SlotDisk};
use moho_protocol::node as wire;

use super::boot_assess::{BootFinding, assess};
use super::clock::Clock;
use super::commands::{Command, Request};
use super::login::Login;
use super::notify::Notify;
use super::outbox::Outbox;
use super::reboot_gate::Strategy;
use super::schedule;
use super::server::{RebootLock, UpdateServer};
use super::status::StatusHandle;
use super::wire_events::event_for;
use crate::config::AgentConfig;
use crate::config::types::{RebootStrategy, WindowSpec};
use crate::denylist::DenyList;
use crate::state::machine::Action;
use crate::state::store::StateStore;
use crate::state::{AgentState, Event};
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
        if self.has_pending_events() {
            d = d.min(until(self.next_flush));
        }
        d.max(Duration::from_millis(10))
    }

    fn has_pending_events(&self) -> bool {
        self.outbox.lock().is_ok_and(|o| !o.pending().is_empty())
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
}
