//! The agent state machine (Zincati's, with checked transitions): the
//! current [`AgentState`] and an [`Event`] give the next state and the
//! [`Action`]s the runtime must carry out, or a [`StateError`] when the event
//! makes no sense in that state. Nothing here does I/O or panics.

use std::fmt;

use moho_core::slot_table::SlotName;
use serde::{Deserialize, Serialize};

/// What is being installed, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    /// TUF target name of the image.
    pub target: String,
    /// Its version.
    pub version: String,
    /// The slot it goes to.
    pub slot: SlotName,
    /// A revert ordered by the server: the slot holds the previous,
    /// already successful release (nothing was written).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revert: bool,
}

/// The agent's states (DESIGN §3, issue 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum AgentState {
    /// Nothing under way.
    Idle,
    /// Asking the server or the repository what to install.
    Checking,
    /// Streaming the image to the inactive slot.
    Downloading(Staged),
    /// Reading the slot back and checking the whole-image hash.
    Verifying(Staged),
    /// Arming the slot.
    Finalizing(Staged),
    /// The slot is armed; a reboot will try it.
    UpdatedNeedReboot(Staged),
    /// The reboot into the staged slot was asked for.
    Rebooting(Staged),
    /// The staged slot booted; it is on trial until marked good after
    /// `boot-complete.target`. No new install starts in this state.
    PendingMarkGood(Staged),
    /// The last attempt failed.
    Error {
        /// In which phase.
        phase: Phase,
        /// What happened.
        message: String,
        /// The update that was under way, if any.
        staged: Option<Staged>,
    },
}

/// The phases an error can happen in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Checking.
    Checking,
    /// Downloading and writing.
    Downloading,
    /// Reading back.
    Verifying,
    /// Arming.
    Finalizing,
    /// Asking for the reboot.
    Rebooting,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Checking => "checking",
            Self::Downloading => "downloading",
            Self::Verifying => "verifying",
            Self::Finalizing => "finalizing",
            Self::Rebooting => "rebooting",
        })
    }
}

impl AgentState {
    /// The state's name as shown to users (`updated-need-reboot`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Checking => "checking",
            Self::Downloading(_) => "downloading",
            Self::Verifying(_) => "verifying",
            Self::Finalizing(_) => "finalizing",
            Self::UpdatedNeedReboot(_) => "updated-need-reboot",
            Self::Rebooting(_) => "rebooting",
            Self::PendingMarkGood(_) => "pending-mark-good",
            Self::Error { .. } => "error",
        }
    }

    /// The update under way or staged, if any.
    pub fn staged(&self) -> Option<&Staged> {
        match self {
            Self::Downloading(s)
            | Self::Verifying(s)
            | Self::Finalizing(s)
            | Self::UpdatedNeedReboot(s)
            | Self::Rebooting(s)
            | Self::PendingMarkGood(s) => Some(s),
            Self::Error { staged, .. } => staged.as_ref(),
            Self::Idle | Self::Checking => None,
        }
    }

    /// Whether an install was cut off part-way (a restart should resume it).
    pub fn interrupted_install(&self) -> Option<&Staged> {
        match self {
            Self::Downloading(s) | Self::Verifying(s) | Self::Finalizing(s) => Some(s),
            _ => None,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A check begins.
    CheckStarted,
    /// The check found nothing to install.
    NothingToInstall,
    /// The check chose an update; streaming begins (the slot is cleared).
    UpdateChosen(Staged),
    /// Every chunk is written and verified.
    Downloaded,
    /// The slot read back with the signed image hash.
    Verified,
    /// The slot is armed.
    Armed,
    /// The current phase failed.
    Failed {
        /// What happened.
        message: String,
    },
    /// The staged update was withdrawn (cancel, or it booted / failed to boot).
    Cleared,
    /// The check chose the update that is already staged and armed.
    StillStaged(Staged),
    /// The server ordered a revert; the previous slot is armed to boot next.
    RevertArmed(Staged),
    /// The reboot strategy allowed the reboot; it is being asked for.
    RebootStarted,
    /// The reboot request failed; the update stays staged.
    RebootFailed {
        /// Why.
        message: String,
    },
    /// After a restart: the staged slot is the booted one.
    BootedStaged,
    /// The booted slot was marked good.
    MarkedGood,
    /// After a restart: the other slot booted and the staged one has no
    /// tries left, so its boot failed and the selector fell back.
    RolledBack {
        /// The version running now.
        booted_version: String,
    },
}

/// What the runtime must do after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write the new state to the state directory.
    Persist,
    /// Tell the server (and the logs) about a step.
    Report(Report),
    /// Put the version on the local deny list (DESIGN §3.11).
    Deny {
        /// The version.
        version: String,
        /// Why.
        reason: String,
    },
    /// Give the FleetLock reboot slot back (`steady-state`).
    ReleaseLock,
    /// Ask logind to reboot.
    Reboot,
}

