//! The lifecycle of one rollout (active, paused, aborted, reverted), the
//! counters the decisions read, and the operator actions that move it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Why a rollout is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum PauseReason {
    /// An operator paused it.
    Operator,
    /// Failures + rollbacks crossed the policy threshold.
    FailureRate {
        /// Failed attempts (errors, rollbacks, timeouts).
        failed: u64,
        /// Finished attempts (healthy + failed).
        finished: u64,
    },
}

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RolloutStatus {
    /// Offering the release as the policy allows.
    Active,
    /// Offering nothing new; attempts in flight continue.
    Paused {
        /// Why.
        reason: PauseReason,
    },
    /// Stopped for good; nodes keep what they have.
    Aborted,
    /// Stopped, and nodes running the release are told to boot back into
    /// their previous slot.
    Reverted,
}

/// The mutable state of a rollout, persisted by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutState {
    /// Lifecycle status.
    #[serde(flatten)]
    pub status: RolloutStatus,
    /// Index of the current ramp step.
    pub step: usize,
    /// When the current step began.
    pub step_started: Timestamp,
}

impl RolloutState {
    /// A rollout created at `now`: active, at its first step.
    pub fn new(now: Timestamp) -> Self {
        Self {
            status: RolloutStatus::Active,
            step: 0,
            step_started: now,
        }
    }
}

/// Counters of a rollout, as the server counts them from node reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutStats {
    /// Nodes in the rollout's scope (channel, group, board).
    pub scope_size: u64,
    /// Nodes that were offered the release so far.
    pub offered: u64,
    /// Attempts started and not finished nor timed out.
    pub in_flight: u64,
    /// Attempts started within the policy's period (for the period cap).
    pub started_in_period: u64,
    /// Nodes that reported healthy on the release (signed reports: the
    /// only ones a health gate counts).
    pub healthy: u64,
    /// Attempts that unsigned reports (Omaha) say finished well: they count
    /// as finished for the failure rate, never toward a health gate.
    #[serde(default)]
    pub unsigned_succeeded: u64,
    /// Attempts that failed, rolled back, or timed out.
    pub failed: u64,
}

impl RolloutStats {
    /// Attempts that ended, well or not: the failure rate's denominator.
    /// Unsigned successes (Omaha) count here like signed ones — a node that
    /// finished is a node that did not fail — but never toward a health
    /// gate, which reads only [`RolloutStats::healthy`].
    pub fn finished(&self) -> u64 {
        self.healthy + self.unsigned_succeeded + self.failed
    }
}

/// An operator action on a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Stop offering until resumed.
    Pause,
    /// Continue after a pause (either kind).
    Resume,
    /// Stop for good.
    Abort,
    /// Stop for good and send nodes on the release back to their previous slot.
    Revert,
}

/// An action that does not apply to the rollout's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action:?} a rollout that is {status:?}")]
pub struct ActionError {
    /// The action asked for.
    pub action: Action,
    /// The status it met.
    pub status: RolloutStatus,
}

/// Applies an operator action at `now`.
pub fn apply_action(
    state: RolloutState,
    action: Action,
    now: Timestamp,
) -> Result<RolloutState, ActionError> {
    use RolloutStatus::{Aborted, Active, Paused, Reverted};
    let refuse = Err(ActionError {
        action,
        status: state.status,
    });
    let status = match (action, state.status) {
        (Action::Pause, Active) => Paused {
            reason: PauseReason::Operator,
        },
        (Action::Resume, Paused { .. }) => Active,
        (Action::Abort, Active | Paused { .. }) => Aborted,
        (Action::Revert, Active | Paused { .. } | Aborted) => Reverted,
        _ => return refuse,
    };
    // A resumed rollout holds its current step for the full hold time again.
    let step_started = if action == Action::Resume {
        now
    } else {
        state.step_started
    };
    Ok(RolloutState {
        status,
        step: state.step,
        step_started,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_the_lifecycle() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let s = RolloutState::new(t0);
        let paused = apply_action(s, Action::Pause, t1).unwrap();
        assert_eq!(
            paused.status,
            RolloutStatus::Paused {
                reason: PauseReason::Operator
            }
        );
        assert!(apply_action(paused, Action::Pause, t1).is_err());
        let resumed = apply_action(paused, Action::Resume, t1).unwrap();
        assert_eq!(
            (resumed.status, resumed.step_started),
            (RolloutStatus::Active, t1)
        );
        let aborted = apply_action(resumed, Action::Abort, t1).unwrap();
        let err = apply_action(aborted, Action::Resume, t1).unwrap_err();
        assert_eq!(err.to_string(), "cannot Resume a rollout that is Aborted");
        let reverted = apply_action(aborted, Action::Revert, t1).unwrap();
        assert_eq!(reverted.status, RolloutStatus::Reverted);
        assert!(apply_action(reverted, Action::Revert, t1).is_err());
    }

    #[test]
    fn state_serialises_flat() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let s = RolloutState {
            status: RolloutStatus::Paused {
                reason: PauseReason::FailureRate {
                    failed: 5,
                    finished: 20,
                },
            },
            step: 2,
            step_started: t0,
        };
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(v["status"], "paused");
        assert_eq!(v["reason"]["by"], "failure_rate");
        assert_eq!(serde_json::from_value::<RolloutState>(v).unwrap(), s);
    }
}
