//! Admin API bodies (`/api/v1/...`, bearer tokens with role admin or viewer).
//! The OpenAPI document at `/api/v1/openapi.json` describes the same shapes.

use jiff::Timestamp;
use moho_rollout::policy::RolloutPolicy;
use moho_rollout::state::{Action, RolloutState, RolloutStats};
use moho_rollout::{HoldKind, HoldTarget};
use serde::{Deserialize, Serialize};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read and change everything.
    Admin,
    /// Read everything, change nothing.
    Viewer,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// A list answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    /// The items.
    pub items: Vec<T>,
}

/// `POST /api/v1/channels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// Channel name.
    pub name: String,
}

/// A channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    /// Channel name.
    pub name: String,
}

/// `POST /api/v1/groups`; `PATCH /api/v1/groups/{name}` takes the same
/// fields except `name`, all optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Group name (ignored on PATCH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// FleetLock: nodes of this group that may reboot at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleetlock_slots: Option<u32>,
    /// FleetLock: seconds a reboot lease lasts unless released (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleetlock_lease_secs: Option<u64>,
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    /// Group name.
    pub name: String,
    /// FleetLock slots.
    pub fleetlock_slots: u32,
    /// FleetLock lease length, seconds.
    pub fleetlock_lease_secs: u64,
}

/// A release synced from the signed repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseView {
    /// Release version.
    pub version: String,
    /// Board.
    pub board: String,
    /// TUF target name of the image.
    pub target: String,
    /// Channels it is signed for.
    pub channels: Vec<String>,
    /// Oldest version it may be applied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// Whether the signed repository still lists it (a release absent from
    /// it cannot be rolled out).
    pub present: bool,
    /// Signed length of the image, bytes (absent for releases synced before
    /// sizes were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// `POST /api/v1/rollouts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRollout {
    /// Release version.
    pub version: String,
    /// Board of the release.
    pub board: String,
    /// Channel.
    pub channel: String,
    /// Group.
    pub group: String,
    /// Policy (see `moho_rollout::policy`).
    pub policy: RolloutPolicy,
}

/// A rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutView {
    /// Id.
    pub id: i64,
    /// Release version.
    pub version: String,
    /// Board.
    pub board: String,
    /// Channel.
    pub channel: String,
    /// Group.
    pub group: String,
    /// Policy.
    pub policy: RolloutPolicy,
    /// State.
    pub state: RolloutState,
    /// Counters.
    pub stats: RolloutStats,
    /// Current ramp percentage.
    pub current_percent: f64,
    /// When created.
    pub created_at: Timestamp,
}

/// `PATCH /api/v1/rollouts/{id}`: replace the policy (change the ramp or the
/// caps). The rollout keeps its current step (the last one if the new ramp
/// has fewer steps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRollout {
    /// The new policy.
    pub policy: RolloutPolicy,
}

/// `POST /api/v1/rollouts/{id}/actions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutActionRequest {
    /// pause, resume, abort or revert.
    pub action: Action,
}

/// A node as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// Node id.
    pub id: String,
    /// Channel.
    pub channel: String,
    /// Group.
    pub group: String,
    /// Board.
    pub board: String,
    /// Booted version.
    pub version: String,
    /// Booted slot.
    pub slot: String,
    /// Agent state.
    pub state: String,
    /// Last check-in.
    pub last_seen: Timestamp,
    /// First check-in.
    pub registered_at: Timestamp,
    /// Host name the node reported (free text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Version in the other slot, as last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_version: Option<String>,
}

/// Query of `GET /api/v1/nodes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeQuery {
    /// Only this channel.
    pub channel: Option<String>,
    /// Only this group.
    pub group: Option<String>,
    /// Only this booted version.
    pub version: Option<String>,
    /// Only this agent state.
    pub state: Option<String>,
    /// Only nodes not seen for at least this many seconds.
    pub stale_secs: Option<u64>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Continue after this node id.
    pub after: Option<String>,
}

/// `POST /api/v1/nodes/prune`: forget nodes not seen for `stale_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneNodes {
    /// Age in seconds.
    pub stale_secs: u64,
}

/// Answer of a prune.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneResult {
    /// Nodes removed.
    pub removed: u64,
}

/// `POST /api/v1/holds`. (Flattened, so unknown fields cannot be refused.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateHold {
    /// Group or node.
    pub target: HoldTarget,
    /// Hold or pin.
    #[serde(flatten)]
    pub kind: HoldKind,
    /// Until when.
    pub until: Timestamp,
}

/// A hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldView {
    /// Id.
    pub id: i64,
    /// Group or node.
    pub target: HoldTarget,
    /// Hold or pin.
    #[serde(flatten)]
    pub kind: HoldKind,
    /// Until when.
    pub until: Timestamp,
}

/// One FleetLock slot holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Node id.
    pub node_id: String,
    /// When it took the slot.
    pub acquired_at: Timestamp,
    /// When the lease runs out.
    pub expires_at: Timestamp,
}

/// `GET /api/v1/fleetlock/{group}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetLockView {
    /// Group.
    pub group: String,
    /// Slots.
    pub slots: u32,
    /// Lease length, seconds.
    pub lease_secs: u64,
    /// Current (unexpired) holders.
    pub holders: Vec<LockHolder>,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Id (increasing).
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// Who: the token's name, or `system` for automatic changes.
    pub actor: String,
    /// What, e.g. `rollout.create`, `rollout.pause`, `group.update`.
    pub action: String,
    /// What it changed, e.g. `rollout/3`, `group/db`.
    pub subject: String,
    /// The object before (absent on create).
    pub before: Option<serde_json::Value>,
    /// The object after (absent on delete).
    pub after: Option<serde_json::Value>,
}
