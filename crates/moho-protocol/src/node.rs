//! The node protocol: a node checks in (`POST /v1/check-in`) and is told to
//! install a target, revert to its previous slot, or wait; it reports what it
//! did (`POST /v1/events`). Both requests are signed ([`crate::signing`]).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Path of the check-in endpoint (part of the signed bytes).
pub const CHECK_IN_PATH: &str = "/v1/check-in";
/// Path of the event report endpoint (part of the signed bytes).
pub const EVENTS_PATH: &str = "/v1/events";

/// A root slot (DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// `ROOT-A`.
    A,
    /// `ROOT-B`.
    B,
}

/// What the node booted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootedImage {
    /// Release version of the booted slot.
    pub version: String,
    /// Which slot it is.
    pub slot: Slot,
}

/// What the agent is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Nothing to do.
    Idle,
    /// Downloading and writing the inactive slot.
    Updating,
    /// An update is written and armed; waiting for the node's own reboot
    /// strategy (a window, the FleetLock, an operator). Not a failure.
    Staged,
    /// Rebooting into the new slot.
    Rebooting,
    /// The new slot booted and is on trial until its health checks pass
    /// (or fail, or the node's health deadline passes).
    Trial,
    /// The last attempt failed (details are in an error event).
    Error,
}

impl AgentState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Idle => "idle",
            AgentState::Updating => "updating",
            AgentState::Staged => "staged",
            AgentState::Rebooting => "rebooting",
            AgentState::Trial => "trial",
            AgentState::Error => "error",
        }
    }
}

/// `POST /v1/check-in` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    /// The node's id ([`crate::names::check_node_id`]).
    pub node_id: String,
    /// The node's ed25519 public key, base64 (32 bytes). Registered on the
    /// first check-in; later requests must be signed by it.
    pub public_key: String,
    /// Channel the node follows.
    pub channel: String,
    /// Group the node belongs to.
    pub group: String,
    /// Board of the node's hardware.
    pub board: String,
    /// What is booted.
    pub booted: BootedImage,
    /// Version in the other slot, if it holds a bootable image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_version: Option<String>,
    /// What the agent is doing.
    pub state: AgentState,
    /// The version staged (state `staged`) or on trial (state `trial`), so
    /// that the server can cancel a release it withdrew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_version: Option<String>,
    /// The machine's host name, shown to operators beside the id
    /// ([`crate::names::check_hostname`]; free text, escaped wherever shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Enrollment token, needed on the first check-in when the server
    /// requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_token: Option<String>,
}

/// Why the node gets nothing now. None of these is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitCode {
    /// No rollout offers the node anything newer.
    UpToDate,
    /// No active rollout for the node's channel, group and board.
    NoRollout,
    /// A hold or pin on the node or its group.
    Held,
    /// The rollout is paused.
    Paused,
    /// The rollout was aborted or reverted.
    Stopped,
    /// The ramp has not reached this node yet.
    NotYetInLine,
    /// Outside the rollout's calendar windows.
    WindowClosed,
    /// Too many nodes updating at once, or in this period.
    Capacity,
    /// The node's attempt at the release failed; it is not offered again.
    AttemptFailed,
}

/// The server's answer to a check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum NodeAction {
    /// Install this target. The agent verifies it against the signed
    /// repository before writing a byte.
    Install {
        /// TUF target name of the image.
        target: String,
        /// Its release version.
        version: String,
    },
    /// Boot back into the previous slot (the release was reverted).
    Revert {
        /// The version being reverted.
        from_version: String,
    },
    /// The release the node staged (or has on trial) was withdrawn: the
    /// rollout was aborted or reverted, or the node's group is held. A
    /// staged node clears its armed slot before any reboot; a node on trial
    /// reboots into its fallback.
    Cancel {
        /// The staged version.
        version: String,
        /// Why (e.g. "the rollout of 1.2.0 was aborted").
        reason: String,
    },
    /// Nothing now; ask again after `retry_after_secs`.
    Wait {
        /// Seconds until the next check-in.
        retry_after_secs: u64,
        /// Why.
        code: WaitCode,
        /// Human-readable detail (e.g. "held until 2026-02-01T00:00:00Z").
        reason: String,
    },
}

/// `POST /v1/check-in` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInResponse {
    /// What to do.
    #[serde(flatten)]
    pub action: NodeAction,
    /// Base URL of the TUF repository (`<base>/metadata/`, `<base>/targets/`).
    pub repository_url: String,
}

