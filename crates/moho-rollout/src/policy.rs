//! A rollout policy: the ramp steps, the caps, the windows, auto-pause and
//! health gating (DESIGN §6), validated from its JSON form.
//!
//! JSON form (the admin API takes exactly this):
//!
//! ```json
//! {"steps": [{"percent": 1, "hold": "1h"}, {"percent": 10, "hold": "2h"}, {"percent": 100}],
//!  "max_in_flight": 100,
//!  "max_per_period": {"count": 500, "period": "1h"},
//!  "windows": [{"days": ["mon-fri"], "start": "09:00", "length": "8h", "time_zone": "Europe/Berlin"}],
//!  "auto_pause": {"max_failure_percent": 10, "min_sample": 20},
//!  "health_gate": {"min_healthy_percent": 95},
//!  "update_timeout": "2h"}
//! ```

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use crate::line::Share;
use crate::window::Windows;

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// No steps.
    #[error("a rollout policy needs at least one ramp step")]
    NoSteps,
    /// A step whose share is not above the previous one.
    #[error("ramp step {index} ({share}) must be larger than the step before it")]
    StepsNotIncreasing {
        /// Index of the offending step.
        index: usize,
        /// Its share.
        share: Share,
    },
    /// A step of 0 %.
    #[error("ramp step {0} is 0%: every step must offer the update to some nodes")]
    ZeroStep(usize),
    /// A duration that does not parse or is negative.
    #[error("invalid duration {value:?} for {field}: use e.g. 30m, 2h, 7d")]
    BadDuration {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A cap of zero.
    #[error("{0} must be at least 1")]
    ZeroCap(&'static str),
}

/// One step of the percentage ramp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RampStep {
    /// Share of the nodes in scope that may be offered the release.
    pub share: Share,
    /// Minimum time spent at this step before moving to the next.
    pub hold: SignedDuration,
}

/// At most `count` nodes start updating within any `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodCap {
    /// Nodes per period.
    pub count: u32,
    /// The sliding period.
    pub period: SignedDuration,
}

/// Pause when failures + rollbacks exceed a share of the finished attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoPause {
    /// Largest tolerated share of failed attempts among finished ones.
    pub max_failure: Share,
    /// Finished attempts needed before the rate is judged.
    pub min_sample: u32,
}

/// The ramp advances only once this share of the current step's cohort
/// reported healthy on the new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthGate {
    /// Share of the step's target node count that must be healthy.
    pub min_healthy: Share,
}

/// A validated rollout policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutPolicy {
    /// Ramp steps, strictly increasing shares.
    pub steps: Vec<RampStep>,
    /// Most nodes updating at once.
    pub max_in_flight: Option<u32>,
    /// Most nodes starting per period.
    pub period_cap: Option<PeriodCap>,
    /// When updates may be offered (empty: always).
    pub windows: Windows,
    /// Automatic pause on failures.
    pub auto_pause: Option<AutoPause>,
    /// Health gating of the ramp.
    pub health_gate: Option<HealthGate>,
    /// An attempt with no final report after this long counts as failed and
    /// stops holding a concurrency slot.
    pub update_timeout: SignedDuration,
}

impl RolloutPolicy {
    /// Everyone at once, no caps, no windows (for tests and simple setups).
    pub fn immediate() -> Self {
        Self {
            steps: vec![RampStep {
                share: Share::ALL,
                hold: SignedDuration::ZERO,
            }],
            max_in_flight: None,
            period_cap: None,
            windows: Windows::always(),
            auto_pause: None,
            health_gate: None,
            update_timeout: SignedDuration::from_hours(2),
        }
    }

    /// The share at step `index` (clamped to the last step).
    pub fn share_at(&self, index: usize) -> Share {
        self.steps
            .get(index)
            .or(self.steps.last())
            .map_or(Share::ZERO, |s| s.share)
    }

