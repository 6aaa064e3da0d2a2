//! The install path's parts (DESIGN §3 steps 1–7); the steps themselves
//! are run by [`crate::service::install`], which the daemon and the
//! `install` CLI adapter both call.
//!
//! - [`choose`]: which release to install (pure).
//! - [`plan`]: where each chunk comes from (pure).
//! - [`local_map`]: chunks the booted slot already holds.
//! - [`stream`]: download/copy, verify, write, chunk by chunk.
//! - [`readback`]: the whole-image check after the flush.
//! - [`slot_io`]: aligned direct I/O on a slot.
//! - [`journal`]: what is being installed, for resuming after a crash.
//! - [`progress`]: progress bar or log lines.
//! - [`error`]: refusals and failures.

pub mod choose;
pub mod error;
pub mod journal;
pub mod local_map;
pub mod plan;
pub mod progress;
pub mod readback;
pub mod slot_io;
pub mod stream;

pub use choose::InstallRequest;
pub use error::{InstallError, Refusal};
