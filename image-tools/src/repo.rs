//! The glue between the `repo` commands and the repository library
//! (`moho-repo`): where the clock is read, and how a command's arguments
//! become the library's expiries.
//!
//! Every command loads the repository (`RepoDir::load`: the nodes' own
//! checks, expiry aside), computes and signs all new metadata in memory,
//! loads the result as a node would (`Publication::verify`) and only then
//! writes: target files first, then new versioned metadata (never
//! overwriting), and `timestamp.json` last by atomic rename; finally it
//! re-reads what was written. A refusal writes nothing.

use std::time::SystemTime;

use moho_repo::Expiries;

use crate::cli::{OnlineExpiry, RootExpiry, TargetsExpiry};

/// The time a command signs at (the only clock read of the `repo` commands).
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// The library's expiries from the command's expiry flags; roles the
/// command does not sign keep the defaults (unused).
pub fn expiries(
    root: Option<&RootExpiry>,
    targets: Option<&TargetsExpiry>,
    online: Option<&OnlineExpiry>,
) -> Expiries {
    let mut e = Expiries::default();
    if let Some(r) = root {
        e.root = r.root_expires;
    }
    if let Some(t) = targets {
        e.targets = t.targets_expires;
    }
    if let Some(o) = online {
        e.snapshot = o.snapshot_expires;
        e.timestamp = o.timestamp_expires;
    }
    e
}
