//! Commands from D-Bus: check, reboot, mark good, roll back.

use moho_disk::GptSlotDisk;

use super::check::Checked;
use super::{Daemon, chain};
use crate::daemon::commands::{Command, Reply, Request};
use crate::slots_cmd::SlotsContext;
use crate::state::{AgentState, Event, Staged};

impl Daemon {
    pub(super) fn handle(&mut self, req: Request) {
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
