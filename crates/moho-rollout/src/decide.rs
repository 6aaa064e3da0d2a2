//! The per-node decision of one rollout: install the release, boot back into
//! the previous slot, or wait (and why). Holds and pins are decided before
//! this, by [`crate::holds`]; whether the release is signed for the node's
//! channel and board is the server's check before it gets here.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::line::{Cutoff, Share};
use crate::policy::RolloutPolicy;
use crate::state::{RolloutState, RolloutStats, RolloutStatus};
use crate::window::WindowState;

/// The booted version compared with the release's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRelation {
    /// Booted version is older: the release is an update for this node.
    Older,
    /// The node runs the release.
    Same,
    /// The node runs something newer.
    Newer,
}

/// This node's attempt at this release, as the server recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Never offered.
    None,
    /// Offered at `started`; no final report yet.
    InFlight {
        /// When the offer was made.
        started: Timestamp,
        /// How far the node got.
        phase: InFlightPhase,
    },
    /// The node cancelled the release it had staged (the rollout was
    /// withdrawn, or an operator ran `update-agent cancel`): not a failure,
    /// and only a new rollout offers the release again.
    Cancelled,
    /// Reported healthy on the release.
    Healthy,
    /// Reported an error or a rollback (or timed out).
    Failed,
}

/// How far an attempt in flight got. Only downloading and installing is
/// timed by the policy's `update_timeout`: a node that staged the release
/// waits for its own reboot policy (a window days away, the FleetLock, an
/// operator), which is not a failure, and a node on trial is timed by its
/// own health deadline (it reports the failure itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlightPhase {
    /// Offered, downloading or writing the slot.
    Installing,
    /// Written and armed, waiting for the reboot, or booted on trial.
    Staged,
}

/// What the rollout knows about one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeFacts {
    /// Place in line for this release ([`crate::line::place_in_line`]).
    pub place: u64,
    /// Booted version against the release.
    pub version: VersionRelation,
    /// The node's attempt so far.
    pub attempt: Attempt,
}

/// Everything about the rollout a decision reads.
#[derive(Debug, Clone, Copy)]
pub struct RolloutView<'a> {
    /// The policy.
    pub policy: &'a RolloutPolicy,
    /// Its current state.
    pub state: &'a RolloutState,
    /// Its current counters.
    pub stats: &'a RolloutStats,
    /// The cutoff of the current ramp share.
    pub cutoff: Cutoff,
}

/// Why a node gets nothing now. None of these is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum WaitReason {
    /// The node already runs this release or a newer one.
    UpToDate,
    /// The node's attempt at this release failed; it is not offered again.
    AttemptFailed,
    /// The node cancelled this release; only a new rollout offers it again.
    Cancelled,
    /// The rollout is paused.
    Paused,
    /// The rollout was aborted.
    Aborted,
    /// The rollout was reverted and this node does not run the release.
    Reverted,
    /// The ramp has not reached this node yet.
    NotYetInLine {
        /// The current ramp share.
        share: Share,
    },
    /// Outside the rollout's calendar windows.
    WindowClosed {
        /// When the next window opens.
        opens_at: Timestamp,
    },
    /// Too many nodes updating at once.
    ConcurrencyCap {
        /// Nodes updating now.
        in_flight: u64,
        /// The cap.
        max: u32,
    },
    /// Too many nodes started within the period.
    PeriodCap {
        /// The cap per period.
        max: u32,
    },
}

/// The answer for one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeDecision {
    /// Install the release. `new_attempt` is true when this starts an attempt
    /// (the server records it and counts it against the caps), false when it
    /// repeats the answer to a node already updating.
    Install {
        /// Whether this is a new attempt.
        new_attempt: bool,
    },
    /// Boot back into the previous slot.
    Revert,
    /// Nothing now.
    Wait(WaitReason),
}

/// Whether an attempt started at `started` has run past the policy's timeout
/// (only while installing: see [`InFlightPhase`]).
pub fn attempt_timed_out(
    policy: &RolloutPolicy,
    started: Timestamp,
    phase: InFlightPhase,
    now: Timestamp,
) -> bool {
    phase == InFlightPhase::Installing && now.duration_since(started) >= policy.update_timeout
}

/// Why a node that staged (or has on trial) this rollout's release must
/// cancel it (DESIGN §3.13), or `None` when the release still stands:
/// the rollout was aborted or reverted, or a hold on the node or its group
/// that does not allow the release runs until `held_until`.
pub fn withdrawn(state: &RolloutState, held_until: Option<Timestamp>) -> Option<Withdrawal> {
    match (state.status, held_until) {
        (RolloutStatus::Aborted, _) => Some(Withdrawal::Aborted),
        (RolloutStatus::Reverted, _) => Some(Withdrawal::Reverted),
        (RolloutStatus::Active | RolloutStatus::Paused { .. }, Some(until)) => {
            Some(Withdrawal::Held { until })
        }
        (RolloutStatus::Active | RolloutStatus::Paused { .. }, None) => None,
    }
}

