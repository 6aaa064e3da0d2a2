//! FleetLock bodies (the protocol Zincati and airlock speak): requests to
//! `POST /v1/pre-reboot` and `POST /v1/steady-state` carry the header
//! `fleet-lock-protocol: true` and `{"client_params": {"id": ..., "group": ...}}`;
//! refusals carry `{"kind": ..., "value": ...}`.

use serde::{Deserialize, Serialize};

/// Path of the request for a reboot slot.
pub const PRE_REBOOT_PATH: &str = "/v1/pre-reboot";
/// Path of the release of a reboot slot.
pub const STEADY_STATE_PATH: &str = "/v1/steady-state";

/// The header every FleetLock request carries, with value `true`.
pub const PROTOCOL_HEADER: &str = "fleet-lock-protocol";

/// The node's identity in a FleetLock request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientParams {
    /// Node id.
    pub id: String,
    /// Reboot group (a semaphore per group).
    pub group: String,
}

/// Body of both FleetLock requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetLockRequest {
    /// Who asks.
    pub client_params: ClientParams,
}

/// Body of a FleetLock refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetLockError {
    /// Machine-readable kind, e.g. `failed_lock`, `bad_request`.
    pub kind: String,
    /// Explanation.
    pub value: String,
}
