//! The wire protocol between Moho nodes, operators and the update server:
//! JSON types and the node request-signing scheme. Shared by the server and
//! the node agent; free of server internals. The prose version is
//! `docs/protocol.md`.
//!
//! - [`names`]: what node ids, channel and group names may look like.
//! - [`node`]: check-in and its answer, event reports.
//! - [`signing`]: how nodes sign requests (ed25519) and how replays are refused.
//! - [`fleetlock`]: the FleetLock reboot-coordination bodies.
//! - [`admin`]: admin API request and response bodies.
//! - [`error`]: the JSON error body every 4xx/5xx carries.

pub mod admin;
pub mod error;
pub mod fleetlock;
pub mod names;
pub mod node;
pub mod secret;
pub mod signing;

pub use error::{ApiError, ErrorBody};
pub use node::{
    AgentState, BootedImage, CheckIn, CheckInResponse, Event, EventKind, EventReport, NodeAction,
    WaitCode,
};
pub use signing::{RequestSignature, SigningError};
