//! A trial boot (DESIGN §3.10–3.12): every few seconds the daemon asks
//! systemd how `boot-complete.target` and its health checks are doing and
//! lets the pure [`crate::daemon::trial::judge`] decide. Healthy: the slot
//! is marked good (the mark-good unit does the same; whichever is first).
//! Failed, past the deadline, or withdrawn by the server: the trial slot is
//! taken out of the running, the failure reported (outbox first, so it
//! survives the reboot), and the node reboots into its fallback at once,
//! users getting only their usual bounded delay.

use jiff::Timestamp;

use super::{Daemon, chain};
use crate::daemon::commands::{Answer, CommandError, Reply};
use crate::daemon::trial::{TrialVerdict, judge};
use crate::state::{AgentState, Event, TrialFailure};

impl Daemon {
    pub(super) fn watch_trial(&mut self, now: Timestamp) {
        let AgentState::PendingMarkGood(t) = self.core.keeper.state() else {
            return;
        };
        let since = t.since.unwrap_or(now);
        let health = self.sys.health.boot_health();
        let why;
        let seen = match &health {
            Ok(r) => Ok(r),
            Err(e) => {
                why = e.to_string();
                tracing::debug!(error = %why, "cannot ask systemd about the trial");
                Err(why.as_str())
            }
        };
        match judge(seen, since, now, self.config.health.deadline) {
            TrialVerdict::Healthy => {
                tracing::info!("boot-complete.target reached: the trial passed");
                if let Err(e) = self.mark_good() {
                    self.core.error(&e.to_string());
                }
            }
            TrialVerdict::Waiting { deadline, .. } => {
                let d = deadline.to_string();
                self.core.status.update(|s| {
                    s.trial_deadline = d;
                    s.reboot_blocked_by.clear();
                });
            }
            TrialVerdict::Failed(failure) => self.rescue(failure, now),
        }
    }

    /// Abandons the trial: the slot out of the running first (so the next
    /// boot is the fallback's whatever happens), then the failure recorded
    /// and reported, then the reboot.
    pub(super) fn rescue(&mut self, failure: TrialFailure, now: Timestamp) {
        tracing::error!(%failure, "the trial failed; rebooting into the fallback");
        match self.slots().abandon_trial() {
            Ok(change) => tracing::info!("{change}"),
            Err(e) => self.core.error(&format!(
                "could not take the trial slot out of the running: {}",
                chain(&e)
            )),
        }
        self.core.record(&self.sys, Event::TrialFailed(failure));
        self.consider_reboot(now);
    }

    /// Marks the booted slot good and, if it was on trial, reports it
    /// healthy and gives back the reboot lock.
    pub(super) fn mark_good(&mut self) -> Reply {
        let already = self.slots().booted_already_good()?;
        let change = match already {
            Some(slot) => Answer::AlreadyGood { slot },
            None => Answer::MarkedGood {
                change: self.slots().mark_good(None)?.to_string(),
            },
        };
        if matches!(self.core.keeper.state(), AgentState::PendingMarkGood(_)) {
            self.core
                .apply(&self.sys, Event::MarkedGood)
                .map_err(|e| CommandError::Failed(chain(&e)))?;
        }
        self.core.status.update(|s| s.last_error.clear());
        Ok(change)
    }
}
