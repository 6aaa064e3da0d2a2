//! Checking for an update and carrying the answer out: the check-in (or,
//! without a server, the repository), the install with its delay
//! inhibitor and progress, and a server-ordered revert.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use moho_core::slot_table::SlotName;
use moho_disk::GptSlotDisk;
use moho_protocol::node::{self as wire, CheckIn, NodeAction};

use super::{Daemon, chain};
use crate::daemon::commands::Reply;
use crate::daemon::progress::DaemonProgress;
use crate::daemon::schedule;
use crate::daemon::wire_events::event_for;
use crate::denylist::DenyList;
use crate::install_cmd::InstallArgs;
use crate::slots_cmd::SlotsContext;
use crate::state::machine::Report;
use crate::state::{AgentState, Event, Staged};

impl Daemon {
    /// Checks in (or, without a server, looks at the repository) and then
    /// runs the install it decided on.
    pub(super) fn check(&mut self, now: Timestamp) -> Reply {
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

    pub(super) fn check_decide(&mut self, now: Timestamp) -> Checked {
        self.checks += 1;
        self.status.update(|s| s.last_check = now.to_string());
        self.next_check = schedule::next_check(
            now,
            self.config.update.check_interval,
            self.seed,
            self.checks,
        );
        let Some(booted) = self.booted else {
            let m = format!(
                "{}: cannot tell which slot is booted; not checking for updates",
                self.rt.disk.display()
            );
            self.error(&m);
            return Checked::Failed(m);
        };
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
        let req = self.check_in_body(booted);
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

    pub(super) fn check_in_body(&self, booted: SlotName) -> CheckIn {
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
                slot: match booted {
                    SlotName::A => wire::Slot::A,
                    SlotName::B => wire::Slot::B,
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

    pub(super) fn install(&mut self, target: Option<String>) {
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

    pub(super) fn revert(&mut self, from_version: &str, now: Timestamp) {
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

    pub(super) fn rollback_slots(&self) -> Result<SlotName, String> {
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
}

/// What a check decided.
pub(super) enum Checked {
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
