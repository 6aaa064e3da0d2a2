//! `image-tools repo refresh`: new snapshot and timestamp versions over the
//! unchanged targets metadata, signed with the online keys only, so that a
//! repository stays fresh between releases (run it from a timer well within
//! the timestamp expiry). Works on expired metadata too: that is its job.

use std::fmt;

use crate::cli::RepoRefreshArgs;
use crate::keys::KeyRing;
use crate::repo::{self, Publication, RepoError, RepoPaths};

/// What `refresh` signed.
#[derive(Debug)]
pub struct RefreshReport {
    snapshot_version: u64,
    timestamp_version: u64,
    timestamp_expires: String,
}

impl fmt::Display for RefreshReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "snapshot version {}, timestamp version {} (expires {})",
            self.snapshot_version, self.timestamp_version, self.timestamp_expires
        )
    }
}

/// Runs `repo refresh`.
pub fn run(args: &RepoRefreshArgs) -> Result<RefreshReport, RepoError> {
    let paths = RepoPaths::new(&args.repo);
    let keys = KeyRing::load(&args.keys)?;
    let loaded = repo::load(&paths)?;
    let (snapshot, timestamp) = repo::sign_online(
        Some(&loaded.snapshot.signed),
        Some(&loaded.timestamp.signed),
        &loaded.targets_bytes,
        loaded.targets.signed.version,
        &loaded.root.signed,
        &keys,
        &args.online_expiry,
    )?;
    let report = RefreshReport {
        snapshot_version: snapshot.signed().signed.version.get(),
        timestamp_version: timestamp.signed().signed.version.get(),
        timestamp_expires: timestamp.signed().signed.expires.to_string(),
    };
    Publication {
        versioned: vec![(
            format!("{}.snapshot.json", report.snapshot_version),
            snapshot.buffer().clone(),
        )],
        timestamp: timestamp.buffer().clone(),
        ..Publication::default()
    }
    .write(&paths)?;
    repo::self_check(&paths)?;
    Ok(report)
}