/// A step worth reporting (the server's event vocabulary, issue 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Download started.
    DownloadStarted(Staged),
    /// Download finished and verified.
    DownloadFinished(Staged),
    /// The slot is armed.
    Installed(Staged),
    /// About to reboot into it.
    Rebooting(Staged),
    /// The staged version booted (on trial).
    BootedNewVersion(Staged),
    /// The booted version was marked good.
    Healthy(Staged),
    /// The staged version failed to boot; the node fell back.
    Rollback {
        /// The version that failed.
        failed: Staged,
        /// The version running now.
        booted_version: String,
    },
    /// An error.
    Error {
        /// The phase.
        phase: Phase,
        /// The message.
        message: String,
        /// The version concerned, if an update was under way.
        version: Option<String>,
    },
}

/// An event that makes no sense in the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("agent state {state}: event {event} is not allowed")]
pub struct StateError {
    /// The state's name.
    pub state: &'static str,
    /// The event.
    pub event: String,
}

impl AgentState {
    /// The next state and the actions for `event`.
    pub fn on(&self, event: Event) -> Result<(Self, Vec<Action>), StateError> {
        use AgentState as S;
        let persist = vec![Action::Persist];
        let next = match (self, &event) {
            // A check may start from rest, after an error, with an update
            // staged (the server may say "revert"), or after a crash
            // part-way through an install (the journal resumes it) — but not
            // while rebooting or on trial.
            (s, Event::CheckStarted) if !matches!(s, S::PendingMarkGood(_) | S::Rebooting(_)) => {
                (S::Checking, Vec::new())
            }
            (S::Checking, Event::NothingToInstall) => (S::Idle, persist),
            (S::Checking, Event::StillStaged(s)) => (S::UpdatedNeedReboot(s.clone()), persist),
            (S::Checking, Event::UpdateChosen(s)) => (
                S::Downloading(s.clone()),
                vec![
                    Action::Persist,
                    Action::Report(Report::DownloadStarted(s.clone())),
                ],
            ),
            // A restart resumes an interrupted install where it stood.
            (S::Downloading(s), Event::UpdateChosen(n)) if s == n => {
                (S::Downloading(s.clone()), persist)
            }
            (S::Downloading(s), Event::Downloaded) => (S::Verifying(s.clone()), persist),
            (S::Verifying(s), Event::Verified) => (
                S::Finalizing(s.clone()),
                vec![
                    Action::Persist,
                    Action::Report(Report::DownloadFinished(s.clone())),
                ],
            ),
            (S::Finalizing(s), Event::Armed) => (
                S::UpdatedNeedReboot(s.clone()),
                vec![
                    Action::Persist,
                    Action::Report(Report::Installed(s.clone())),
                ],
            ),
            (S::Checking, Event::Failed { message }) => {
                return Ok(fail(Phase::Checking, message, None));
            }
            (S::Downloading(s), Event::Failed { message }) => {
                return Ok(fail(Phase::Downloading, message, Some(s)));
            }
            (S::Verifying(s), Event::Failed { message }) => {
                return Ok(fail(Phase::Verifying, message, Some(s)));
            }
            (S::Finalizing(s), Event::Failed { message }) => {
                return Ok(fail(Phase::Finalizing, message, Some(s)));
            }
            (S::UpdatedNeedReboot(_) | S::Error { .. } | S::Checking | S::Idle, Event::Cleared) => {
                (S::Idle, persist)
            }
            (S::Checking | S::Idle | S::Error { .. }, Event::RevertArmed(s)) => {
                (S::UpdatedNeedReboot(s.clone()), persist)
            }
            (S::UpdatedNeedReboot(s), Event::RebootStarted) => (
                S::Rebooting(s.clone()),
                vec![
                    Action::Persist,
                    Action::Report(Report::Rebooting(s.clone())),
                    Action::Reboot,
                ],
            ),
            (S::Rebooting(s), Event::RebootFailed { message }) => (
                S::UpdatedNeedReboot(s.clone()),
                vec![
                    Action::Persist,
                    Action::Report(Report::Error {
                        phase: Phase::Rebooting,
                        message: message.clone(),
                        version: Some(s.version.clone()),
                    }),
                ],
            ),
            // A restart in the same boot: the reboot never happened.
            (S::Rebooting(s), Event::StillStaged(n)) if s == n => {
                (S::UpdatedNeedReboot(s.clone()), persist)
            }
            (S::UpdatedNeedReboot(s) | S::Rebooting(s), Event::BootedStaged) if s.revert => {
                // The previous release is back; it was already good.
                (S::Idle, vec![Action::Persist, Action::ReleaseLock])
            }
            (S::UpdatedNeedReboot(s) | S::Rebooting(s), Event::BootedStaged) => (
                S::PendingMarkGood(s.clone()),
                vec![
                    Action::Persist,
                    Action::Report(Report::BootedNewVersion(s.clone())),
                ],
            ),
            (S::PendingMarkGood(s), Event::MarkedGood) => (
                S::Idle,
                vec![
                    Action::Persist,
                    Action::Report(Report::Healthy(s.clone())),
                    Action::ReleaseLock,
                ],
            ),
            (
                S::UpdatedNeedReboot(s) | S::Rebooting(s) | S::PendingMarkGood(s),
                Event::RolledBack { booted_version },
            ) => (
                S::Idle,
                vec![
                    Action::Deny {
                        version: s.version.clone(),
                        reason: format!(
                            "slot {} did not boot successfully; fell back to {booted_version}",
                            s.slot
                        ),
                    },
                    Action::Persist,
                    Action::Report(Report::Rollback {
                        failed: s.clone(),
                        booted_version: booted_version.clone(),
                    }),
                    Action::ReleaseLock,
                ],
            ),
            // A node on trial neither checks nor installs (DESIGN §3.1).
            (S::PendingMarkGood(_) | S::Rebooting(_), Event::CheckStarted) => {
                return Err(StateError {
                    state: self.name(),
                    event: format!("{event:?}"),
                });
            }
            _ => {
                return Err(StateError {
                    state: self.name(),
                    event: format!("{event:?}"),
                });
            }
        };
        Ok(next)
    }
}

