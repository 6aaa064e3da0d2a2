//! The agent state machine (Zincati's, with checked transitions): the
//! current [`AgentState`] and an [`Event`] give the next state and the
//! [`Action`]s the runtime must carry out, or a [`StateError`] when the event
//! makes no sense in that state. What belongs to a state lives in its
//! variant (the reboot gate's progress in [`Waiting`], the trial's start in
//! [`Trial`], the failure that ends a trial in [`Rescue`]), so a transition
//! cannot forget it. Nothing here does I/O or panics.

use std::fmt;

use jiff::Timestamp;
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

/// What the reboot gate has learnt about a reboot that waits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebootWait {
    /// When the strategy first allowed the reboot: the bounded delays for
    /// logged-in users and block inhibitors count from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_since: Option<Timestamp>,
    /// An operator asked for the reboot (`update-agent reboot`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requested: bool,
    /// The FleetLock refused a slot; it is not asked again before `until`.
    /// Not persisted: a restarted agent asks again.
    #[serde(skip)]
    pub lock_refused: Option<LockRefusal>,
}

impl RebootWait {
    /// Whether nothing was learnt yet (nothing to persist).
    pub fn is_fresh(&self) -> bool {
        self.allowed_since.is_none() && !self.requested
    }

    fn persisted_eq(&self, other: &Self) -> bool {
        self.allowed_since == other.allowed_since && self.requested == other.requested
    }
}

/// A FleetLock refusal and when to ask again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRefusal {
    /// The lock server's message.
    pub detail: String,
    /// Not asked again before this.
    pub until: Timestamp,
}

/// A staged update waiting for its reboot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// The update.
    #[serde(flatten)]
    pub staged: Staged,
    /// The gate's progress.
    #[serde(default, skip_serializing_if = "RebootWait::is_fresh")]
    pub reboot: RebootWait,
}

impl Waiting {
    /// A reboot nobody has looked at yet.
    pub fn new(staged: Staged) -> Self {
        Self {
            staged,
            reboot: RebootWait::default(),
        }
    }
}

/// The staged slot booted and is on trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    /// The update on trial.
    #[serde(flatten)]
    pub staged: Staged,
    /// When the agent first saw the trial boot; the health deadline counts
    /// from here (`None` in a state written by an older agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
}

/// Why a trial boot is abandoned (DESIGN §3.12, §3.13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TrialFailure {
    /// A unit `boot-complete.target` requires failed.
    UnitFailed {
        /// The unit.
        unit: String,
        /// Its status text (or result and exit status).
        detail: String,
    },
    /// `boot-complete.target` was not reached within the health deadline.
    Deadline {
        /// The deadline, as configured (`10m`).
        deadline: String,
        /// The units still not active, with their state.
        waiting_for: Vec<String>,
    },
    /// The server withdrew the release (cancel or revert) during the trial.
    Withdrawn {
        /// The server's reason.
        reason: String,
    },
}

impl fmt::Display for TrialFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnitFailed { unit, detail } => write!(f, "health check {unit} failed: {detail}"),
            Self::Deadline {
                deadline,
                waiting_for,
            } if waiting_for.is_empty() => {
                write!(f, "boot-complete.target not reached within {deadline}")
            }
            Self::Deadline {
                deadline,
                waiting_for,
            } => write!(
                f,
                "boot-complete.target not reached within {deadline} (waiting for {})",
                waiting_for.join(", ")
            ),
            Self::Withdrawn { reason } => write!(f, "withdrawn by the server: {reason}"),
        }
    }
}

/// A failed trial on its way back to the fallback slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rescue {
    /// The update that failed.
    #[serde(flatten)]
    pub staged: Staged,
    /// Why.
    pub failure: TrialFailure,
    /// The gate's progress (users and inhibitors still get their bounded delay).
    #[serde(default, skip_serializing_if = "RebootWait::is_fresh")]
    pub reboot: RebootWait,
    /// logind was asked to reboot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub asked: bool,
}

