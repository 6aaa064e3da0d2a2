//! The update server's event vocabulary for the state machine's reports.

use moho_protocol::node::EventKind;

use crate::state::TrialFailure;
use crate::state::machine::Report;

/// The wire event for a report.
pub fn event_for(r: &Report) -> Option<EventKind> {
    Some(match r {
        Report::DownloadStarted(s) => EventKind::DownloadStarted {
            version: s.version.clone(),
        },
        Report::DownloadFinished(s) => EventKind::DownloadFinished {
            version: s.version.clone(),
        },
        Report::Installed(s) => EventKind::Installed {
            version: s.version.clone(),
        },
        Report::Rebooting(s) if !s.revert => EventKind::Rebooting {
            version: s.version.clone(),
        },
        Report::Rebooting(_) => return None,
        Report::BootedNewVersion(s) => EventKind::BootedNewVersion {
            version: s.version.clone(),
        },
        Report::Healthy(s) => EventKind::Healthy {
            version: s.version.clone(),
        },
        Report::Rollback {
            failed,
            booted_version,
            reason,
        } => EventKind::Rollback {
            failed_version: failed.version.clone(),
            booted_version: booted_version.clone(),
            reason: Some(clip(reason)),
        },
        Report::TrialFailed { staged, failure } => EventKind::TrialFailed {
            version: staged.version.clone(),
            unit: match failure {
                TrialFailure::UnitFailed { unit, .. } => Some(unit.clone()),
                _ => None,
            },
            detail: clip(&failure.to_string()),
        },
        Report::Cancelled { staged, reason } => EventKind::Cancelled {
            version: staged.version.clone(),
            reason: clip(reason),
        },
        Report::Error {
            phase,
            message,
            version,
        } => EventKind::Error {
            version: version.clone(),
            code: format!("{phase}_failed"),
            message: clip(message),
        },
    })
}

/// Messages the server stores are bounded.
fn clip(s: &str) -> String {
    s.chars().take(2000).collect()
}
