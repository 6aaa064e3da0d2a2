//! The reboot: asking the pure gate whether a staged update (or a failed
//! trial's way back) may reboot now and showing why not, confirming a
//! staged update with the server just before its reboot, taking the
//! FleetLock slot, and keeping what the gate learnt in the state.

use std::time::Duration;

use jiff::Timestamp;

use super::check::Decided;
use super::{Daemon, chain};
use crate::daemon::reboot_gate::{self, Blocker, GateInput, Strategy, Verdict};
use crate::daemon::schedule;
use crate::daemon::server::LockAnswer;
use crate::state::{AgentState, Event, LockRefusal};

/// How recent a check-in answer must be for a staged update to reboot
/// without asking the server again.
const FRESH_ANSWER: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

impl Daemon {
    pub(super) fn consider_reboot(&mut self, now: Timestamp) {
        let (mut wait, rescue) = match self.core.keeper.state() {
            AgentState::UpdatedNeedReboot(w) => (w.reboot.clone(), false),
            AgentState::TrialFailed(r) if !r.asked => (r.reboot.clone(), true),
            _ => return,
        };
        let users = self.sys.login.users().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list sessions");
            Vec::new()
        });
        let inhibitors = self.sys.login.block_inhibitors().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list inhibitors");
            Vec::new()
        });
        // A refusal is remembered for a while before the lock is asked again.
        if wait.lock_refused.as_ref().is_some_and(|r| now >= r.until) {
            wait.lock_refused = None;
        }
        let decision = reboot_gate::decide(&GateInput {
            now,
            strategy: &self.core.strategy,
            rescue,
            requested: wait.requested,
            allowed_since: wait.allowed_since,
            users: &users,
            inhibitors: &inhibitors,
            max_user_delay: self.config.reboot.max_user_delay,
            max_inhibitor_wait: self.config.reboot.max_inhibitor_wait,
            lock_refused: wait.lock_refused.as_ref().map(|r| r.detail.as_str()),
        });
        wait.allowed_since = decision.allowed_since;
        match decision.verdict {
            Verdict::Wait(blocker) => {
                let text = blocker.to_string();
                self.core.status.update(|s| s.reboot_blocked_by = text);
                self.core.record(&self.sys, Event::RebootPending(wait));
            }
            Verdict::Reboot { take_lock } => {
                if !rescue && !self.still_wanted(now) {
                    return;
                }
                if take_lock && let Some(refusal) = self.take_lock(now) {
                    let group = match &self.core.strategy {
                        Strategy::FleetLock { group } => group.clone(),
                        _ => String::new(),
                    };
                    let text = Blocker::LockHeld {
                        group,
                        detail: refusal.detail.clone(),
                    }
                    .to_string();
                    wait.lock_refused = Some(refusal);
                    self.core.status.update(|s| s.reboot_blocked_by = text);
                    self.core.record(&self.sys, Event::RebootPending(wait));
                    return;
                }
                self.core.status.update(|s| s.reboot_blocked_by.clear());
                self.core.record(&self.sys, Event::RebootPending(wait));
                self.core.record(&self.sys, Event::RebootStarted);
            }
        }
    }

    /// Whether the staged update may still boot: unless the server
    /// answered a check-in within [`FRESH_ANSWER`], the node checks in
    /// first, so that a release aborted, reverted or held since its last
    /// check-in (up to a whole check interval ago) is cancelled instead of
    /// booted (DESIGN §3.13). A newer release offered instead is installed
    /// (the gate is asked again on the next turn). An unreachable server
    /// does not stop the reboot: the release was offered and verified, and
    /// a server outage must not hold a fleet's updates.
    fn still_wanted(&mut self, now: Timestamp) -> bool {
        let AgentState::UpdatedNeedReboot(w) = self.core.keeper.state() else {
            return true;
        };
        let fresh = self
            .core
            .last_answer
            .is_some_and(|t| now.duration_since(t) < FRESH_ANSWER);
        if w.staged.revert || self.sys.server.is_none() || fresh {
            return true;
        }
        tracing::info!("checking in before the reboot into the staged update");
        match self.check_in(now) {
            Ok(Decided::Install { target, .. }) => {
                self.install(target);
                false
            }
            Ok(Decided::Done(_)) => {
                matches!(self.core.keeper.state(), AgentState::UpdatedNeedReboot(_))
            }
            Err(e) => {
                tracing::warn!(error = %e, "no answer before the reboot; rebooting into the staged update");
                true
            }
        }
    }

    /// Asks for a FleetLock slot; the refusal (and when to ask again) if
    /// it was not granted.
    fn take_lock(&mut self, now: Timestamp) -> Option<LockRefusal> {
        let lock = self.sys.lock.as_ref()?;
        let until = schedule::after(now, Duration::from_secs(30));
        match lock.pre_reboot() {
            Ok(LockAnswer::Granted) => None,
            Ok(LockAnswer::Refused(detail)) => Some(LockRefusal { detail, until }),
            Err(e) => Some(LockRefusal {
                detail: format!("lock server unreachable: {}", chain(&e)),
                until,
            }),
        }
    }
}
