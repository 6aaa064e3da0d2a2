//! A rollout's attempts as the dashboard shows them: the figures the admin
//! API reports (offered, in flight, healthy, failed) broken down by how far
//! each attempt got, computed from the attempts grouped by status and phase.

use maud::Markup;

use super::charts::{Marker, Segment, palette, stacked_bar};
use crate::store::{AttemptStatus, Phase, PhaseRow};

/// Attempts by where they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every attempt (the API's `offered`).
    pub offered: u64,
    /// Offered, nothing reported yet.
    pub waiting: u64,
    /// Downloading.
    pub downloading: u64,
    /// Written and armed or rebooted, not yet healthy.
    pub installed: u64,
    /// Healthy on the release.
    pub healthy: u64,
    /// Rebooted into the release by an unsigned report (Flatcar over
    /// Omaha): finished, but not counted healthy.
    pub unsigned_ok: u64,
    /// Ended with an error.
    pub errors: u64,
    /// Ended with a rollback to the previous slot.
    pub rolled_back: u64,
    /// In flight past the update timeout (stuck).
    pub timed_out: u64,
    /// Staged and then cancelled (the release was withdrawn).
    pub cancelled: u64,
}

impl Progress {
    /// From the grouped attempt rows.
    pub fn from_rows(rows: &[PhaseRow]) -> Self {
        let mut p = Progress::default();
        for r in rows {
            p.offered += r.attempts;
            match r.status {
                AttemptStatus::InFlight => {
                    p.timed_out += r.timed_out;
                    let live = r.attempts.saturating_sub(r.timed_out);
                    match r.phase {
                        Phase::Offered => p.waiting += live,
                        Phase::Downloading => p.downloading += live,
                        _ => p.installed += live,
                    }
                }
                AttemptStatus::Healthy => p.healthy += r.attempts,
                AttemptStatus::Succeeded => p.unsigned_ok += r.attempts,
                AttemptStatus::Failed if r.phase == Phase::RolledBack => {
                    p.rolled_back += r.attempts;
                }
                AttemptStatus::Failed => p.errors += r.attempts,
                AttemptStatus::Cancelled => p.cancelled += r.attempts,
            }
        }
        p
    }

    /// In flight and not timed out (the API's `in_flight`).
    pub fn in_flight(&self) -> u64 {
        self.waiting + self.downloading + self.installed
    }

    /// Failed, rolled back or timed out (the API's `failed`).
    pub fn failed(&self) -> u64 {
        self.errors + self.rolled_back + self.timed_out
    }

    /// The bar of this progress out of `scope` nodes, with the ramp target.
    pub fn bar(&self, scope: u64, target: u64) -> Markup {
        let segments = [
            Segment::new("healthy", "healthy", self.healthy, palette::HEALTHY),
            Segment::new(
                "unsigned_ok",
                "updated (unsigned Omaha report)",
                self.unsigned_ok,
                palette::HEALTHY,
            )
            .hatched(),
            Segment::new(
                "installed",
                "staged or on trial",
                self.installed,
                palette::INSTALLED,
            ),
            Segment::new(
                "downloading",
                "downloading",
                self.downloading,
                palette::DOWNLOADING,
            ),
            Segment::new(
                "waiting",
                "offered, not started",
                self.waiting,
                palette::WAITING,
            ),
            Segment::new("errors", "failed", self.errors, palette::ERROR).hatched(),
            Segment::new(
                "rolled_back",
                "rolled back",
                self.rolled_back,
                palette::ROLLED_BACK,
            )
            .hatched(),
            Segment::new(
                "timed_out",
                "stuck past timeout",
                self.timed_out,
                palette::TIMED_OUT,
            )
            .hatched(),
        ];
        stacked_bar(
            "Rollout progress",
            &segments,
            scope,
            Some(&Marker {
                at: target,
                label: "ramp target".to_owned(),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: AttemptStatus, phase: Phase, attempts: u64, timed_out: u64) -> PhaseRow {
        PhaseRow {
            status,
            phase,
            attempts,
            timed_out,
        }
    }

    #[test]
    fn figures_add_up_to_the_api_counters() {
        let p = Progress::from_rows(&[
            row(AttemptStatus::InFlight, Phase::Offered, 5, 2),
            row(AttemptStatus::InFlight, Phase::Downloading, 4, 0),
            row(AttemptStatus::InFlight, Phase::Installed, 3, 1),
            row(AttemptStatus::Healthy, Phase::Healthy, 10, 0),
            row(AttemptStatus::Failed, Phase::RolledBack, 2, 0),
            row(AttemptStatus::Failed, Phase::Error, 1, 0),
        ]);
        assert_eq!(p.offered, 25);
        assert_eq!((p.waiting, p.downloading, p.installed), (3, 4, 2));
        assert_eq!(p.timed_out, 3);
        assert_eq!(p.in_flight(), 9);
        assert_eq!(p.failed(), 6);
        assert_eq!(
            p.in_flight() + p.failed() + p.healthy + p.unsigned_ok,
            p.offered
        );
        let html = p.bar(100, 30).into_string();
        assert!(html.contains(r#"data-figure="rolled_back">2<"#), "{html}");
        assert!(html.contains(r#"data-figure="target">30<"#), "{html}");
    }
}
