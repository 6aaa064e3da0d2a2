//! Whether a trial boot is healthy, still coming up, or failed (DESIGN
//! §3.12), as a pure function of what systemd reports, when the trial
//! started, the time and the configured deadline. A failed unit required by
//! `boot-complete.target` ends the trial at once; a target not reached by
//! the deadline ends it then; a systemd that cannot be asked only leaves
//! the deadline.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::health::HealthReport;
use crate::state::TrialFailure;

/// The verdict on a trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrialVerdict {
    /// `boot-complete.target` is active: mark the slot good.
    Healthy,
    /// Still coming up; decided at `deadline` at the latest.
    Waiting {
        /// When the trial fails if nothing changes.
        deadline: Timestamp,
        /// What it waits for (units not yet active), or why systemd could
        /// not be asked.
        waiting_for: Vec<String>,
    },
    /// The trial failed.
    Failed(TrialFailure),
}

/// Judges the trial that started at `since`.
pub fn judge(
    health: Result<&HealthReport, &str>,
    since: Timestamp,
    now: Timestamp,
    deadline: Duration,
) -> TrialVerdict {
    let due = SignedDuration::try_from(deadline)
        .ok()
        .and_then(|d| since.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX);
    let waiting_for = match health {
        Ok(report) => {
            if let Some(failed) = report.units.iter().find(|u| u.active_state == "failed") {
                return TrialVerdict::Failed(TrialFailure::UnitFailed {
                    unit: failed.name.clone(),
                    detail: failed.failure_detail(),
                });
            }
            if report.complete {
                return TrialVerdict::Healthy;
            }
            report
                .units
                .iter()
                .filter(|u| u.active_state != "active")
                .map(|u| format!("{}: {}", u.name, u.state_line()))
                .collect()
        }
        Err(why) => vec![format!("systemd: {why}")],
    };
    if now >= due {
        return TrialVerdict::Failed(TrialFailure::Deadline {
            deadline: humantime::format_duration(deadline).to_string(),
            waiting_for,
        });
    }
    TrialVerdict::Waiting {
        deadline: due,
        waiting_for,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::health::fake::unit;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const TEN_MIN: Duration = Duration::from_secs(600);

    #[test]
    fn a_failed_check_fails_the_trial_at_once_naming_the_unit() {
        let mut check = unit("moho-health-check.service", "failed", "failed");
        check.result = Some("exit-code".into());
        check.exit_status = Some(1);
        let report = HealthReport {
            complete: false,
            units: vec![unit("a.service", "active", "exited"), check],
        };
        let since = ts("2026-11-22T10:00:00Z");
        assert_eq!(
            judge(Ok(&report), since, since, TEN_MIN),
            TrialVerdict::Failed(TrialFailure::UnitFailed {
                unit: "moho-health-check.service".into(),
                detail: "failed (failed), result exit-code, exit status 1".into(),
            })
        );
        // Its own words when it said something.
        let mut said = report.clone();
        said.units[1].status_text = Some("containerd did not answer".into());
        assert!(matches!(
            judge(Ok(&said), since, since, TEN_MIN),
            TrialVerdict::Failed(TrialFailure::UnitFailed { detail, .. }) if detail == "containerd did not answer"
        ));
    }

    #[test]
    fn a_check_that_never_ends_fails_at_the_deadline_and_names_what_it_waited_for() {
        let report = HealthReport {
            complete: false,
            units: vec![unit("slow-check.service", "activating", "start")],
        };
        let since = ts("2026-11-22T10:00:00Z");
        assert_eq!(
            judge(Ok(&report), since, ts("2026-11-22T10:09:59Z"), TEN_MIN),
            TrialVerdict::Waiting {
                deadline: ts("2026-11-22T10:10:00Z"),
                waiting_for: vec!["slow-check.service: activating (start)".into()],
            }
        );
        assert_eq!(
            judge(Ok(&report), since, ts("2026-11-22T10:10:00Z"), TEN_MIN),
            TrialVerdict::Failed(TrialFailure::Deadline {
                deadline: "10m".into(),
                waiting_for: vec!["slow-check.service: activating (start)".into()],
            })
        );
    }

    #[test]
    fn a_complete_boot_is_healthy_and_an_unreachable_systemd_leaves_only_the_deadline() {
        let report = HealthReport {
            complete: true,
            units: vec![unit("check.service", "active", "exited")],
        };
        let since = ts("2026-11-22T10:00:00Z");
        assert_eq!(
            judge(Ok(&report), since, since, TEN_MIN),
            TrialVerdict::Healthy
        );
        assert!(matches!(
            judge(Err("no bus"), since, since, TEN_MIN),
            TrialVerdict::Waiting { .. }
        ));
        assert!(matches!(
            judge(Err("no bus"), since, ts("2026-11-22T11:00:00Z"), TEN_MIN),
            TrialVerdict::Failed(TrialFailure::Deadline { waiting_for, .. })
                if waiting_for == ["systemd: no bus"]
        ));
    }
}
