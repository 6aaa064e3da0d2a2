//! Checking in and carrying the answer out: the check-in (or, without a
//! server, the repository), the install through the install service with
//! its delay inhibitor and progress, and the server's revert and cancel.

use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use moho_core::slot_table::SlotName;
use moho_core::transitions::TransitionError;
use moho_protocol::node::{self as wire, CheckIn, NodeAction};

use super::{Daemon, chain};
use crate::daemon::commands::{CheckOutcome, CommandError};
use crate::daemon::progress::DaemonProgress;
use crate::daemon::schedule;
use crate::denylist::DenyList;
use crate::install::InstallRequest;
use crate::install::stream::RetryPolicy;
use crate::repo_client::RepoClient;
use crate::service::install::{self as install_service, InstallService};
use crate::service::slots::SlotsError;
use crate::state::{AgentState, Event, Staged, TrialFailure};

/// What a check-in decided.
#[derive(Debug)]
pub(super) enum Decided {
    /// Install `target` (`None`: the newest in the repository).
    Install {
        /// The target.
        target: Option<String>,
        /// Its version, when the server named it.
        version: Option<String>,
    },
    /// Already carried out (or nothing to do).
    Done(CheckOutcome),
}

impl Daemon {
    /// Checks in, carries the answer out and runs the install it decided on.
    pub(super) fn check(&mut self, now: Timestamp) -> Result<CheckOutcome, CommandError> {
        match self.check_in(now)? {
            Decided::Install { target, version } => {
                self.install(target);
                self.after_install();
                if matches!(self.core.keeper.state(), AgentState::UpdatedNeedReboot(_)) {
                    // Staged and waiting: check in again at once, so the
                    // server shows the node staged (not the state of the
                    // check-in before the install) until the next interval.
                    self.core.next_check = self.sys.clock.now();
                }
                Ok(CheckOutcome::Installing { version })
            }
            Decided::Done(o) => Ok(o),
        }
    }

    /// A freshly staged update meets the reboot gate at once.
    pub(super) fn after_install(&mut self) {
        if matches!(self.core.keeper.state(), AgentState::UpdatedNeedReboot(_)) {
            self.consider_reboot(self.sys.clock.now());
        }
    }

    /// Asks the server (or decides to look at the repository) and handles
    /// every answer but an install.
    pub(super) fn check_in(&mut self, now: Timestamp) -> Result<Decided, CommandError> {
        self.core.checks += 1;
        self.core.status.update(|s| s.last_check = now.to_string());
        self.core.next_check = schedule::next_check(
            now,
            self.config.update.check_interval,
            self.core.seed,
            self.core.checks,
        );
        let Some(booted) = self.core.booted else {
            let e = CommandError::BootedUnknown {
                disk: self.disk.path().display().to_string(),
            };
            self.core.error(&e.to_string());
            return Err(e);
        };
        let state = self.core.keeper.state().clone();
        let Some(server) = &self.sys.server else {
            if !state.may_install() {
                return Ok(Decided::Done(CheckOutcome::Ignored {
                    why: format!("state {}: an update is staged or on trial", state.name()),
                }));
            }
            return self.may_install(None, None);
        };
        let req = self.check_in_body(booted, &state);
        let resp = match server.check_in(&req) {
            Ok(r) => r,
            Err(e) => {
                self.core.error(&chain(&e));
                // Retry sooner than the full interval, but not in a hot loop.
                let retry = (self.config.update.check_interval / 10)
                    .clamp(Duration::from_secs(10), Duration::from_secs(300));
                self.core.next_check = schedule::after(now, retry);
                return Err(CommandError::Server(e));
            }
        };
        self.core.status.update(|s| s.last_error.clear());
        self.core.last_answer = Some(now);
        match resp.action {
            NodeAction::Install { target, version } => self.offered(&state, target, version),
            NodeAction::Revert { from_version } => Ok(self.revert(&state, &from_version, now)),
            NodeAction::Cancel { version, reason } => {
                Ok(self.withdrawn(&state, &version, &reason, now))
            }
            NodeAction::Wait {
                retry_after_secs,
                reason,
                ..
            } => {
                tracing::info!(%reason, retry_after_secs, "nothing to install now");
                self.core.next_check = schedule::after_server_wait(now, retry_after_secs);
                Ok(Decided::Done(CheckOutcome::NothingNew { reason }))
            }
        }
    }

    fn may_install(
        &mut self,
        target: Option<String>,
        version: Option<String>,
    ) -> Result<Decided, CommandError> {
        if !self.booted_is_good() {
            let e = CommandError::NotBlessed;
            tracing::info!("{e}");
            self.core.error(&e.to_string());
            return Err(e);
        }
        Ok(Decided::Install { target, version })
    }