    fn validate(self) -> Result<Self, PolicyError> {
        if self.steps.is_empty() {
            return Err(PolicyError::NoSteps);
        }
        let mut prev = Share::ZERO;
        for (index, step) in self.steps.iter().enumerate() {
            if step.share == Share::ZERO {
                return Err(PolicyError::ZeroStep(index));
            }
            if step.share <= prev {
                return Err(PolicyError::StepsNotIncreasing {
                    index,
                    share: step.share,
                });
            }
            prev = step.share;
        }
        if self.max_in_flight == Some(0) {
            return Err(PolicyError::ZeroCap("max_in_flight"));
        }
        if self.period_cap.is_some_and(|c| c.count == 0) {
            return Err(PolicyError::ZeroCap("max_per_period.count"));
        }
        if self.auto_pause.is_some_and(|a| a.min_sample == 0) {
            return Err(PolicyError::ZeroCap("auto_pause.min_sample"));
        }
        Ok(self)
    }
}

/// JSON form of a ramp step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RampStepSpec {
    /// Percentage of the nodes in scope.
    pub percent: Share,
    /// Minimum time at this step, e.g. `"1h"` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
}

/// JSON form of a period cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodCapSpec {
    /// Nodes per period.
    pub count: u32,
    /// Period, e.g. `"1h"`.
    pub period: String,
}

/// JSON form of auto-pause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoPauseSpec {
    /// Largest tolerated failure percentage among finished attempts.
    pub max_failure_percent: Share,
    /// Finished attempts needed before judging.
    pub min_sample: u32,
}

/// JSON form of the health gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthGateSpec {
    /// Percentage of the current step's cohort that must be healthy.
    pub min_healthy_percent: Share,
}

/// JSON form of a policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutPolicySpec {
    /// Ramp steps.
    pub steps: Vec<RampStepSpec>,
    /// Most nodes updating at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Most nodes starting per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_period: Option<PeriodCapSpec>,
    /// Calendar windows (empty: always).
    #[serde(default)]
    pub windows: Windows,
    /// Automatic pause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_pause: Option<AutoPauseSpec>,
    /// Health gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_gate: Option<HealthGateSpec>,
    /// Attempt timeout, default `"2h"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_timeout: Option<String>,
}

fn duration(field: &'static str, value: &str) -> Result<SignedDuration, PolicyError> {
    let bad = || PolicyError::BadDuration {
        field,
        value: value.to_owned(),
    };
    let value = value.trim();
    // Days and weeks are 24 h and 7 days here: rollout timeouts and holds
    // are spans of elapsed time, not calendar dates ("7d" = "168h").
    let d = match value.parse::<SignedDuration>() {
        Ok(d) => d,
        Err(_) => value
            .parse::<jiff::Span>()
            .and_then(|s| s.to_duration(jiff::SpanRelativeTo::days_are_24_hours()))
            .map_err(|_| bad())?,
    };
    if d.is_negative() { Err(bad()) } else { Ok(d) }
}

