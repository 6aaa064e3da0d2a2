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
    /// Moho image (signed in the TUF repository) or Flatcar payload
    /// (signed by Flatcar's key, outside Moho's TUF chain).
    #[serde(default)]
    pub kind: ReleaseKind,
    /// A Flatcar release's payloads, as offered over Omaha.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flatcar: Option<FlatcarPayloads>,
}

/// What kind of release, and so who signed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseKind {
    /// A Moho slot image: a target of the signed TUF repository, installed
    /// by `update-agent` after verifying it.
    #[default]
    Moho,
    /// A Flatcar Container Linux payload, offered to Flatcar's
    /// `update_engine` over Omaha. Its signature is Flatcar's (checked by
    /// `update_engine` against the key in the node's image); Moho's TUF
    /// chain does not cover it.
    Flatcar,
}

impl ReleaseKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseKind::Moho => "moho",
            ReleaseKind::Flatcar => "flatcar",
        }
    }
    /// From the stored name (unknown names read as Moho).
    pub fn parse(s: &str) -> ReleaseKind {
        if s == "flatcar" {
            ReleaseKind::Flatcar
        } else {
            ReleaseKind::Moho
        }
    }
}

/// One file of a Flatcar release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatcarPackage {
    /// File name under the release's URL, e.g. `flatcar_production_update.gz`.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, 64 hex digits.
    pub sha256: String,
    /// SHA-1, 40 hex digits, if known (sent as Omaha's `hash`, which older
    /// clients require).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
}

/// Where a Flatcar release's payloads are and what they hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatcarPayloads {
    /// Base URL of the release's files (Flatcar's release server or a
    /// mirror), e.g. `https://update.release.flatcar-linux.net/amd64-usr/3815.2.1/`.
    pub url: String,
    /// The OS update payload.
    pub payload: FlatcarPackage,
    /// Extra files the post-install step fetches (OEM and Flatcar system
    /// extensions, e.g. `oem-azure.gz`).
    #[serde(default)]
    pub extra: Vec<FlatcarPackage>,
}

/// `POST /api/v1/releases/flatcar`: register a Flatcar release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateFlatcarRelease {
    /// Flatcar version, e.g. `3815.2.1`.
    pub version: String,
    /// Flatcar board: `amd64-usr` or `arm64-usr`.
    pub board: String,
    /// Channels it may be rolled out to.
    pub channels: Vec<String>,
    /// Base URL of the release's files (Flatcar's release server or a
    /// mirror).
    pub url: String,
    /// The OS update payload.
    pub payload: FlatcarPackage,
    /// Extra files the post-install step fetches.
    #[serde(default)]
    pub extra: Vec<FlatcarPackage>,
}

impl CreateFlatcarRelease {
    /// Its files as stored and offered.
    pub fn payloads(&self) -> FlatcarPayloads {
        FlatcarPayloads {
            url: self.url.clone(),
            payload: self.payload.clone(),
            extra: self.extra.clone(),
        }
    }
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
    /// Which updater the node runs.
    #[serde(default)]
    pub kind: NodeKind,
    /// What a Flatcar node's `update_engine` said about itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omaha: Option<OmahaClient>,
}

/// What a Flatcar node tells about itself in its Omaha requests (each value
/// bounded and checked by the server before it is stored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OmahaClient {
    /// Omaha application id, lower case without braces.
    pub app_id: String,
    /// The track it asked for (`GROUP=` of `/etc/flatcar/update.conf`).
    pub track: String,
    /// OEM id (`qemu`, `azure`, ...), if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oem: Option<String>,
    /// OEM version, if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oem_version: Option<String>,
    /// The client and its version (`update_engine-0.4.10`), if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updater: Option<String>,
}

/// Which updater a node runs, and so how far its reports can be trusted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// `update-agent`: reports signed with the node's key.
    #[default]
    Moho,
    /// Flatcar's `update_engine` over Omaha: unsigned reports.
    Flatcar,
}

impl NodeKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Moho => "moho",
            NodeKind::Flatcar => "flatcar",
        }
    }
    /// From the stored name (unknown names read as Moho).
    pub fn parse(s: &str) -> NodeKind {
        if s == "flatcar" {
            NodeKind::Flatcar
        } else {
            NodeKind::Moho
        }
    }
    /// The kind of release this node installs.
    pub fn release_kind(self) -> ReleaseKind {
        match self {
            NodeKind::Moho => ReleaseKind::Moho,
            NodeKind::Flatcar => ReleaseKind::Flatcar,
        }
    }
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
    /// Only nodes running this updater.
    pub kind: Option<NodeKind>,
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
    /// The updater of the node with this id, if the server knows it (a
    /// stock FleetLock client the server never saw otherwise: `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<NodeKind>,
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

/// `POST /api/v1/tokens`: a new admin or viewer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Unique among live tokens; the audit log's actor (see
    /// [`crate::names::check_token_name`]).
    pub name: String,
    /// admin or viewer.
    pub role: Role,
    /// When it stops working (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// An admin or viewer token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    /// Public id: the first 16 hex digits of the secret's SHA-256.
    pub id: String,
    /// Name (the audit log's actor).
    pub name: String,
    /// Role.
    pub role: Role,
    /// When created.
    pub created_at: Timestamp,
    /// When it stops working (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// When it was revoked (absent: not revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// When it was last used (to the minute; absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

