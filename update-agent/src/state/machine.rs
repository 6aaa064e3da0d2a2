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
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Checking => "checking",
            Self::Downloading => "downloading",
            Self::Verifying => "verifying",
            Self::Finalizing => "finalizing",
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
            Self::Error { .. } => "error",
        }
    }

    /// The update under way or staged, if any.
    pub fn staged(&self) -> Option<&Staged> {
        match self {
            Self::Downloading(s)
            | Self::Verifying(s)
            | Self::Finalizing(s)
            | Self::UpdatedNeedReboot(s) => Some(s),
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
}

/// What the runtime must do after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write the new state to the state directory.
    Persist,
    /// Tell the server (and the logs) about a step.
    Report(Report),
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
    /// An error.
    Error {
        /// The phase.
        phase: Phase,
        /// The message.
        message: String,
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
            // A check may start from any state: from rest, after an error,
            // with an update staged (the server may say "revert"), or after a
            // crash part-way through an install (the journal resumes it).
            (_, Event::CheckStarted) => (S::Checking, Vec::new()),
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
            (S::UpdatedNeedReboot(_) | S::Error { .. } | S::Checking, Event::Cleared) => {
                (S::Idle, persist)
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
                Action::Persist => None,
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
}
