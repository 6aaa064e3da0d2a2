//! `image-tools repo promote`: sign a published version for one more
//! channel (a re-signing of targets; the bytes stay as they are).

use moho_repo::{KeyRing, Promoted, RepoDir, RepoError};

use crate::cli::RepoPromoteArgs;
use crate::repo::{expiries, now};

/// Runs `repo promote`.
pub fn run(args: &RepoPromoteArgs) -> Result<Promoted, RepoError> {
    moho_repo::add::check_channel(&args.channel)?;
    let dir = RepoDir::new(&args.repo);
    let keys = KeyRing::load(&args.keys)?;
    let current = dir.load()?;
    let now = now();
    let (publication, report) = moho_repo::promote(
        &current,
        &args.version,
        args.board.as_deref(),
        &args.channel,
        &keys,
        &expiries(None, Some(&args.targets_expiry), Some(&args.online_expiry)),
        now,
    )?;
    dir.publish(&publication, now)?;
    Ok(report)
}
