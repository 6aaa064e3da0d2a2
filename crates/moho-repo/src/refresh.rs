//! Refreshing the online roles: new snapshot and timestamp versions over the
//! unchanged targets metadata, signed with the snapshot and timestamp keys
//! only, so that a repository stays fresh between releases. Works on
//! expired online metadata too: that is its job. The update server runs it
//! before expiry when it holds the online keys; `image-tools repo refresh`
//! runs it from a timer.

use std::fmt;
use std::time::SystemTime;

use crate::current::Current;
use crate::error::RepoError;
use crate::keys::KeyRing;
use crate::publication::Publication;
use crate::sign::{self, Expiries, Previous};

/// What `refresh` signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    /// The new snapshot version.
    pub snapshot_version: u64,
    /// The new timestamp version.
    pub timestamp_version: u64,
    /// When the new timestamp expires.
    pub timestamp_expires: jiff::Timestamp,
}

impl fmt::Display for Refreshed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "snapshot version {}, timestamp version {} (expires {})",
            self.snapshot_version, self.timestamp_version, self.timestamp_expires
        )
    }
}

/// Re-signs snapshot and timestamp of `current` with `keys` (the online
/// keys suffice), expiring relative to `now`.
pub fn refresh(
    current: &Current,
    keys: &KeyRing,
    expiries: &Expiries,
    now: SystemTime,
) -> Result<(Publication, Refreshed), RepoError> {
    let root = &current.root().signed;
    let (snapshot, timestamp) = sign::sign_online(
        Previous {
            snapshot: Some(&current.snapshot().signed),
            timestamp: Some(&current.timestamp().signed),
        },
        current.targets_meta().clone(),
        root,
        keys,
        expiries,
        now,
    )?;
    let report = Refreshed {
        snapshot_version: snapshot.signed().signed.version.get(),
        timestamp_version: timestamp.signed().signed.version.get(),
        timestamp_expires: timestamp.signed().signed.expires,
    };
    let publication = Publication {
        targets: Vec::new(),
        versioned: vec![(
            format!("{}.snapshot.json", report.snapshot_version),
            snapshot.buffer().clone(),
        )],
        timestamp: timestamp.buffer().clone(),
    };
    Ok((publication, report))
}
