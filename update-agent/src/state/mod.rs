//! The agent's state: one enum with checked transitions ([`machine`]),
//! persisted in the state directory ([`store`]) so that a restarted agent
//! knows whether it was idle, half-way through an install, or waiting to
//! reboot into a staged update.

pub mod machine;
pub mod store;

pub use machine::{Action, AgentState, Event, Phase, Staged, StateError};