    fn offered(
        &mut self,
        state: &AgentState,
        target: String,
        version: String,
    ) -> Result<Decided, CommandError> {
        match state {
            AgentState::UpdatedNeedReboot(w) if w.staged.version == version => {
                return Ok(Decided::Done(CheckOutcome::AlreadyStaged { version }));
            }
            AgentState::UpdatedNeedReboot(_) => {}
            s if !s.may_install() => {
                return Ok(Decided::Done(CheckOutcome::Ignored {
                    why: format!(
                        "the server offers {version}, but state {} installs nothing before \
                         this boot is settled",
                        s.name()
                    ),
                }));
            }
            _ => {}
        }
        if let Ok(deny) = DenyList::load(&self.config.state_dir)
            && let Some(d) = deny.get(&version)
        {
            let e = CommandError::Denied {
                version: version.clone(),
                reason: d.reason.clone(),
            };
            self.core.error(&e.to_string());
            return Err(e);
        }
        self.may_install(Some(target), Some(version))
    }

    pub(super) fn check_in_body(&self, booted: SlotName, state: &AgentState) -> CheckIn {
        let (wire_state, staged_version) = match state {
            AgentState::Downloading(_) | AgentState::Verifying(_) | AgentState::Finalizing(_) => {
                (wire::AgentState::Updating, None)
            }
            AgentState::UpdatedNeedReboot(w) if !w.staged.revert => {
                (wire::AgentState::Staged, Some(w.staged.version.clone()))
            }
            AgentState::UpdatedNeedReboot(_) => (wire::AgentState::Staged, None),
            AgentState::Rebooting(_) => (wire::AgentState::Rebooting, None),
            AgentState::PendingMarkGood(t) => {
                (wire::AgentState::Trial, Some(t.staged.version.clone()))
            }
            AgentState::TrialFailed(r) => (wire::AgentState::Trial, Some(r.staged.version.clone())),
            AgentState::Error { .. } => (wire::AgentState::Error, None),
            AgentState::Idle | AgentState::Checking => (wire::AgentState::Idle, None),
        };
        CheckIn {
            node_id: self.sys.node_id.clone(),
            public_key: self.sys.public_key.clone(),
            channel: self.config.node.channel.to_string(),
            group: self.config.node.group.to_string(),
            board: self.config.node.board.to_string(),
            booted: wire::BootedImage {
                version: self
                    .core
                    .booted_version
                    .as_ref()
                    .map_or_else(|| "0.0.0".into(), ToString::to_string),
                slot: match booted {
                    SlotName::A => wire::Slot::A,
                    SlotName::B => wire::Slot::B,
                },
            },
            fallback_version: None,
            state: wire_state,
            staged_version,
            hostname: self.sys.hostname.clone(),
            enrollment_token: self
                .config
                .server
                .as_ref()
                .and_then(|s| s.enrollment_token.clone()),
        }
    }

