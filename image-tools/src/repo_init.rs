//! `image-tools repo init`: an empty repository whose version-1 root trusts
//! the keys of a keys directory (by file name: `root-*`, `targets-*`,
//! `snapshot-*`, `timestamp-*`), with consistent snapshots.

use std::fmt;
use std::path::PathBuf;

use moho_repo::{Initialized, KeyRing, RepoDir, RepoError, Thresholds};

use crate::cli::RepoInitArgs;
use crate::repo::{expiries, now};

/// What `init` made.
#[derive(Debug)]
pub struct InitReport {
    repo: PathBuf,
    made: Initialized,
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "initialized {}: {}; nodes trust {}",
            self.repo.display(),
            self.made,
            self.repo.join("metadata/1.root.json").display()
        )
    }
}

/// Runs `repo init`.
pub fn run(args: &RepoInitArgs) -> Result<InitReport, RepoError> {
    let dir = RepoDir::new(&args.repo);
    if dir.metadata().exists() {
        // Before reading any key.
        return Err(RepoError::AlreadyInitialized {
            path: args.repo.clone(),
        });
    }
    let keys = KeyRing::load(&args.keys)?;
    let now = now();
    let (publication, made) = moho_repo::init(
        &keys,
        Thresholds {
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
    dir.initialize(&publication, now)?;
    Ok(InitReport {
        repo: args.repo.clone(),
        made,
    })
}