/// The agent's states (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum AgentState {
    /// Nothing under way.
    Idle,
    /// Asking the repository what to install.
    Checking,
    /// Streaming the image to the inactive slot.
    Downloading(Staged),
    /// Reading the slot back and checking the whole-image hash.
    Verifying(Staged),
    /// Arming the slot.
    Finalizing(Staged),
    /// The slot is armed; a reboot will try it.
    UpdatedNeedReboot(Waiting),
    /// The reboot into the staged slot was asked for.
    Rebooting(Staged),
    /// The staged slot booted; it is on trial until marked good after
    /// `boot-complete.target`. No new install starts in this state.
    PendingMarkGood(Trial),
    /// The trial failed (or was withdrawn): its slot is out of the running
    /// and the agent reboots into the fallback.
    TrialFailed(Rescue),
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
            Self::TrialFailed(_) => "trial-failed",
            Self::Error { .. } => "error",
        }
    }

    /// The update under way, staged or on trial, if any.
    pub fn staged(&self) -> Option<&Staged> {
        match self {
            Self::Downloading(s)
            | Self::Verifying(s)
            | Self::Finalizing(s)
            | Self::Rebooting(s) => Some(s),
            Self::UpdatedNeedReboot(w) => Some(&w.staged),
            Self::PendingMarkGood(t) => Some(&t.staged),
            Self::TrialFailed(r) => Some(&r.staged),
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

    /// Whether a new install may start: at rest, after an error, or to
    /// resume one cut off (never with an update staged, rebooting or on trial).
    pub fn may_install(&self) -> bool {
        matches!(
            self,
            Self::Idle
                | Self::Error { .. }
                | Self::Downloading(_)
                | Self::Verifying(_)
                | Self::Finalizing(_)
        )
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An install check begins.
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
    /// After a restart: the staged slot was found cleared (a cancel that
    /// was written but not recorded).
    Cleared,
    /// The staged update was cancelled; the runtime already cleared its
    /// slot (`cancel_armed`).
    Cancelled {
        /// Why (the server's answer, or the operator).
        reason: String,
    },
    /// The check chose the update that is already staged and armed.
    StillStaged(Staged),
    /// The server ordered a revert; the previous slot is armed to boot next.
    RevertArmed(Staged),
    /// The reboot gate's new view of a waiting reboot.
    RebootPending(RebootWait),
    /// The reboot may happen; it is being asked for.
    RebootStarted,
    /// The reboot request failed; the update stays staged.
    RebootFailed {
        /// Why.
        message: String,
    },
    /// After a restart: the staged slot is the booted one.
    BootedStaged {
        /// Now: the trial's health deadline counts from here.
        at: Timestamp,
    },
    /// A trial recorded by an older agent gets its start time.
    TrialObserved {
        /// Now.
        at: Timestamp,
    },
    /// The booted slot was marked good.
    MarkedGood,
    /// The trial failed; the runtime already took its slot out of the
    /// running (`abandon_trial`), so the next boot is the fallback's.
    TrialFailed(TrialFailure),
    /// After a restart: the other slot booted and the staged one may not
    /// boot again, so its trial failed and the selector fell back.
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

/// A step worth reporting (the server's event vocabulary).
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
    /// The trial failed; the node reboots into its fallback.
    TrialFailed {
        /// The version on trial.
        staged: Staged,
        /// Why.
        failure: TrialFailure,
    },
    /// The staged version failed to boot; the node fell back.
    Rollback {
        /// The version that failed.
        failed: Staged,
        /// The version running now.
        booted_version: String,
        /// Why, as far as the node knows.
        reason: String,
    },
    /// The staged update was cancelled before any reboot.
    Cancelled {
        /// The update.
        staged: Staged,
        /// Why.
        reason: String,
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

/// Why the node fell back, for the deny list and the rollback report.
fn fallback_reason(state: &AgentState, slot: SlotName, booted_version: &str) -> String {
    match state {
        AgentState::TrialFailed(r) => format!("{}; fell back to {booted_version}", r.failure),
        AgentState::PendingMarkGood(_) => format!(
            "slot {slot} did not boot successfully (boot-complete.target not reached); \
             fell back to {booted_version}"
        ),
        _ => format!("slot {slot} did not boot successfully; fell back to {booted_version}"),
    }
}

impl AgentState {
    /// The next state and the actions for `event`.
    pub fn on(&self, event: Event) -> Result<(Self, Vec<Action>), StateError> {
        use AgentState as S;
        let persist = vec![Action::Persist];
        let next = match (self, &event) {
            (s, Event::CheckStarted) if s.may_install() => (S::Checking, Vec::new()),
            (S::Checking, Event::NothingToInstall) => (S::Idle, persist),
            (S::Checking | S::Rebooting(_), Event::StillStaged(s))
                if self.staged().is_none_or(|r| r == s) =>
            {
                (S::UpdatedNeedReboot(Waiting::new(s.clone())), persist)
            }
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
                S::UpdatedNeedReboot(Waiting::new(s.clone())),
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
            (S::UpdatedNeedReboot(w), Event::Cancelled { reason }) => (
                S::Idle,
                vec![
                    Action::Persist,
                    Action::Report(Report::Cancelled {
                        staged: w.staged.clone(),
                        reason: reason.clone(),
                    }),
                ],
            ),
            (S::Checking | S::Idle | S::Error { .. }, Event::RevertArmed(s)) => {
                (S::UpdatedNeedReboot(Waiting::new(s.clone())), persist)
            }
            (S::UpdatedNeedReboot(w), Event::RebootPending(r)) => {
                let actions = if w.reboot.persisted_eq(r) {
                    Vec::new()
                } else {
                    persist
                };
                (
                    S::UpdatedNeedReboot(Waiting {
                        staged: w.staged.clone(),
                        reboot: r.clone(),
                    }),
                    actions,
                )
            }
            (S::TrialFailed(x), Event::RebootPending(r)) => {
                let actions = if x.reboot.persisted_eq(r) {
                    Vec::new()
                } else {
                    persist
                };
                (
                    S::TrialFailed(Rescue {
                        reboot: r.clone(),
                        ..x.clone()
                    }),
                    actions,
                )
            }
            (S::UpdatedNeedReboot(w), Event::RebootStarted) => (
                S::Rebooting(w.staged.clone()),
                vec![
                    Action::Persist,
                    Action::Report(Report::Rebooting(w.staged.clone())),
                    Action::Reboot,
                ],
            ),
            (S::TrialFailed(x), Event::RebootStarted) if !x.asked => (
                S::TrialFailed(Rescue {
                    asked: true,
                    ..x.clone()
                }),
                vec![Action::Persist, Action::Reboot],
            ),
            (S::Rebooting(s), Event::RebootFailed { message }) => (
                S::UpdatedNeedReboot(Waiting::new(s.clone())),
                vec![
                    Action::Persist,
                    Action::Report(Report::Error {
                        phase: Phase::Rebooting,
                        message: message.clone(),
                        version: Some(s.version.clone()),
                    }),
                ],
            ),
            (S::TrialFailed(x), Event::RebootFailed { message }) => (
                S::TrialFailed(Rescue {
                    asked: false,
                    reboot: RebootWait::default(),
                    ..x.clone()
                }),
                vec![
                    Action::Persist,
                    Action::Report(Report::Error {
                        phase: Phase::Rebooting,
                        message: message.clone(),
                        version: Some(x.staged.version.clone()),
                    }),
                ],
            ),
            (S::UpdatedNeedReboot(w), Event::BootedStaged { .. }) if w.staged.revert => {
                // The previous release is back; it was already good.
                (S::Idle, vec![Action::Persist, Action::ReleaseLock])
            }
            (S::Rebooting(s), Event::BootedStaged { .. }) if s.revert => {
                (S::Idle, vec![Action::Persist, Action::ReleaseLock])
            }
            (
                S::UpdatedNeedReboot(Waiting { staged: s, .. }) | S::Rebooting(s),
                Event::BootedStaged { at },
            ) => (
                S::PendingMarkGood(Trial {
                    staged: s.clone(),
                    since: Some(*at),
                }),
                vec![
                    Action::Persist,
                    Action::Report(Report::BootedNewVersion(s.clone())),
                ],
            ),
            (S::PendingMarkGood(t), Event::TrialObserved { at }) if t.since.is_none() => (
                S::PendingMarkGood(Trial {
                    staged: t.staged.clone(),
                    since: Some(*at),
                }),
                persist,
            ),
            // Restarted on the failed trial before the reboot happened: ask again.
            (S::TrialFailed(x), Event::TrialObserved { .. }) => (
                S::TrialFailed(Rescue {
                    asked: false,
                    reboot: RebootWait::default(),
                    ..x.clone()
                }),
                persist,
            ),
            (S::PendingMarkGood(t), Event::MarkedGood) => (
                S::Idle,
                vec![
                    Action::Persist,
                    Action::Report(Report::Healthy(t.staged.clone())),
                    Action::ReleaseLock,
                ],
            ),
            (S::PendingMarkGood(t), Event::TrialFailed(failure)) => (
                S::TrialFailed(Rescue {
                    staged: t.staged.clone(),
                    failure: failure.clone(),
                    reboot: RebootWait::default(),
                    asked: false,
                }),
                vec![
                    Action::Persist,
                    Action::Report(Report::TrialFailed {
                        staged: t.staged.clone(),
                        failure: failure.clone(),
                    }),
                ],
            ),
            (
                S::UpdatedNeedReboot(_)
                | S::Rebooting(_)
                | S::PendingMarkGood(_)
                | S::TrialFailed(_),
                Event::RolledBack { booted_version },
            ) => {
                let Some(s) = self.staged() else {
                    return Err(self.refuse(&event));
                };
                let reason = fallback_reason(self, s.slot, booted_version);
                (
                    S::Idle,
                    vec![
                        Action::Deny {
                            version: s.version.clone(),
                            reason: reason.clone(),
                        },
                        Action::Persist,
                        Action::Report(Report::Rollback {
                            failed: s.clone(),
                            booted_version: booted_version.clone(),
                            reason,
                        }),
                        Action::ReleaseLock,
                    ],
                )
            }
            _ => return Err(self.refuse(&event)),
        };
        Ok(next)
    }

    fn refuse(&self, event: &Event) -> StateError {
        StateError {
            state: self.name(),
            event: format!("{event:?}"),
        }
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

    fn at() -> Timestamp {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    fn waiting() -> AgentState {
        AgentState::UpdatedNeedReboot(Waiting::new(staged()))
    }

    fn trial() -> AgentState {
        AgentState::PendingMarkGood(Trial {
            staged: staged(),
            since: Some(at()),
        })
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
        assert_eq!(s, waiting());
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
    fn states_serialize_with_their_user_facing_names_and_keep_what_belongs_to_them() {
        let j = serde_json::to_value(waiting()).unwrap();
        assert_eq!(j["state"], "updated-need-reboot");
        assert_eq!(j["version"], "1.1.0");
        assert!(j.get("allowed_since").is_none(), "{j}");
        let back: AgentState = serde_json::from_value(j).unwrap();
        assert_eq!(back, waiting());

        // What the gate learnt survives a restart, except a lock refusal.
        let w = AgentState::UpdatedNeedReboot(Waiting {
            staged: staged(),
            reboot: RebootWait {
                allowed_since: Some(at()),
                requested: true,
                lock_refused: Some(LockRefusal {
                    detail: "held".into(),
                    until: at(),
                }),
            },
        });
        let back: AgentState = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        let AgentState::UpdatedNeedReboot(b) = back else {
            panic!("{back:?}")
        };
        assert_eq!(b.reboot.allowed_since, Some(at()));
        assert!(b.reboot.requested);
        assert_eq!(b.reboot.lock_refused, None);

        // A state file of an older agent still loads.
        let old: AgentState = serde_json::from_str(
            r#"{"state":"pending-mark-good","target":"t","version":"1.1.0","slot":"B"}"#,
        )
        .unwrap();
        assert!(matches!(
            old,
            AgentState::PendingMarkGood(Trial { since: None, .. })
        ));
        let rescue = AgentState::TrialFailed(Rescue {
            staged: staged(),
            failure: TrialFailure::UnitFailed {
                unit: "x.service".into(),
                detail: "exit-code".into(),
            },
            reboot: RebootWait::default(),
            asked: true,
        });
        let j = serde_json::to_string(&rescue).unwrap();
        assert_eq!(
            serde_json::from_str::<AgentState>(&j).unwrap(),
            rescue,
            "{j}"
        );
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
        let (s, a) = waiting().on(Event::RebootStarted).unwrap();
        assert_eq!(s.name(), "rebooting");
        assert!(a.contains(&Action::Reboot));
        assert_eq!(reports(&a), [&Report::Rebooting(staged())]);
        let (s, a) = s.on(Event::BootedStaged { at: at() }).unwrap();
        assert_eq!(s, trial());
        assert_eq!(reports(&a), [&Report::BootedNewVersion(staged())]);
        // On trial: no install.
        assert!(s.on(Event::CheckStarted).is_err());
        let (s, a) = s.on(Event::MarkedGood).unwrap();
        assert_eq!(s, AgentState::Idle);
        assert!(a.contains(&Action::ReleaseLock));
        assert_eq!(reports(&a), [&Report::Healthy(staged())]);
    }

    #[test]
    fn a_staged_update_starts_no_new_install_and_a_cancel_reports_and_ends_idle() {
        assert!(waiting().on(Event::CheckStarted).is_err());
        let (s, a) = waiting()
            .on(Event::Cancelled {
                reason: "rollout aborted".into(),
            })
            .unwrap();
        assert_eq!(s, AgentState::Idle);
        assert_eq!(
            reports(&a),
            [&Report::Cancelled {
                staged: staged(),
                reason: "rollout aborted".into()
            }]
        );
        // Nothing to cancel on trial or at rest: those are other paths.
        assert!(trial().on(Event::Cancelled { reason: "x".into() }).is_err());
        assert!(
            AgentState::Idle
                .on(Event::Cancelled { reason: "x".into() })
                .is_err()
        );
    }

    #[test]
    fn the_gate_progress_lives_in_the_waiting_state_and_is_persisted_only_when_it_changes() {
        let wait = RebootWait {
            allowed_since: Some(at()),
            ..RebootWait::default()
        };
        let (s, a) = waiting().on(Event::RebootPending(wait.clone())).unwrap();
        assert_eq!(a, [Action::Persist]);
        let (s2, a) = s.on(Event::RebootPending(wait)).unwrap();
        assert!(a.is_empty());
        assert_eq!(s, s2);
        // A reboot request from the loop clears nothing it should keep.
        let (s3, _) = s2.on(Event::RebootStarted).unwrap();
        assert_eq!(s3, AgentState::Rebooting(staged()));
        // A failed request starts the wait afresh.
        let (s4, _) = s3
            .on(Event::RebootFailed {
                message: "denied".into(),
            })
            .unwrap();
        assert_eq!(s4, waiting());
    }

    #[test]
    fn a_failed_trial_reports_reboots_once_and_denies_with_its_reason_after_the_fallback() {
        let failure = TrialFailure::UnitFailed {
            unit: "moho-health-check.service".into(),
            detail: "exit-code (status 1)".into(),
        };
        let (s, a) = trial().on(Event::TrialFailed(failure.clone())).unwrap();
        assert_eq!(s.name(), "trial-failed");
        assert_eq!(
            reports(&a),
            [&Report::TrialFailed {
                staged: staged(),
                failure: failure.clone()
            }]
        );
        let (s, a) = s.on(Event::RebootStarted).unwrap();
        assert!(a.contains(&Action::Reboot));
        // Asked once: the loop does not ask again while the machine goes down.
        assert!(s.on(Event::RebootStarted).is_err());
        let (s, a) = s
            .on(Event::RolledBack {
                booted_version: "1.0.0".into(),
            })
            .unwrap();
        assert_eq!(s, AgentState::Idle);
        let deny = a.iter().find_map(|a| match a {
            Action::Deny { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        assert_eq!(
            deny.as_deref(),
            Some(
                "health check moho-health-check.service failed: exit-code (status 1); \
                 fell back to 1.0.0"
            )
        );
        assert!(a.contains(&Action::ReleaseLock));
    }

    #[test]
    fn a_fallback_denies_the_version_reports_the_rollback_and_ends_idle() {
        for s in [waiting(), AgentState::Rebooting(staged()), trial()] {
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
            assert!(matches!(
                reports(&a)[..],
                [Report::Rollback { failed, booted_version, .. }]
                    if *failed == staged() && booted_version == "1.0.0"
            ));
        }
    }

    #[test]
    fn a_failed_reboot_request_keeps_the_update_staged() {
        let (s, a) = AgentState::Rebooting(staged())
            .on(Event::RebootFailed {
                message: "logind: access denied".into(),
            })
            .unwrap();
        assert_eq!(s, waiting());
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
        let (s, a) = s.on(Event::BootedStaged { at: at() }).unwrap();
        assert_eq!(s, AgentState::Idle);
        assert!(reports(&a).is_empty());
    }
}