/// Why a staged release is withdrawn ([`withdrawn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// The rollout was aborted.
    Aborted,
    /// The rollout was reverted.
    Reverted,
    /// A hold on the node or its group does not allow the release.
    Held {
        /// When the hold ends.
        until: Timestamp,
    },
}

/// Decides for one node at `now`.
pub fn decide(view: &RolloutView<'_>, node: &NodeFacts, now: Timestamp) -> NodeDecision {
    use NodeDecision::{Install, Revert, Wait};
    let policy = view.policy;
    match view.state.status {
        RolloutStatus::Reverted => {
            return if node.version == VersionRelation::Same {
                Revert
            } else {
                Wait(WaitReason::Reverted)
            };
        }
        RolloutStatus::Aborted => return Wait(WaitReason::Aborted),
        RolloutStatus::Active | RolloutStatus::Paused { .. } => {}
    }
    if node.version != VersionRelation::Older {
        return Wait(WaitReason::UpToDate);
    }
    match node.attempt {
        Attempt::Failed => return Wait(WaitReason::AttemptFailed),
        Attempt::Cancelled => return Wait(WaitReason::Cancelled),
        // Took the release and went back (reverted by hand): not offered again.
        Attempt::Healthy => return Wait(WaitReason::UpToDate),
        Attempt::InFlight { started, phase } if attempt_timed_out(policy, started, phase, now) => {
            return Wait(WaitReason::AttemptFailed);
        }
        Attempt::InFlight { .. } => return Install { new_attempt: false },
        Attempt::None => {}
    }
    if matches!(view.state.status, RolloutStatus::Paused { .. }) {
        return Wait(WaitReason::Paused);
    }
    if !view.cutoff.admits(node.place) {
        return Wait(WaitReason::NotYetInLine {
            share: policy.share_at(view.state.step),
        });
    }
    if let WindowState::Closed { opens_at } = policy.windows.state_at(now) {
        return Wait(WaitReason::WindowClosed { opens_at });
    }
    if let Some(max) = policy.max_in_flight
        && view.stats.in_flight >= u64::from(max)
    {
        return Wait(WaitReason::ConcurrencyCap {
            in_flight: view.stats.in_flight,
            max,
        });
    }
    if let Some(cap) = policy.period_cap
        && view.stats.started_in_period >= u64::from(cap.count)
    {
        return Wait(WaitReason::PeriodCap { max: cap.count });
    }
    Install { new_attempt: true }
}

