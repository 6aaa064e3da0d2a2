//! Rollout policy flags: a whole policy from a JSON file (`--policy`), and
//! flags that set or clear one part of it (`--ramp 1:1h,10:2h,100`,
//! `--max-in-flight 50`, `--window "mon-fri 02:00 3h Europe/Berlin"`, ...).
//! Creating a rollout starts from the file or from nothing; changing one
//! starts from its current policy, so `rollouts policy 7 --max-in-flight 20`
//! changes only the cap. The result is validated here with the server's own
//! rules (`moho_rollout::policy`) before anything is sent.

use std::io::Read as _;
use std::path::PathBuf;

use clap::Args;
use moho_rollout::policy::{
    AutoPauseSpec, HealthGateSpec, PeriodCapSpec, RampStepSpec, RolloutPolicySpec,
};
use moho_rollout::{RolloutPolicy, Share, Window, WindowSpec, Windows};

use crate::error::CliError;

/// Flags that set a rollout's policy.
#[derive(Debug, Clone, Default, Args)]
pub struct PolicyArgs {
    /// A whole policy as JSON (a file, or - for stdin); the other flags
    /// change it.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Ramp steps as PERCENT[:HOLD],..., e.g. 1:1h,10:2h,50:4h,100 (each
    /// step held at least HOLD before the next).
    #[arg(long, value_name = "STEPS")]
    pub ramp: Option<String>,
    /// Most nodes updating at once.
    #[arg(long, value_name = "N", conflicts_with = "no_max_in_flight")]
    pub max_in_flight: Option<u32>,
    /// No cap on nodes updating at once.
    #[arg(long)]
    pub no_max_in_flight: bool,
    /// Most nodes starting per period, as COUNT/PERIOD, e.g. 500/1h.
    #[arg(
        long,
        value_name = "COUNT/PERIOD",
        conflicts_with = "no_max_per_period"
    )]
    pub max_per_period: Option<String>,
    /// No cap per period.
    #[arg(long)]
    pub no_max_per_period: bool,
    /// An update window as "DAYS START LENGTH TIME_ZONE", e.g. "mon-fri
    /// 02:00 3h Europe/Berlin" (repeat for several; they replace the
    /// current ones).
    #[arg(long, value_name = "WINDOW", conflicts_with = "no_windows")]
    pub window: Vec<String>,
    /// Updates at any time (no windows).
    #[arg(long)]
    pub no_windows: bool,
    /// Pause automatically when failures exceed PERCENT of finished
    /// attempts, once MIN_SAMPLE have finished: PERCENT/MIN_SAMPLE, e.g.
    /// 10/20.
    #[arg(
        long,
        value_name = "PERCENT/MIN_SAMPLE",
        conflicts_with = "no_auto_pause"
    )]
    pub auto_pause: Option<String>,
    /// No automatic pause.
    #[arg(long)]
    pub no_auto_pause: bool,
    /// Advance the ramp only once this percentage of the step's nodes
    /// reported healthy, e.g. 95.
    #[arg(long, value_name = "PERCENT", conflicts_with = "no_health_gate")]
    pub health_gate: Option<f64>,
    /// No health gate.
    #[arg(long)]
    pub no_health_gate: bool,
    /// An attempt with no final report after this long counts as failed,
    /// e.g. 2h.
    #[arg(long, value_name = "DURATION")]
    pub update_timeout: Option<String>,
}

fn usage(flag: &str, value: &str, rule: &str) -> CliError {
    CliError::Usage(format!("invalid {flag} {value:?}: {rule}"))
}

fn percent(flag: &str, value: &str) -> Result<Share, CliError> {
    value
        .trim()
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .and_then(|p| Share::from_percent(p).ok())
        .ok_or_else(|| usage(flag, value, "use a percentage from 0 to 100"))
}

fn ramp(value: &str) -> Result<Vec<RampStepSpec>, CliError> {
    value
        .split(',')
        .map(|step| {
            let (p, hold) = match step.split_once(':') {
                Some((p, h)) => (p, Some(h.trim().to_owned())),
                None => (step, None),
            };
            Ok(RampStepSpec {
                percent: percent("--ramp", p)?,
                hold,
            })
        })
        .collect()
}

fn read_policy(path: &PathBuf) -> Result<RolloutPolicySpec, CliError> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|source| CliError::File {
                path: path.clone(),
                source,
            })?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|source| CliError::File {
            path: path.clone(),
            source,
        })?
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("policy {}: {e}", path.display())))
}

impl PolicyArgs {
    /// Whether no policy flag was given.
    pub fn is_empty(&self) -> bool {
        self.policy.is_none()
            && self.ramp.is_none()
            && self.max_in_flight.is_none()
            && !self.no_max_in_flight
            && self.max_per_period.is_none()
            && !self.no_max_per_period
            && self.window.is_empty()
            && !self.no_windows
            && self.auto_pause.is_none()
            && !self.no_auto_pause
            && self.health_gate.is_none()
            && !self.no_health_gate
            && self.update_timeout.is_none()
    }

