//! Where the daemon applies events: the state keeper's transition, then its
//! actions (reports into the persisted outbox and out to the server, the
//! deny list, the reboot, the FleetLock release), then what the world sees
//! (status, sd_notify). The install's steps come here too, through the
//! install service's owner callback.

use std::time::Duration;

use jiff::Timestamp;
use moho_protocol::node as wire;

use super::{Core, Systems, chain};
use crate::daemon::schedule;
use crate::daemon::wire_events::event_for;
use crate::denylist::DenyList;
use crate::state::machine::{Action, Report};
use crate::state::{AgentState, Event, KeeperError};

impl Core {
    /// Applies `event` and carries out its actions.
    pub(super) fn apply(&mut self, sys: &Systems, event: Event) -> Result<(), KeeperError> {
        let now = sys.clock.now();
        let actions = self.keeper.apply(event)?;
        let mut reboot = false;
        for a in actions {
            match a {
                Action::Persist => {}
                Action::Report(r) => self.queue(now, &r),
                Action::Deny { version, reason } => {
                    let denied = DenyList::load(&self.state_dir)
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
        self.publish(sys);
        if reboot {
            // The report goes out before the machine does.
            self.flush(sys, now);
            tracing::info!("asking logind to reboot");
            if let Err(e) = sys.login.reboot() {
                let message = e.to_string();
                self.error(&message);
                self.record(sys, Event::RebootFailed { message });
            }
        }
        if self.lock_release_pending {
            self.release_lock(sys);
        }
        self.flush(sys, now);
        Ok(())
    }

    /// [`Core::apply`], with a refusal logged and shown as the last error.
    pub(super) fn record(&mut self, sys: &Systems, event: Event) {
        if let Err(e) = self.apply(sys, event) {
            self.error(&chain(&e));
        }
    }

    fn queue(&mut self, now: Timestamp, report: &Report) {
        tracing::info!(report = ?report, "install step");
        if let Some(kind) = event_for(report)
            && let Err(e) = self.outbox.push(wire::Event { at: now, kind })
        {
            tracing::warn!(error = %e, "could not queue an event");
        }
    }

    /// Sends what the outbox holds; on failure, tries again in 30 s.
    pub(super) fn flush(&mut self, sys: &Systems, now: Timestamp) {
        let Some(server) = &sys.server else {
            return;
        };
        if self.outbox.pending().is_empty() {
            return;
        }
        match self.outbox.flush(server.as_ref()) {
            Ok(_) => self.next_flush = now,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "could not report events; will retry");
                self.next_flush = schedule::after(now, Duration::from_secs(30));
            }
        }
    }

    /// Gives the FleetLock slot back (`steady-state`), retried until it works.
    pub(super) fn release_lock(&mut self, sys: &Systems) {
        let Some(lock) = &sys.lock else {
            self.lock_release_pending = false;
            return;
        };
        match lock.steady_state() {
            Ok(()) => self.lock_release_pending = false,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "could not release the reboot lock; will retry");
            }
        }
    }

    /// Logs `message` and shows it as `LastError`.
    pub(super) fn error(&self, message: &str) {
        tracing::error!("{message}");
        let m = message.to_owned();
        self.status.update(|s| s.last_error = m);
    }

    /// The state into the status and the service manager's status line.
    pub(super) fn publish(&self, sys: &Systems) {
        let state = self.keeper.state().clone();
        self.status.update(|s| {
            state.name().clone_into(&mut s.state);
            s.staged_version = match &state {
                AgentState::UpdatedNeedReboot(w) if !w.staged.revert => w.staged.version.clone(),
                AgentState::Rebooting(st) if !st.revert => st.version.clone(),
                AgentState::PendingMarkGood(t) => t.staged.version.clone(),
                AgentState::TrialFailed(r) => r.staged.version.clone(),
                _ => String::new(),
            };
            if !matches!(state, AgentState::PendingMarkGood(_)) {
                s.trial_deadline.clear();
            }
        });
        let line = match self.status.get() {
            s if s.reboot_blocked_by.is_empty() => s.state,
            s => format!("{}: {}", s.state, s.reboot_blocked_by),
        };
        sys.notify.status(&line);
    }
}
