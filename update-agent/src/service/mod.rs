//! The service layer: the agent's operations on the node, built from the
//! external systems their caller hands in (the disk handle, the repository
//! transport, the time) and never opening any of their own. The CLI
//! adapters (`*_cmd`) and the daemon both call them.
//!
//! - [`disk`]: the node's disk, opened once (slot table + slot bytes).
//! - [`slots`]: reading and changing the slot table.
//! - [`install`]: DESIGN §3 steps 1–7, each step handed to the state's owner.

pub mod disk;
pub mod install;
pub mod slots;