impl TokenView {
    /// Whether the token is accepted at `now`: neither revoked nor expired.
    pub fn is_live(&self, now: Timestamp) -> bool {
        crate::secret::NamedSecret::standing(self, now).is_live()
    }
}

/// Answer of `POST /api/v1/tokens`: the secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The bearer secret.
    pub secret: String,
    /// The token.
    pub token: TokenView,
}

/// Query of `GET /api/v1/tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    /// Also list revoked and expired tokens.
    #[serde(default)]
    pub all: bool,
}

/// `POST /api/v1/enrollment-tokens`: a token that lets new nodes register
/// in one group (and, if given, one channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollmentToken {
    /// Unique among live enrolment tokens (the rules of
    /// [`crate::names::check_token_name`]).
    pub name: String,
    /// The group a node registering with it lands in.
    pub group: String,
    /// The channel it must name (absent: any channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// When it stops working (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// How many nodes may register with it (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u64>,
}

/// An enrolment token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentTokenView {
    /// Public id: the first 16 hex digits of the secret's SHA-256.
    pub id: String,
    /// Name.
    pub name: String,
    /// The group its nodes land in.
    pub group: String,
    /// The channel its nodes must name (absent: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// When created.
    pub created_at: Timestamp,
    /// When it stops working (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// How many nodes may register with it (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u64>,
    /// How many nodes registered with it.
    pub uses: u64,
    /// When it was revoked (absent: not revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// When a node last registered with it (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<Timestamp>,
}

impl EnrollmentTokenView {
    /// Whether a node may register with it at `now`: not revoked, not
    /// expired, not used up.
    pub fn is_live(&self, now: Timestamp) -> bool {
        crate::secret::NamedSecret::standing(self, now).is_live()
    }
}

/// Answer of `POST /api/v1/enrollment-tokens`: the secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedEnrollmentToken {
    /// The secret a node's provision document carries as
    /// `server.enrollment_token`.
    pub secret: String,
    /// The token.
    pub token: EnrollmentTokenView,
}

/// How serious a node event is (for filters and colours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Progress: download, install, reboot, healthy.
    Info,
    /// Something an operator may want to look at: a cancelled update.
    Warning,
    /// A failure: an error report, a rollback.
    Error,
}

impl Severity {
    /// Event types that are failures.
    pub const ERROR_KINDS: &'static [&'static str] = &["error", "rollback", "trial_failed"];
    /// Event types starting with this are warnings (`cancelled`, ...).
    pub const WARNING_PREFIX: &'static str = "cancel";

    /// The severity of an event of type `kind` (the wire name, e.g.
    /// `rollback`); a type this version does not know is `info`.
    pub fn of(kind: &str) -> Severity {
        if Self::ERROR_KINDS.contains(&kind) {
            Severity::Error
        } else if kind.starts_with(Self::WARNING_PREFIX) {
            Severity::Warning
        } else {
            Severity::Info
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Error]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A node event as the server stored it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    /// Id (increasing in the order the server received events).
    pub id: i64,
    /// Node id.
    pub node_id: String,
    /// When it happened (node clock).
    pub at: Timestamp,
    /// When the server received it.
    pub received_at: Timestamp,
    /// Event type (`download_started`, `installed`, `rollback`, `error`, ...).
    pub kind: String,
    /// Its severity.
    pub severity: Severity,
    /// Release version concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The node's channel (now, not when the event happened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The node's group (now, not when the event happened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The event as the node sent it.
    pub event: serde_json::Value,
}

/// Query of `GET /api/v1/nodes/{id}/events`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEventQuery {
    /// Most events (default 50, at most 1000).
    pub limit: Option<u32>,
    /// Only events with ids below this one (the next page).
    pub before: Option<i64>,
}

/// Query of `GET /api/v1/audit` (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Most entries (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Only entries with ids below this one (the next page).
    pub before: Option<i64>,
    /// Only this actor (a token name, `system` or `local`).
    pub actor: Option<String>,
    /// Only this action (`rollout.pause`), or a family of them ending in a
    /// dot (`rollout.`).
    pub action: Option<String>,
    /// Only this subject (`rollout/3`, `group/db`, `token/<id>`).
    pub subject: Option<String>,
}

/// Query of `GET /api/v1/events`: the fleet-wide event stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventStreamQuery {
    /// Only events after this id (the `last_id` of the previous answer);
    /// absent: the newest events.
    pub after: Option<i64>,
    /// Most events (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Only events at least this severe.
    pub severity: Option<Severity>,
    /// Only this event type.
    pub kind: Option<String>,
    /// Only nodes of this channel.
    pub channel: Option<String>,
    /// Only nodes of this group.
    pub group: Option<String>,
    /// Only this node.
    pub node: Option<String>,
}

/// Answer of `GET /api/v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// Matching events, newest first.
    pub items: Vec<EventView>,
    /// The newest event id when the server read: ask with `after` set to it
    /// for what comes next.
    pub last_id: i64,
    /// Whether matching events may have been left out (more than `limit`
    /// matched, or older events lay beyond the server's look-back window).
    pub truncated: bool,
}