impl TryFrom<RolloutPolicySpec> for RolloutPolicy {
    type Error = PolicyError;
    fn try_from(s: RolloutPolicySpec) -> Result<Self, PolicyError> {
        let steps = s
            .steps
            .iter()
            .map(|st| {
                let hold = match &st.hold {
                    Some(h) => duration("steps[].hold", h)?,
                    None => SignedDuration::ZERO,
                };
                Ok(RampStep {
                    share: st.percent,
                    hold,
                })
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        let period_cap = s
            .max_per_period
            .map(|c| {
                Ok::<_, PolicyError>(PeriodCap {
                    count: c.count,
                    period: duration("max_per_period.period", &c.period)?,
                })
            })
            .transpose()?;
        let update_timeout = match &s.update_timeout {
            Some(t) => duration("update_timeout", t)?,
            None => SignedDuration::from_hours(2),
        };
        RolloutPolicy {
            steps,
            max_in_flight: s.max_in_flight,
            period_cap,
            windows: s.windows,
            auto_pause: s.auto_pause.map(|a| AutoPause {
                max_failure: a.max_failure_percent,
                min_sample: a.min_sample,
            }),
            health_gate: s.health_gate.map(|h| HealthGate {
                min_healthy: h.min_healthy_percent,
            }),
            update_timeout,
        }
        .validate()
    }
}

impl From<&RolloutPolicy> for RolloutPolicySpec {
    fn from(p: &RolloutPolicy) -> Self {
        let dur = |d: SignedDuration| format!("{d:#}");
        RolloutPolicySpec {
            steps: p
                .steps
                .iter()
                .map(|s| RampStepSpec {
                    percent: s.share,
                    hold: Some(dur(s.hold)),
                })
                .collect(),
            max_in_flight: p.max_in_flight,
            max_per_period: p.period_cap.map(|c| PeriodCapSpec {
                count: c.count,
                period: dur(c.period),
            }),
            windows: p.windows.clone(),
            auto_pause: p.auto_pause.map(|a| AutoPauseSpec {
                max_failure_percent: a.max_failure,
                min_sample: a.min_sample,
            }),
            health_gate: p.health_gate.map(|h| HealthGateSpec {
                min_healthy_percent: h.min_healthy,
            }),
            update_timeout: Some(dur(p.update_timeout)),
        }
    }
}

impl Serialize for RolloutPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RolloutPolicySpec::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for RolloutPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RolloutPolicy::try_from(RolloutPolicySpec::deserialize(d)?)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_policy_parses_and_round_trips() {
        let json = serde_json::json!({
            "steps": [{"percent": 1, "hold": "1h"}, {"percent": 12.5, "hold": "90m"}, {"percent": 100}],
            "max_in_flight": 100,
            "max_per_period": {"count": 500, "period": "1h"},
            "windows": [{"days": ["mon-fri"], "start": "09:00", "length": "8h", "time_zone": "Europe/Berlin"}],
            "auto_pause": {"max_failure_percent": 10, "min_sample": 20},
            "health_gate": {"min_healthy_percent": 95}
        });
        let p: RolloutPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(p.steps[1].share.basis_points(), 1250);
        assert_eq!(p.steps[1].hold, SignedDuration::from_mins(90));
        assert_eq!(p.update_timeout, SignedDuration::from_hours(2));
        let back: RolloutPolicy =
            serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn durations_accept_days_and_weeks() {
        let p: RolloutPolicy = serde_json::from_value(serde_json::json!({
            "steps": [{"percent": 10, "hold": "1w"}, {"percent": 100}],
            "update_timeout": "7d"
        }))
        .unwrap();
        assert_eq!(p.update_timeout, SignedDuration::from_hours(7 * 24));
        assert_eq!(p.steps[0].hold, SignedDuration::from_hours(7 * 24));
        let err = serde_json::from_value::<RolloutPolicy>(serde_json::json!({
            "steps": [{"percent": 100}],
            "update_timeout": "2 fortnights"
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"2 fortnights\" for update_timeout"), "{err}");
        let err = serde_json::from_value::<RolloutPolicy>(serde_json::json!({
            "steps": [{"percent": 100}],
            "update_timeout": "1 month"
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("update_timeout"), "{err}");
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        let err = |v: serde_json::Value| {
            serde_json::from_value::<RolloutPolicy>(v)
                .unwrap_err()
                .to_string()
        };
        assert!(err(serde_json::json!({"steps": []})).contains("at least one ramp step"));
        assert!(
            err(serde_json::json!({"steps": [{"percent": 10}, {"percent": 5}]}))
                .contains("must be larger")
        );
        assert!(err(serde_json::json!({"steps": [{"percent": 101}]})).contains("101"));
        assert!(
            err(serde_json::json!({"steps": [{"percent": 10, "hold": "a while"}]}))
                .contains("\"a while\"")
        );
        assert!(
            err(serde_json::json!({"steps": [{"percent": 10}], "max_in_flight": 0}))
                .contains("max_in_flight")
        );
        assert!(err(serde_json::json!({"steps": [{"percent": 10}], "speed": 3})).contains("speed"));
    }
}
