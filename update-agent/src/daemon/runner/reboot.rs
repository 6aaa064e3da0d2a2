//! The reboot: asking the pure gate whether a staged update may reboot
//! now (and showing why not), taking and giving back the FleetLock slot.

use std::time::Duration;

use jiff::Timestamp;

use super::{Daemon, chain};
use crate::daemon::reboot_gate::{self, GateInput, Verdict};
use crate::daemon::schedule;
use crate::daemon::server::LockAnswer;
use crate::state::Event;

impl Daemon {
    pub(super) fn consider_reboot(&mut self, now: Timestamp) {
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

    pub(super) fn take_lock(&mut self, now: Timestamp) -> bool {
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

    pub(super) fn release_lock(&mut self) {
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
}
