//! `image-tools repo refresh`: new snapshot and timestamp versions over the
//! unchanged targets metadata, signed with the online keys only, so that a
//! repository stays fresh between releases (run it from a timer well within
//! the timestamp expiry). Works on expired online metadata too: that is its job.

use moho_repo::{KeyRing, Refreshed, RepoDir, RepoError};

use crate::cli::RepoRefreshArgs;
use crate::repo::{expiries, now};

/// Runs `repo refresh`.
pub fn run(args: &RepoRefreshArgs) -> Result<Refreshed, RepoError> {
    let dir = RepoDir::new(&args.repo);
    let keys = KeyRing::load(&args.keys)?;
    let current = dir.load()?;
    let now = now();
    let (publication, report) = moho_repo::refresh(
        &current,
        &keys,
        &expiries(None, None, Some(&args.online_expiry)),
        now,
    )?;
    dir.publish(&publication, now)?;
    Ok(report)
}
