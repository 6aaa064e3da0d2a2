//! Pure rollout maths for the Moho update server (DESIGN §6), and the
//! calendar windows the node agent reuses for its reboot windows.
//!
//! No I/O, no async, no clock reads: `now`, node ids and counters are
//! arguments, so every decision can be replayed with a virtual clock.
//!
//! - [`window`]: weekly calendar windows in IANA time zones, DST-correct.
//! - [`line`]: a node's place in line (hash of node id and release) and the
//!   exact ramp cutoff.
//! - [`policy`]: ramp steps, caps, windows, auto-pause, health gate.
//! - [`state`]: rollout lifecycle, counters and operator actions.
//! - [`advance`]: auto-pause and ramp advancement over time.
//! - [`decide`]: install / revert / wait for one node and one rollout.
//! - [`offer`]: what a node is offered over every rollout of its scope.
//! - [`holds`]: holds and pins on groups and nodes.
//! - [`version`]: semantic version comparison.

pub mod advance;
pub mod decide;
pub mod holds;
pub mod line;
pub mod offer;
pub mod policy;
pub mod state;
pub mod version;
pub mod window;

pub use advance::{TickEvent, tick};
pub use decide::{
    Attempt, InFlightPhase, NodeDecision, NodeFacts, RolloutView, VersionRelation, WaitReason,
    Withdrawal, decide, withdrawn,
};
pub use holds::{Hold, HoldKind, HoldTarget, effective_hold};
pub use line::{Cutoff, LineIndex, Share, place_in_line};
pub use offer::{Candidate, NodeInfo, Offer, OfferFacts, ReleaseFacts, WaitWhy, choose};
pub use policy::RolloutPolicy;
pub use state::{Action, PauseReason, RolloutState, RolloutStats, RolloutStatus, apply_action};
pub use window::{Window, WindowSpec, WindowState, Windows};