/// When a waiting node should ask again: `default_interval`, or sooner when a
/// window opens before that (never less than a minute).
pub fn retry_after(
    reason: &WaitReason,
    now: Timestamp,
    default_interval: SignedDuration,
) -> SignedDuration {
    let floor = SignedDuration::from_mins(1);
    match reason {
        WaitReason::WindowClosed { opens_at } => opens_at
            .duration_since(now)
            .clamp(floor, default_interval.max(floor)),
        _ => default_interval.max(floor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{PauseReason, RolloutState};
    use crate::window::{Window, WindowSpec, Windows};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn older(place: u64) -> NodeFacts {
        NodeFacts {
            place,
            version: VersionRelation::Older,
            attempt: Attempt::None,
        }
    }

    #[test]
    fn checks_apply_in_order_and_name_the_reason() {
        let now = ts("2026-01-05T12:00:00Z");
        let mut policy = RolloutPolicy {
            max_in_flight: Some(2),
            ..RolloutPolicy::immediate()
        };
        let state = RolloutState::new(now);
        let stats = RolloutStats {
            in_flight: 2,
            ..Default::default()
        };
        let view = RolloutView {
            policy: &policy,
            state: &state,
            stats: &stats,
            cutoff: Cutoff::EVERYONE,
        };
        assert_eq!(
            decide(&view, &older(1), now),
            NodeDecision::Wait(WaitReason::ConcurrencyCap {
                in_flight: 2,
                max: 2
            })
        );
        let view = RolloutView {
            cutoff: Cutoff::NOBODY,
            ..view
        };
        assert!(matches!(
            decide(&view, &older(1), now),
            NodeDecision::Wait(WaitReason::NotYetInLine { .. })
        ));

        policy.windows = Windows::new(vec![
            Window::from_spec(&WindowSpec {
                days: vec!["mon".into()],
                start: "13:00".into(),
                length: "1h".into(),
                time_zone: "UTC".into(),
            })
            .unwrap(),
        ]);
        let stats = RolloutStats::default();
        let view = RolloutView {
            policy: &policy,
            state: &state,
            stats: &stats,
            cutoff: Cutoff::EVERYONE,
        };
        assert_eq!(
            decide(&view, &older(1), now),
            NodeDecision::Wait(WaitReason::WindowClosed {
                opens_at: ts("2026-01-05T13:00:00Z")
            })
        );
        assert_eq!(
            decide(&view, &older(1), ts("2026-01-05T13:30:00Z")),
            NodeDecision::Install { new_attempt: true }
        );
    }

    #[test]
    fn paused_rollout_keeps_answering_nodes_already_updating() {
        let now = ts("2026-01-05T12:00:00Z");
        let policy = RolloutPolicy::immediate();
        let state = RolloutState {
            status: RolloutStatus::Paused {
                reason: PauseReason::Operator,
            },
            ..RolloutState::new(now)
        };
        let stats = RolloutStats::default();
        let view = RolloutView {
            policy: &policy,
            state: &state,
            stats: &stats,
            cutoff: Cutoff::EVERYONE,
        };
        assert_eq!(
            decide(&view, &older(1), now),
            NodeDecision::Wait(WaitReason::Paused)
        );
        let updating = NodeFacts {
            attempt: Attempt::InFlight {
                started: now,
                phase: InFlightPhase::Installing,
            },
            ..older(1)
        };
        assert_eq!(
            decide(&view, &updating, now),
            NodeDecision::Install { new_attempt: false }
        );
        let late = ts("2026-01-05T15:00:00Z");
        assert_eq!(
            decide(&view, &updating, late),
            NodeDecision::Wait(WaitReason::AttemptFailed)
        );
    }

    #[test]
    fn a_staged_node_waiting_for_its_window_is_never_timed_out_nor_a_cancelled_one_offered_again() {
        let now = ts("2026-01-05T12:00:00Z");
        let policy = RolloutPolicy::immediate();
        let state = RolloutState::new(now);
        let stats = RolloutStats::default();
        let view = RolloutView {
            policy: &policy,
            state: &state,
            stats: &stats,
            cutoff: Cutoff::EVERYONE,
        };
        let staged = NodeFacts {
            attempt: Attempt::InFlight {
                started: now,
                phase: InFlightPhase::Staged,
            },
            ..older(1)
        };
        let week_later = ts("2026-01-12T12:00:00Z");
        assert_eq!(
            decide(&view, &staged, week_later),
            NodeDecision::Install { new_attempt: false }
        );
        assert!(!attempt_timed_out(
            &policy,
            now,
            InFlightPhase::Staged,
            week_later
        ));
        assert!(attempt_timed_out(
            &policy,
            now,
            InFlightPhase::Installing,
            week_later
        ));
        let cancelled = NodeFacts {
            attempt: Attempt::Cancelled,
            ..older(1)
        };
        assert_eq!(
            decide(&view, &cancelled, now),
            NodeDecision::Wait(WaitReason::Cancelled)
        );
    }

    #[test]
    fn a_staged_release_is_withdrawn_by_abort_revert_or_a_hold_but_not_by_a_pause() {
        let now = ts("2026-01-05T12:00:00Z");
        let mut state = RolloutState::new(now);
        let until = ts("2026-02-01T00:00:00Z");
        assert_eq!(withdrawn(&state, None), None);
        assert_eq!(
            withdrawn(&state, Some(until)),
            Some(Withdrawal::Held { until })
        );
        state.status = RolloutStatus::Paused {
            reason: PauseReason::Operator,
        };
        assert_eq!(withdrawn(&state, None), None);
        state.status = RolloutStatus::Aborted;
        assert_eq!(withdrawn(&state, None), Some(Withdrawal::Aborted));
        state.status = RolloutStatus::Reverted;
        assert_eq!(withdrawn(&state, None), Some(Withdrawal::Reverted));
    }

    #[test]
    fn reverted_rollout_sends_back_only_nodes_on_the_release() {
        let now = ts("2026-01-05T12:00:00Z");
        let policy = RolloutPolicy::immediate();
        let state = RolloutState {
            status: RolloutStatus::Reverted,
            ..RolloutState::new(now)
        };
        let stats = RolloutStats::default();
        let view = RolloutView {
            policy: &policy,
            state: &state,
            stats: &stats,
            cutoff: Cutoff::EVERYONE,
        };
        let on_release = NodeFacts {
            version: VersionRelation::Same,
            ..older(1)
        };
        assert_eq!(decide(&view, &on_release, now), NodeDecision::Revert);
        assert_eq!(
            decide(&view, &older(1), now),
            NodeDecision::Wait(WaitReason::Reverted)
        );
    }

    #[test]
    fn retry_hint_points_at_the_window_opening_when_sooner() {
        let now = ts("2026-01-05T12:00:00Z");
        let hour = SignedDuration::from_hours(1);
        let r = WaitReason::WindowClosed {
            opens_at: ts("2026-01-05T12:20:00Z"),
        };
        assert_eq!(retry_after(&r, now, hour), SignedDuration::from_mins(20));
        let r = WaitReason::WindowClosed {
            opens_at: ts("2026-01-06T12:00:00Z"),
        };
        assert_eq!(retry_after(&r, now, hour), hour);
        assert_eq!(retry_after(&WaitReason::Paused, now, hour), hour);
    }
}