/// What happened on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// Started downloading a release.
    DownloadStarted {
        /// Release version.
        version: String,
    },
    /// Finished downloading and verifying it.
    DownloadFinished {
        /// Release version.
        version: String,
    },
    /// Written and armed in the inactive slot.
    Installed {
        /// Release version.
        version: String,
    },
    /// Rebooting into it.
    Rebooting {
        /// Release version.
        version: String,
    },
    /// Booted the new version (not yet marked good).
    BootedNewVersion {
        /// Release version.
        version: String,
    },
    /// Marked good after `boot-complete.target`.
    Healthy {
        /// Release version.
        version: String,
    },
    /// The new version failed and the node fell back.
    Rollback {
        /// The version that failed.
        failed_version: String,
        /// The version booted now.
        booted_version: String,
        /// Why, as far as the node knows (the failed health check, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The trial of the new version failed; the node reboots into its
    /// fallback at once (a `rollback` follows from there).
    TrialFailed {
        /// The version on trial.
        version: String,
        /// The failed unit, when a health check failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
        /// What happened (the unit's status, the deadline, the withdrawal).
        detail: String,
    },
    /// The staged version was cancelled before any reboot (the server's
    /// "cancel", or `update-agent cancel`); its slot is cleared.
    Cancelled {
        /// The version.
        version: String,
        /// Why.
        reason: String,
    },
    /// Something went wrong.
    Error {
        /// Release version concerned, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        /// Machine-readable code, e.g. `download_failed`, `verify_failed`.
        code: String,
        /// Human-readable message.
        message: String,
    },
}

impl EventKind {
    /// The wire name of the event type.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::DownloadStarted { .. } => "download_started",
            EventKind::DownloadFinished { .. } => "download_finished",
            EventKind::Installed { .. } => "installed",
            EventKind::Rebooting { .. } => "rebooting",
            EventKind::BootedNewVersion { .. } => "booted_new_version",
            EventKind::Healthy { .. } => "healthy",
            EventKind::Rollback { .. } => "rollback",
            EventKind::TrialFailed { .. } => "trial_failed",
            EventKind::Cancelled { .. } => "cancelled",
            EventKind::Error { .. } => "error",
        }
    }

    /// The release version the event is about.
    pub fn version(&self) -> Option<&str> {
        match self {
            EventKind::DownloadStarted { version }
            | EventKind::DownloadFinished { version }
            | EventKind::Installed { version }
            | EventKind::Rebooting { version }
            | EventKind::BootedNewVersion { version }
            | EventKind::Healthy { version }
            | EventKind::TrialFailed { version, .. }
            | EventKind::Cancelled { version, .. } => Some(version),
            EventKind::Rollback { failed_version, .. } => Some(failed_version),
            EventKind::Error { version, .. } => version.as_deref(),
        }
    }
}

/// One event with the node's clock reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (node clock).
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Most events in one report.
pub const MAX_EVENTS_PER_REPORT: usize = 100;

/// `POST /v1/events` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventReport {
    /// The node's id.
    pub node_id: String,
    /// Events, oldest first (at most [`MAX_EVENTS_PER_REPORT`]).
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_events_have_the_documented_shape() {
        let wait = CheckInResponse {
            action: NodeAction::Wait {
                retry_after_secs: 600,
                code: WaitCode::Held,
                reason: "held until x".into(),
            },
            repository_url: "https://u.example/repo".into(),
        };
        let v = serde_json::to_value(&wait).unwrap();
        assert_eq!(v["action"], "wait");
        assert_eq!(v["code"], "held");
        assert_eq!(v["retry_after_secs"], 600);
        let ev: Event = serde_json::from_value(serde_json::json!({
            "at": "2026-01-01T00:00:00Z", "type": "rollback",
            "failed_version": "1.2.0", "booted_version": "1.1.0"
        }))
        .unwrap();
        assert_eq!(ev.kind.version(), Some("1.2.0"));
        assert_eq!(ev.kind.type_name(), "rollback");
        let cancel: CheckInResponse = serde_json::from_value(serde_json::json!({
            "action": "cancel", "version": "1.2.0", "reason": "the rollout was aborted",
            "repository_url": "https://u.example/repo"
        }))
        .unwrap();
        assert!(
            matches!(cancel.action, NodeAction::Cancel { ref version, .. } if version == "1.2.0")
        );
        let failed: Event = serde_json::from_value(serde_json::json!({
            "at": "2026-01-01T00:00:00Z", "type": "trial_failed", "version": "1.2.0",
            "unit": "moho-health-check.service", "detail": "exit-code"
        }))
        .unwrap();
        assert_eq!(failed.kind.type_name(), "trial_failed");
        assert_eq!(
            serde_json::to_value(AgentState::Trial).unwrap(),
            serde_json::json!("trial")
        );
        let bad = serde_json::from_value::<Event>(serde_json::json!({
            "at": "2026-01-01T00:00:00Z", "type": "exploded"
        }));
        assert!(bad.is_err());
    }
}
