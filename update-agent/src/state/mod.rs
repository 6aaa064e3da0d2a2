//! The agent's state: one enum with checked transitions ([`machine`]),
//! persisted in the state directory ([`store`]) and owned by one
//! [`keeper::StateKeeper`], so that a restarted agent knows whether it was
//! idle, half-way through an install, waiting to reboot into a staged
//! update, or on trial; [`assess`] reads what the last boot did with it
//! (used by the daemon at start and by `update-agent install`).

pub mod assess;
pub mod keeper;
pub mod machine;
pub mod store;

pub use keeper::{KeeperError, StateKeeper};
pub use machine::{
    Action, AgentState, Event, LockRefusal, Phase, RebootWait, Rescue, Staged, StateError, Trial,
    TrialFailure, Waiting,
};