    /// Runs the install service on the daemon's disk, transport and clock;
    /// its steps are applied to the daemon's state as they happen.
    pub(super) fn install(&mut self, target: Option<String>) {
        let Some(booted) = self.core.booted else {
            return;
        };
        let why = format!("writing an update to slot {}", booted.other());
        // Held while the slot is written: a shutdown waits for us (up to
        // logind's InhibitDelayMaxSec) instead of cutting a write short.
        let guard = match self.sys.login.delay_shutdown(&why) {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::warn!(error = %e, "no delay inhibitor; installing anyway");
                None
            }
        };
        let progress = DaemonProgress::new(
            std::sync::Arc::clone(&self.sys.notify),
            self.core.status.clone(),
        );
        let state = self.core.keeper.state().clone();
        let request = InstallRequest {
            target,
            version: None,
        };
        let config = &self.config;
        let mut svc = InstallService {
            board: config.node.board.as_str(),
            channel: config.node.channel.as_str(),
            tries: config.update.tries,
            repo: RepoClient::new(
                self.sys.transport.as_ref(),
                &config.repository.metadata_url,
                &config.repository.targets_url,
                &config.repository.root,
                &config.state_dir,
            ),
            disk: &mut self.disk,
            booted,
            booted_version: self.core.booted_version.clone(),
            state_dir: &config.state_dir,
            progress: &progress,
            retry: RetryPolicy {
                attempts: config.update.download_attempts,
                first_backoff: config.update.download_backoff,
            },
            now: SystemTime::from(self.sys.clock.now()),
        };
        let core = &mut self.core;
        let sys = &self.sys;
        let mut owner = |e: Event| core.apply(sys, e).map_err(Into::into);
        let result = install_service::run(&mut svc, &request, &state, &mut owner);
        drop(guard);
        match result {
            Ok(outcome) => {
                tracing::info!("{outcome}");
                self.core.status.update(|s| s.last_error.clear());
            }
            Err(e) => self.core.error(&chain(&e)),
        }
    }

    /// The server reverts `from_version`: on trial, the trial is abandoned;
    /// at rest on that version, the previous slot is armed and the version
    /// denied.
    fn revert(&mut self, state: &AgentState, from_version: &str, now: Timestamp) -> Decided {
        if let AgentState::PendingMarkGood(t) = state
            && t.staged.version == from_version
        {
            self.rescue(
                TrialFailure::Withdrawn {
                    reason: format!("the rollout of {from_version} was reverted"),
                },
                now,
            );
            return Decided::Done(CheckOutcome::TrialAbandoned {
                version: from_version.to_owned(),
            });
        }
        let runs = self
            .core
            .booted_version
            .as_ref()
            .is_some_and(|v| v.to_string() == from_version);
        if !runs || !state.may_install() {
            tracing::info!(
                from_version,
                "the server reverts a version this node does not run"
            );
            return Decided::Done(CheckOutcome::Ignored {
                why: format!("the server reverts {from_version}, which this node does not run"),
            });
        }
        match self.rollback_slots() {
            Ok(slot) => {
                if let Ok(mut deny) = DenyList::load(&self.config.state_dir)
                    && let Err(e) =
                        deny.deny(from_version, "reverted by the server", &now.to_string())
                {
                    self.core.error(&chain(&e));
                }
                self.core
                    .record(&self.sys, Event::RevertArmed(revert_to(slot)));
                Decided::Done(CheckOutcome::Reverting {
                    from_version: from_version.to_owned(),
                    slot,
                })
            }
            Err(e) => {
                self.core.error(&format!(
                    "the server asked for a revert of {from_version}: {}",
                    chain(&e)
                ));
                Decided::Done(CheckOutcome::Ignored {
                    why: format!("the revert of {from_version} failed: {}", chain(&e)),
                })
            }
        }
    }

    /// The server's "cancel": a staged update is cleared, a trial abandoned.
    fn withdrawn(
        &mut self,
        state: &AgentState,
        version: &str,
        reason: &str,
        now: Timestamp,
    ) -> Decided {
        match state {
            AgentState::UpdatedNeedReboot(w) if w.staged.version == version => {
                match self.cancel_staged(reason) {
                    Ok(version) => Decided::Done(CheckOutcome::Cancelled { version }),
                    Err(e) => {
                        self.core.error(&e.to_string());
                        Decided::Done(CheckOutcome::Ignored {
                            why: format!("the cancel of {version} failed: {e}"),
                        })
                    }
                }
            }
            AgentState::PendingMarkGood(t) if t.staged.version == version => {
                self.rescue(
                    TrialFailure::Withdrawn {
                        reason: reason.to_owned(),
                    },
                    now,
                );
                Decided::Done(CheckOutcome::TrialAbandoned {
                    version: version.to_owned(),
                })
            }
            _ => Decided::Done(CheckOutcome::Ignored {
                why: format!("the server cancels {version}, which is not staged here"),
            }),
        }
    }

    /// Clears the staged update's slot (`cancel_armed`), then records the
    /// cancel; returns its version.
    pub(super) fn cancel_staged(&mut self, reason: &str) -> Result<String, CommandError> {
        let AgentState::UpdatedNeedReboot(w) = self.core.keeper.state().clone() else {
            return Err(CommandError::NotNow {
                command: crate::daemon::commands::Command::Cancel,
                state: self.core.keeper.state().name(),
                why: "no update is staged",
            });
        };
        match self.slots().cancel_armed() {
            Ok(change) => tracing::info!("{change}"),
            // Already cleared (by hand, or before a crash): only the record is missing.
            Err(SlotsError::Refused {
                source: TransitionError::NothingArmed { .. },
                ..
            }) => {}
            Err(e) => return Err(CommandError::Slots(e)),
        }
        self.core
            .apply(
                &self.sys,
                Event::Cancelled {
                    reason: reason.to_owned(),
                },
            )
            .map_err(|e| CommandError::Failed(chain(&e)))?;
        // Idle again: say so at once (the server's node view and its
        // offers), not an interval later.
        self.core.next_check = self.sys.clock.now();
        Ok(w.staged.version)
    }

    pub(super) fn rollback_slots(&mut self) -> Result<SlotName, SlotsError> {
        self.slots().rollback()?;
        self.core
            .booted
            .map(SlotName::other)
            .ok_or_else(|| SlotsError::BootedUnknown {
                disk: self.disk.path().display().to_string(),
                needed_for: "rollback",
            })
    }
}

/// The staged "update" of a revert: the previous, successful slot.
pub(super) fn revert_to(slot: SlotName) -> Staged {
    Staged {
        target: String::new(),
        version: "previous".into(),
        slot,
        revert: true,
    }
}
