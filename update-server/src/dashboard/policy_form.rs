//! The "change ramp or caps" form: its fields, their current values from a
//! policy, and the new policy they describe (everything else in the policy
//! is kept). Errors name the field and the value.

use maud::{Markup, html};
use moho_rollout::policy::{PeriodCapSpec, RolloutPolicy, RolloutPolicySpec};
use serde::Deserialize;

use super::format::duration;
use super::words::{parse_ramp, ramp_text};

/// The form's fields (all text, as typed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PolicyFields {
    /// Ramp, e.g. "1% 1h, 10% 2h, 100%".
    #[serde(default)]
    pub ramp: String,
    /// Most nodes updating at once; empty for no cap.
    #[serde(default)]
    pub max_in_flight: String,
    /// Most nodes starting per period; empty for no cap.
    #[serde(default)]
    pub period_count: String,
    /// The period, e.g. "1h".
    #[serde(default)]
    pub period: String,
}

impl PolicyFields {
    /// The fields showing `p`.
    pub fn of(p: &RolloutPolicy) -> Self {
        Self {
            ramp: ramp_text(p),
            max_in_flight: p.max_in_flight.map(|n| n.to_string()).unwrap_or_default(),
            period_count: p
                .period_cap
                .map(|c| c.count.to_string())
                .unwrap_or_default(),
            period: p
                .period_cap
                .map(|c| duration(c.period).replace(' ', ""))
                .unwrap_or_default(),
        }
    }

    /// `current` with this ramp and these caps.
    pub fn apply(&self, current: &RolloutPolicy) -> Result<RolloutPolicy, String> {
        let mut spec = RolloutPolicySpec::from(current);
        spec.steps = parse_ramp(&self.ramp).map_err(|e| e.to_string())?;
        spec.max_in_flight = count("max in flight", &self.max_in_flight)?;
        spec.max_per_period = match count("nodes per period", &self.period_count)? {
            None => None,
            Some(n) => {
                let period = self.period.trim();
                if period.is_empty() {
                    return Err(format!(
                        "a cap of {n} nodes per period needs a period, e.g. 1h"
                    ));
                }
                Some(PeriodCapSpec {
                    count: n,
                    period: period.to_owned(),
                })
            }
        };
        RolloutPolicy::try_from(spec).map_err(|e| e.to_string())
    }

    /// The fields as hidden inputs (the confirmation page's form).
    pub fn hidden(&self) -> Markup {
        html! {
            input type="hidden" name="ramp" value=(self.ramp);
            input type="hidden" name="max_in_flight" value=(self.max_in_flight);
            input type="hidden" name="period_count" value=(self.period_count);
            input type="hidden" name="period" value=(self.period);
        }
    }

    /// The fields as inputs.
    pub fn inputs(&self) -> Markup {
        html! {
            label { "Ramp (percent and hold per step)"
                input type="text" name="ramp" value=(self.ramp) required placeholder="1% 1h, 10% 2h, 100%";
            }
            label { "Max nodes updating at once (empty: no cap)"
                input type="number" min="1" name="max_in_flight" value=(self.max_in_flight);
            }
            label { "Max nodes starting per period (empty: no cap)"
                input type="number" min="1" name="period_count" value=(self.period_count);
            }
            label { "Period"
                input type="text" name="period" value=(self.period) placeholder="1h";
            }
        }
    }
}

fn count(what: &str, value: &str) -> Result<Option<u32>, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .map(Some)
        .ok_or_else(|| format!("{what} {v:?} is not a whole number of at least 1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_show_and_change_a_policy() {
        let p: RolloutPolicy = serde_json::from_value(serde_json::json!({
            "steps": [{"percent": 5, "hold": "1h"}, {"percent": 100}],
            "max_in_flight": 10,
            "auto_pause": {"max_failure_percent": 10, "min_sample": 20}
        }))
        .unwrap_or_else(|_| RolloutPolicy::immediate());
        let f = PolicyFields::of(&p);
        assert_eq!(f.ramp, "5% 1h, 100%");
        assert_eq!(f.max_in_flight, "10");
        assert_eq!(f.apply(&p), Ok(p.clone()));
        let changed = PolicyFields {
            ramp: "5% 1h, 50% 2h, 100%".into(),
            max_in_flight: String::new(),
            period_count: "200".into(),
            period: "30m".into(),
        }
        .apply(&p)
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(changed.steps.len(), 3);
        assert_eq!(changed.max_in_flight, None);
        assert_eq!(changed.period_cap.map(|c| c.count), Some(200));
        // Untouched parts stay.
        assert_eq!(changed.auto_pause, p.auto_pause);
        let bad = |f: PolicyFields| f.apply(&p).unwrap_err();
        assert!(
            bad(PolicyFields {
                ramp: "50%, 10%".into(),
                ..f.clone()
            })
            .contains("larger")
        );
        assert!(
            bad(PolicyFields {
                max_in_flight: "lots".into(),
                ..f.clone()
            })
            .contains("\"lots\"")
        );
        assert!(
            bad(PolicyFields {
                period_count: "5".into(),
                period: String::new(),
                ..f.clone()
            })
            .contains("needs a period")
        );
        assert!(
            bad(PolicyFields {
                period_count: "5".into(),
                period: "soon".into(),
                ..f
            })
            .contains("\"soon\"")
        );
    }
}
