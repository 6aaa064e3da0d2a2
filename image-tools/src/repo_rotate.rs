//! `image-tools repo rotate`: root version N+1 trusting new keys, signed by
//! a threshold of the current and of the new root keys (see
//! `moho_repo::rotate`).

use moho_repo::{KeyRing, NewThresholds, RepoDir, RepoError, Rotated};

use crate::cli::RepoRotateArgs;
use crate::repo::{expiries, now};

/// Runs `repo rotate`.
pub fn run(args: &RepoRotateArgs) -> Result<Rotated, RepoError> {
    let dir = RepoDir::new(&args.repo);
    let old_keys = KeyRing::load(&args.keys)?;
    let new_keys = KeyRing::load(&args.new_keys)?;
    let current = dir.load()?;
    let now = now();
    let (publication, report) = moho_repo::rotate(
        &current,
        old_keys,
        new_keys,
        NewThresholds {
            root: args.root_threshold,
            targets: args.targets_threshold,
        },
        &expiries(
            Some(&args.root_expiry),
            Some(&args.targets_expiry),
            Some(&args.online_expiry),
        ),
        now,
    )?;
    dir.publish(&publication, now)?;
    Ok(report)
}
