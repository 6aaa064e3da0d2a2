//! The rollout's own clockwork: automatic pause on failures, and moving the
//! ramp to its next step once the hold time passed and the health gate is met.
//! The server calls [`tick`] whenever it has fresh counters (on check-ins and
//! on a timer) and persists the result when it changed.

use jiff::Timestamp;

use crate::policy::RolloutPolicy;
use crate::state::{PauseReason, RolloutState, RolloutStats, RolloutStatus};

/// What a tick changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickEvent {
    /// The failure rate crossed the threshold: the rollout paused itself.
    AutoPaused {
        /// Failed attempts.
        failed: u64,
        /// Finished attempts.
        finished: u64,
    },
    /// The ramp moved to step `to`.
    Advanced {
        /// New step index.
        to: usize,
    },
}

/// Whether the failure rate calls for a pause.
pub fn failure_rate_exceeded(policy: &RolloutPolicy, stats: &RolloutStats) -> bool {
    let Some(ap) = policy.auto_pause else {
        return false;
    };
    let finished = stats.finished();
    finished >= u64::from(ap.min_sample) && ap.max_failure.exceeded_by(stats.failed, finished)
}

/// Whether the health gate of the current step is met.
pub fn health_gate_met(policy: &RolloutPolicy, state: &RolloutState, stats: &RolloutStats) -> bool {
    let Some(gate) = policy.health_gate else {
        return true;
    };
    let target = policy.share_at(state.step).of(stats.scope_size);
    stats.healthy >= gate.min_healthy.of(target)
}

/// Advances the rollout's state at `now`. Returns the new state and what
/// changed (nothing, an automatic pause, or one ramp step).
pub fn tick(
    policy: &RolloutPolicy,
    state: RolloutState,
    stats: &RolloutStats,
    now: Timestamp,
) -> (RolloutState, Option<TickEvent>) {
    if state.status != RolloutStatus::Active {
        return (state, None);
    }
    if failure_rate_exceeded(policy, stats) {
        let finished = stats.finished();
        let reason = PauseReason::FailureRate {
            failed: stats.failed,
            finished,
        };
        let paused = RolloutState {
            status: RolloutStatus::Paused { reason },
            ..state
        };
        return (
            paused,
            Some(TickEvent::AutoPaused {
                failed: stats.failed,
                finished,
            }),
        );
    }
    let Some(step) = policy.steps.get(state.step) else {
        return (state, None);
    };
    let last = state.step + 1 >= policy.steps.len();
    let held = now.duration_since(state.step_started) >= step.hold;
    if !last && held && health_gate_met(policy, &state, stats) {
        let to = state.step + 1;
        return (
            RolloutState {
                step: to,
                step_started: now,
                ..state
            },
            Some(TickEvent::Advanced { to }),
        );
    }
    (state, None)
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::line::Share;
    use crate::policy::{AutoPause, HealthGate, RampStep};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn policy() -> RolloutPolicy {
        let step = |p: f64| RampStep {
            share: Share::from_percent(p).unwrap(),
            hold: SignedDuration::from_hours(1),
        };
        RolloutPolicy {
            steps: vec![step(10.0), step(50.0), step(100.0)],
            auto_pause: Some(AutoPause {
                max_failure: Share::from_percent(10.0).unwrap(),
                min_sample: 20,
            }),
            health_gate: Some(HealthGate {
                min_healthy: Share::from_percent(90.0).unwrap(),
            }),
            ..RolloutPolicy::immediate()
        }
    }

    #[test]
    fn ramp_waits_for_hold_and_health_then_moves_one_step() {
        let p = policy();
        let s = RolloutState::new(ts("2026-01-01T00:00:00Z"));
        let mut st = RolloutStats {
            scope_size: 1000,
            offered: 100,
            healthy: 89,
            ..Default::default()
        };
        // Hold not over.
        assert_eq!(tick(&p, s, &st, ts("2026-01-01T00:59:00Z")).1, None);
        // Hold over but only 89 of the 100-node cohort healthy (< 90 %).
        assert_eq!(tick(&p, s, &st, ts("2026-01-01T01:00:00Z")).1, None);
        st.healthy = 90;
        let (s2, ev) = tick(&p, s, &st, ts("2026-01-01T01:00:00Z"));
        assert_eq!(ev, Some(TickEvent::Advanced { to: 1 }));
        assert_eq!(s2.step_started, ts("2026-01-01T01:00:00Z"));
    }

    #[test]
    fn failure_rate_pauses_only_after_the_minimum_sample() {
        let p = policy();
        let s = RolloutState::new(ts("2026-01-01T00:00:00Z"));
        let now = ts("2026-01-01T00:10:00Z");
        // 5 of 10 failed, but the sample is 20.
        let st = RolloutStats {
            healthy: 5,
            failed: 5,
            ..Default::default()
        };
        assert_eq!(tick(&p, s, &st, now).1, None);
        // 2 of 20 = 10 %: not above the threshold.
        let st = RolloutStats {
            healthy: 18,
            failed: 2,
            ..Default::default()
        };
        assert_eq!(tick(&p, s, &st, now).1, None);
        let st = RolloutStats {
            healthy: 17,
            failed: 3,
            ..Default::default()
        };
        let (s2, ev) = tick(&p, s, &st, now);
        assert_eq!(
            ev,
            Some(TickEvent::AutoPaused {
                failed: 3,
                finished: 20
            })
        );
        assert!(matches!(
            s2.status,
            RolloutStatus::Paused {
                reason: PauseReason::FailureRate { .. }
            }
        ));
        // A paused rollout does not tick.
        assert_eq!(tick(&p, s2, &RolloutStats::default(), now).1, None);
    }

    #[test]
    fn unsigned_successes_count_as_finished_but_never_open_the_health_gate() {
        let p = policy();
        let s = RolloutState::new(ts("2026-01-01T00:00:00Z"));
        let later = ts("2026-01-01T02:00:00Z");
        // The whole cohort reported success over Omaha: no signed health.
        let st = RolloutStats {
            scope_size: 1000,
            offered: 100,
            unsigned_succeeded: 100,
            ..Default::default()
        };
        assert_eq!(tick(&p, s, &st, later).1, None, "the gate stays shut");
        // 3 failures among 17 unsigned successes and 3 failures: 15 %.
        let st = RolloutStats {
            unsigned_succeeded: 17,
            failed: 3,
            ..Default::default()
        };
        assert_eq!(
            tick(&p, s, &st, later).1,
            Some(TickEvent::AutoPaused {
                failed: 3,
                finished: 20
            })
        );
    }
}