fn fail(phase: Phase, message: &str, staged: Option<&Staged>) -> (AgentState, Vec<Action>) {
    (
        AgentState::Error {
            phase,
            message: message.to_owned(),
            staged: staged.cloned(),
        },
        vec![
            Action::Persist,
            Action::Report(Report::Error {
                phase,
                message: message.to_owned(),
                version: staged.map(|s| s.version.clone()),
            }),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged() -> Staged {
        Staged {
            target: "amd64/1.1.0/image".into(),
            version: "1.1.0".into(),
            slot: SlotName::B,
            revert: false,
        }
    }

    #[test]
    fn a_full_install_walks_every_state_and_reports_each_step() {
        let mut s = AgentState::Idle;
        let mut reports = Vec::new();
        for ev in [
            Event::CheckStarted,
            Event::UpdateChosen(staged()),
            Event::Downloaded,
            Event::Verified,
            Event::Armed,
        ] {
            let (next, actions) = s.on(ev).unwrap();
            reports.extend(actions.into_iter().filter_map(|a| match a {
                Action::Report(r) => Some(r),
                _ => None,
            }));
            s = next;
        }
        assert_eq!(s, AgentState::UpdatedNeedReboot(staged()));
        assert_eq!(reports.len(), 3);
    }

    #[test]
    fn out_of_order_events_are_errors_not_panics() {
        let err = AgentState::Idle.on(Event::Armed).unwrap_err();
        assert_eq!(err.state, "idle");
        assert!(err.to_string().contains("Armed"));
        assert!(AgentState::Verifying(staged()).on(Event::Armed).is_err());
    }

    #[test]
    fn a_failure_remembers_its_phase_and_update() {
        let (s, actions) = AgentState::Verifying(staged())
            .on(Event::Failed {
                message: "image hash mismatch".into(),
            })
            .unwrap();
        assert_eq!(s.name(), "error");
        assert_eq!(s.staged(), Some(&staged()));
        assert!(actions.contains(&Action::Persist));
        // And a new check may start from there.
        assert_eq!(s.on(Event::CheckStarted).unwrap().0, AgentState::Checking);
    }

    #[test]
    fn states_serialize_with_their_user_facing_names() {
        let j = serde_json::to_value(AgentState::UpdatedNeedReboot(staged())).unwrap();
        assert_eq!(j["state"], "updated-need-reboot");
        let back: AgentState = serde_json::from_value(j).unwrap();
        assert_eq!(back, AgentState::UpdatedNeedReboot(staged()));
    }

    fn reports(actions: &[Action]) -> Vec<&Report> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Report(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_reboot_then_a_good_boot_reports_each_step_and_releases_the_lock() {
        let s = AgentState::UpdatedNeedReboot(staged());
        let (s, a) = s.on(Event::RebootStarted).unwrap();
        assert_eq!(s.name(), "rebooting");
        assert!(a.contains(&Action::Reboot));
        assert_eq!(reports(&a), [&Report::Rebooting(staged())]);
        let (s, a) = s.on(Event::BootedStaged).unwrap();
        assert_eq!(s, AgentState::PendingMarkGood(staged()));
        assert_eq!(reports(&a), [&Report::BootedNewVersion(staged())]);
        // On trial: no check, no install.
        assert!(s.on(Event::CheckStarted).is_err());
        let (s, a) = s.on(Event::MarkedGood).unwrap();
        assert_eq!(s, AgentState::Idle);
        assert!(a.contains(&Action::ReleaseLock));
        assert_eq!(reports(&a), [&Report::Healthy(staged())]);
    }

    #[test]
    fn a_fallback_denies_the_version_reports_the_rollback_and_ends_idle() {
        for s in [
            AgentState::UpdatedNeedReboot(staged()),
            AgentState::Rebooting(staged()),
        ] {
            let (s, a) = s
                .on(Event::RolledBack {
                    booted_version: "1.0.0".into(),
                })
                .unwrap();
            assert_eq!(s, AgentState::Idle);
            assert!(
                a.iter()
                    .any(|a| matches!(a, Action::Deny { version, .. } if version == "1.1.0"))
            );
            assert!(a.contains(&Action::ReleaseLock));
            assert_eq!(
                reports(&a),
                [&Report::Rollback {
                    failed: staged(),
                    booted_version: "1.0.0".into()
                }]
            );
        }
    }

    #[test]
    fn a_failed_reboot_request_keeps_the_update_staged() {
        let (s, a) = AgentState::Rebooting(staged())
            .on(Event::RebootFailed {
                message: "logind: access denied".into(),
            })
            .unwrap();
        assert_eq!(s, AgentState::UpdatedNeedReboot(staged()));
        assert!(matches!(
            reports(&a)[..],
            [Report::Error {
                phase: Phase::Rebooting,
                ..
            }]
        ));
    }

    #[test]
    fn a_revert_boots_back_without_claiming_a_healthy_update() {
        let revert = Staged {
            revert: true,
            ..staged()
        };
        let (s, _) = AgentState::Checking
            .on(Event::RevertArmed(revert.clone()))
            .unwrap();
        let (s, _) = s.on(Event::RebootStarted).unwrap();
        let (s, a) = s.on(Event::BootedStaged).unwrap();
        assert_eq!(s, AgentState::Idle);
        assert!(reports(&a).is_empty());
    }
}