    /// The policy these flags make of `base` (the current policy, or none
    /// for a new rollout), validated.
    pub fn apply(&self, base: Option<&RolloutPolicy>) -> Result<RolloutPolicy, CliError> {
        let mut spec = match (&self.policy, base) {
            (Some(path), _) => read_policy(path)?,
            (None, Some(p)) => RolloutPolicySpec::from(p),
            (None, None) => {
                if self.ramp.is_none() {
                    return Err(CliError::Usage(
                        "a new rollout needs --ramp (e.g. --ramp 1:1h,10:2h,100) or --policy FILE"
                            .into(),
                    ));
                }
                RolloutPolicySpec::from(&RolloutPolicy::immediate())
            }
        };
        if let Some(r) = &self.ramp {
            spec.steps = ramp(r)?;
        }
        if let Some(n) = self.max_in_flight {
            spec.max_in_flight = Some(n);
        }
        if self.no_max_in_flight {
            spec.max_in_flight = None;
        }
        if let Some(v) = &self.max_per_period {
            let (count, period) = v
                .split_once('/')
                .and_then(|(c, p)| Some((c.trim().parse::<u32>().ok()?, p.trim().to_owned())))
                .ok_or_else(|| usage("--max-per-period", v, "use COUNT/PERIOD, e.g. 500/1h"))?;
            spec.max_per_period = Some(PeriodCapSpec { count, period });
        }
        if self.no_max_per_period {
            spec.max_per_period = None;
        }
        if !self.window.is_empty() {
            let windows = self
                .window
                .iter()
                .map(|w| {
                    WindowSpec::parse_line(w)
                        .and_then(|spec| Window::from_spec(&spec))
                        .map_err(|e| CliError::Usage(format!("invalid --window: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            spec.windows = Windows::new(windows);
        }
        if self.no_windows {
            spec.windows = Windows::always();
        }
        if let Some(v) = &self.auto_pause {
            let (p, n) = v
                .split_once('/')
                .ok_or_else(|| usage("--auto-pause", v, "use PERCENT/MIN_SAMPLE, e.g. 10/20"))?;
            spec.auto_pause = Some(AutoPauseSpec {
                max_failure_percent: percent("--auto-pause", p)?,
                min_sample: n
                    .trim()
                    .parse()
                    .map_err(|_| usage("--auto-pause", v, "MIN_SAMPLE must be a whole number"))?,
            });
        }
        if self.no_auto_pause {
            spec.auto_pause = None;
        }
        if let Some(p) = self.health_gate {
            spec.health_gate = Some(HealthGateSpec {
                min_healthy_percent: percent("--health-gate", &p.to_string())?,
            });
        }
        if self.no_health_gate {
            spec.health_gate = None;
        }
        if let Some(t) = &self.update_timeout {
            spec.update_timeout = Some(t.clone());
        }
        RolloutPolicy::try_from(spec).map_err(|e| CliError::Usage(format!("policy: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(f: impl FnOnce(&mut PolicyArgs)) -> PolicyArgs {
        let mut a = PolicyArgs::default();
        f(&mut a);
        a
    }

    fn json(p: &RolloutPolicy) -> serde_json::Value {
        serde_json::to_value(p).unwrap_or_default()
    }

    #[test]
    fn flags_build_a_policy_and_change_only_what_they_name() {
        let new = flags(|a| {
            a.ramp = Some("1:1h,10:2h,100".into());
            a.max_in_flight = Some(50);
            a.max_per_period = Some("500/1h".into());
            a.window = vec!["mon-fri 02:00 3h Europe/Berlin".into()];
            a.auto_pause = Some("10/20".into());
            a.health_gate = Some(95.0);
        })
        .apply(None)
        .unwrap_or_else(|e| panic!("{e}"));
        let j = json(&new);
        assert_eq!(
            j["steps"][1],
            serde_json::json!({"percent": 10.0, "hold": "2h"})
        );
        assert_eq!(j["max_in_flight"], 50);
        assert_eq!(j["max_per_period"]["count"], 500);
        assert_eq!(j["windows"][0]["time_zone"], "Europe/Berlin");
        assert_eq!(j["auto_pause"]["min_sample"], 20);
        assert_eq!(j["health_gate"]["min_healthy_percent"], 95.0);

        // A change starts from the current policy.
        let changed = flags(|a| {
            a.max_in_flight = Some(5);
            a.no_windows = true;
        })
        .apply(Some(&new))
        .unwrap_or_else(|e| panic!("{e}"));
        let c = json(&changed);
        assert_eq!(c["max_in_flight"], 5);
        assert_eq!(c["steps"], j["steps"]);
        assert_eq!(c["windows"], serde_json::json!([]));
        assert_eq!(c["auto_pause"], j["auto_pause"]);
    }

    #[test]
    fn bad_flags_are_refused_naming_the_value() {
        let err = |f: PolicyArgs| {
            f.apply(None)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(PolicyArgs::default()).contains("--ramp"));
        let e = err(flags(|a| a.ramp = Some("10,5".into())));
        assert!(e.contains("larger than the step before"), "{e}");
        let e = err(flags(|a| a.ramp = Some("10,abc".into())));
        assert!(e.contains("\"abc\""), "{e}");
        let e = err(flags(|a| {
            a.ramp = Some("100".into());
            a.window = vec!["mon-fri 02:00 3h Mars/Olympus".into()];
        }));
        assert!(e.contains("Mars/Olympus"), "{e}");
        let e = err(flags(|a| {
            a.ramp = Some("100".into());
            a.max_per_period = Some("lots".into());
        }));
        assert!(e.contains("COUNT/PERIOD"), "{e}");
    }
}
