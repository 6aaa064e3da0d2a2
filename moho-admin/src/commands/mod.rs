//! One module per resource of the admin API; each owns its arguments (a
//! clap `Subcommand`) and turns them into API calls and a [`Report`].
//!
//! - [`channels`], [`groups`]: the fleet's channels and node groups.
//! - [`releases`]: releases synced from the signed repository.
//! - [`rollouts`]: create with a policy, pause, resume, abort, revert,
//!   change the policy (policy flags in [`policy_args`]).
//! - [`holds`]: holds and pins of groups and nodes.
//! - [`nodes`]: list with filters, show, delete, prune.
//! - [`fleetlock`]: reboot slot holders; free a slot.
//! - [`tokens`]: admin and viewer tokens; `whoami`.
//! - [`enrollment`]: enrolment tokens per group.
//! - [`audit`]: the audit log.
//! - [`events`]: the fleet-wide event stream, `--follow` to watch it.

pub mod audit;
pub mod channels;
pub mod enrollment;
pub mod events;
pub mod fleetlock;
pub mod groups;
pub mod holds;
pub mod nodes;
pub mod policy_args;
pub mod releases;
pub mod rollouts;
pub mod tokens;

use jiff::Timestamp;

use crate::client::Api;
use crate::error::CliError;

pub use crate::output::Report;

/// What every command gets: the API and the time (for `--for 7d`).
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The admin API.
    pub api: Api<'a>,
    /// Now, by the local clock.
    pub now: Timestamp,
}

/// A name that fails the protocol's rules is refused before anything is
/// sent (exit code 2).
pub fn checked<E: std::fmt::Display>(r: Result<(), E>) -> Result<(), CliError> {
    r.map_err(|e| CliError::Usage(e.to_string()))
}

/// A time `d` from `now` (for `--for`, `--expires-in`).
pub fn after(now: Timestamp, d: std::time::Duration, flag: &str) -> Result<Timestamp, CliError> {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .ok_or_else(|| CliError::Usage(format!("{flag}: {d:?} is too long")))
}
