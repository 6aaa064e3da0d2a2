//! A rollout policy in plain words for the rollout page, and the short ramp
//! notation of the "change ramp" form ("1% 1h, 10% 2h, 100%"), both ways.

use moho_rollout::policy::{RampStepSpec, RolloutPolicy};
use moho_rollout::{RolloutState, RolloutStatus, Share};

use super::format::duration;

/// A ramp text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RampTextError {
    /// Nothing given.
    #[error("the ramp is empty: give steps like \"1% 1h, 10% 2h, 100%\"")]
    Empty,
    /// A step without a percentage.
    #[error("ramp step {step:?} does not start with a percentage like 10%")]
    NoPercent {
        /// The step as written.
        step: String,
    },
    /// A percentage that is not a number from 0 to 100.
    #[error("ramp step {step:?}: {value:?} is not a percentage from 0 to 100")]
    BadPercent {
        /// The step as written.
        step: String,
        /// The percentage as written.
        value: String,
    },
    /// More than a percentage and a hold.
    #[error("ramp step {step:?} has more than a percentage and a hold time")]
    Extra {
        /// The step as written.
        step: String,
    },
}

/// The ramp as "1% 1h, 10% 2h, 100%" (holds of zero left out).
pub fn ramp_text(policy: &RolloutPolicy) -> String {
    policy
        .steps
        .iter()
        .map(|s| {
            if s.hold.is_zero() {
                s.share.to_string()
            } else {
                format!("{} {}", s.share, duration(s.hold).replace(' ', ""))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses "1% 1h, 10% 2h, 100%" into policy steps (the hold durations are
/// checked when the policy is built).
pub fn parse_ramp(text: &str) -> Result<Vec<RampStepSpec>, RampTextError> {
    let steps: Vec<&str> = text
        .split([',', ';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if steps.is_empty() {
        return Err(RampTextError::Empty);
    }
    steps
        .into_iter()
        .map(|step| {
            let (pct, rest) = step
                .split_once('%')
                .ok_or_else(|| RampTextError::NoPercent {
                    step: step.to_owned(),
                })?;
            let value = pct.trim();
            let percent = value
                .parse::<f64>()
                .ok()
                .and_then(|p| Share::from_percent(p).ok())
                .ok_or_else(|| RampTextError::BadPercent {
                    step: step.to_owned(),
                    value: value.to_owned(),
                })?;
            let mut words = rest.split_whitespace();
            let hold = words.next().map(str::to_owned);
            if words.next().is_some() {
                return Err(RampTextError::Extra {
                    step: step.to_owned(),
                });
            }
            Ok(RampStepSpec { percent, hold })
        })
        .collect()
}

/// The policy as sentences, in the order an operator reads a plan.
pub fn policy_in_words(p: &RolloutPolicy) -> Vec<String> {
    let mut out = Vec::new();
    let steps: Vec<String> = p
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let last = i + 1 == p.steps.len();
            if last || s.hold.is_zero() {
                format!("{} of the nodes", s.share)
            } else {
                format!("{} of the nodes for {}", s.share, duration(s.hold))
            }
        })
        .collect();
    out.push(format!("Ramp: {}.", steps.join(", then ")));
    out.push(match (p.max_in_flight, p.period_cap) {
        (None, None) => "No cap on how many nodes update at once.".to_owned(),
        (Some(n), None) => format!("At most {n} nodes update at once."),
        (None, Some(c)) => format!(
            "At most {} nodes start the update per {}.",
            c.count,
            duration(c.period)
        ),
        (Some(n), Some(c)) => format!(
            "At most {n} nodes update at once, and at most {} start per {}.",
            c.count,
            duration(c.period)
        ),
    });
    let windows = p.windows.windows();
    if windows.is_empty() {
        out.push("Updates may start at any time.".to_owned());
    } else {
        let list: Vec<String> = windows
            .iter()
            .map(|w| {
                let s = w.to_spec();
                format!(
                    "{} from {} for {} ({})",
                    s.days.join(", "),
                    if s.start.len() == 8 {
                        s.start.strip_suffix(":00").unwrap_or(&s.start)
                    } else {
                        &s.start
                    },
                    s.length,
                    s.time_zone
                )
            })
            .collect();
        out.push(format!("Updates start only in: {}.", list.join("; ")));
    }
    if let Some(a) = p.auto_pause {
        out.push(format!(
            "Pauses itself when more than {} of finished attempts failed (once at least {} finished).",
            a.max_failure, a.min_sample
        ));
    }
    if let Some(g) = p.health_gate {
        out.push(format!(
            "Moves to the next step only when {} of the step's nodes reported healthy.",
            g.min_healthy
        ));
    }
    out.push(format!(
        "A node that reports neither healthy nor failed within {} counts as failed.",
        duration(p.update_timeout)
    ));
    out
}

/// The rollout's status in a few words ("active", "paused by an operator",
/// "paused automatically: 5 of 20 failed", ...).
pub fn status_in_words(s: &RolloutState) -> String {
    use moho_rollout::PauseReason;
    match s.status {
        RolloutStatus::Active => "active".to_owned(),
        RolloutStatus::Paused {
            reason: PauseReason::Operator,
        } => "paused by an operator".to_owned(),
        RolloutStatus::Paused {
            reason: PauseReason::FailureRate { failed, finished },
        } => format!("paused automatically: {failed} of {finished} finished attempts failed"),
        RolloutStatus::Aborted => "aborted".to_owned(),
        RolloutStatus::Reverted => "reverted".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: serde_json::Value) -> RolloutPolicy {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("policy: {e}"))
    }

    #[test]
    fn ramp_text_round_trips_and_names_bad_steps() {
        let p = policy(serde_json::json!({"steps": [
            {"percent": 1, "hold": "1h"}, {"percent": 12.5, "hold": "90m"}, {"percent": 100}]}));
        assert_eq!(ramp_text(&p), "1% 1h, 12.5% 1h30m, 100%");
        let steps = parse_ramp(&ramp_text(&p)).unwrap_or_default();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[1].percent.basis_points(), 1250);
        assert_eq!(steps[1].hold.as_deref(), Some("1h30m"));
        assert_eq!(steps[2].hold, None);
        assert_eq!(parse_ramp(" "), Err(RampTextError::Empty));
        assert!(matches!(
            parse_ramp("10 1h"),
            Err(RampTextError::NoPercent { .. })
        ));
        let e = parse_ramp("5% 1h, 120%").unwrap_err();
        assert!(e.to_string().contains("\"120\""), "{e}");
        assert!(matches!(
            parse_ramp("5% 1h 2h"),
            Err(RampTextError::Extra { .. })
        ));
    }

    #[test]
    fn policies_read_as_sentences() {
        let p = policy(serde_json::json!({
            "steps": [{"percent": 1, "hold": "1h"}, {"percent": 100}],
            "max_in_flight": 100,
            "max_per_period": {"count": 500, "period": "1h"},
            "windows": [{"days": ["mon-fri"], "start": "09:00", "length": "8h", "time_zone": "Europe/Berlin"}],
            "auto_pause": {"max_failure_percent": 10, "min_sample": 20},
            "health_gate": {"min_healthy_percent": 95}
        }));
        let w = policy_in_words(&p).join(" ");
        for part in [
            "Ramp: 1% of the nodes for 1h, then 100% of the nodes.",
            "At most 100 nodes update at once, and at most 500 start per 1h.",
            "mon, tue, wed, thu, fri from 09:00 for 8h (Europe/Berlin)",
            "more than 10% of finished attempts failed (once at least 20 finished)",
            "95% of the step's nodes reported healthy",
            "within 2h counts as failed",
        ] {
            assert!(w.contains(part), "{part:?} not in {w:?}");
        }
        let open = policy_in_words(&RolloutPolicy::immediate()).join(" ");
        assert!(open.contains("No cap"), "{open}");
        assert!(open.contains("any time"), "{open}");
    }
}
