//! Commands from D-Bus — check, reboot, mark good, roll back, cancel — each
//! answered with a typed [`Answer`] or [`CommandError`].

use super::Daemon;
use super::check::{Decided, revert_to};
use crate::daemon::commands::{Answer, CheckOutcome, Command, CommandError, Reply, Request};
use crate::state::{AgentState, Event, TrialFailure};

impl Daemon {
    pub(super) fn handle(&mut self, req: Request) {
        let now = self.sys.clock.now();
        let state = self.core.keeper.state().clone();
        let reply: Reply = match req.command {
            Command::Check | Command::Install => {
                if !self.checks_allowed() {
                    Err(CommandError::NotNow {
                        command: req.command,
                        state: state.name(),
                        why: "finish the update under way first",
                    })
                } else {
                    // Answer once the server has answered; the install (if
                    // any) runs after the reply, followed with `status`.
                    match self.check_in(now) {
                        Ok(Decided::Install { target, version }) => {
                            req.answer(Ok(Answer::Checked(CheckOutcome::Installing { version })));
                            self.install(target);
                            self.after_install();
                            return;
                        }
                        Ok(Decided::Done(o)) => Ok(Answer::Checked(o)),
                        Err(e) => Err(e),
                    }
                }
            }
            Command::Reboot => match &state {
                AgentState::UpdatedNeedReboot(w) => {
                    let mut wait = w.reboot.clone();
                    wait.requested = true;
                    self.core.record(&self.sys, Event::RebootPending(wait));
                    self.consider_reboot(now);
                    match self.core.keeper.state() {
                        AgentState::UpdatedNeedReboot(_) => Ok(Answer::RebootWaiting {
                            blocked_by: self.core.status.get().reboot_blocked_by,
                        }),
                        _ => Ok(Answer::RebootStarted),
                    }
                }
                other => Err(CommandError::NotNow {
                    command: Command::Reboot,
                    state: other.name(),
                    why: "no update is staged; nothing to reboot into",
                }),
            },
            Command::MarkGood => self.mark_good(),
            Command::Rollback => {
                if state.may_install() {
                    self.rollback_slots()
                        .map_err(CommandError::Slots)
                        .map(|slot| {
                            self.core
                                .record(&self.sys, Event::RevertArmed(revert_to(slot)));
                            Answer::RollbackArmed { slot }
                        })
                } else {
                    Err(CommandError::NotNow {
                        command: Command::Rollback,
                        state: state.name(),
                        why: "an update is staged or on trial: cancel it instead",
                    })
                }
            }
            Command::Cancel => match &state {
                AgentState::UpdatedNeedReboot(w) if !w.staged.revert => self
                    .cancel_staged("cancelled by the operator (update-agent cancel)")
                    .map(|version| Answer::Cancelled { version }),
                AgentState::PendingMarkGood(t) => {
                    let version = t.staged.version.clone();
                    self.rescue(
                        TrialFailure::Withdrawn {
                            reason: "cancelled by the operator (update-agent cancel)".into(),
                        },
                        now,
                    );
                    Ok(Answer::TrialAbandoned { version })
                }
                other => Err(CommandError::NotNow {
                    command: Command::Cancel,
                    state: other.name(),
                    why: "no update is staged or on trial; nothing to cancel",
                }),
            },
            Command::Stop => Ok(Answer::Stopping),
        };
        req.answer(reply);
    }
}
