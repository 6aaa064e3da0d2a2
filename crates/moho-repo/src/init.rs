//! A new repository: root version 1 trusting the keys of a key ring (roles
//! from the file names), consistent snapshots, empty targets, and the first
//! snapshot and timestamp.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU64;
use std::time::SystemTime;

use tough::schema::{RoleKeys, RoleType, Root, Targets};

use crate::error::RepoError;
use crate::keys::KeyRing;
use crate::publication::Publication;
use crate::sign::{self, Expiries, Previous, SPEC_VERSION, expires_at, metafile};

/// Signatures each offline role needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Root.
    pub root: u64,
    /// Targets.
    pub targets: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            root: 1,
            targets: 1,
        }
    }
}

/// What `init` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initialized {
    /// Root keys trusted.
    pub root_keys: usize,
    /// Root signatures required.
    pub root_threshold: u64,
}

impl fmt::Display for Initialized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "root version 1 ({} of {} root keys), empty targets",
            self.root_threshold, self.root_keys
        )
    }
}

/// A root of `version` naming the keys of `keys` for each role (by file name).
pub(crate) fn root_for(
    keys: &KeyRing,
    version: NonZeroU64,
    thresholds: [(RoleType, u64); 4],
    expires: jiff::Timestamp,
) -> Result<Root, RepoError> {
    let mut root = Root {
        spec_version: SPEC_VERSION.to_owned(),
        consistent_snapshot: true,
        version,
        expires,
        keys: HashMap::new(),
        roles: HashMap::new(),
        _extra: HashMap::new(),
    };
    for (role, threshold) in thresholds {
        let role_keys = keys.for_role(role)?;
        if threshold > role_keys.len() as u64 {
            return Err(RepoError::BadThreshold {
                role,
                threshold,
                keys: role_keys.len(),
            });
        }
        let mut keyids = Vec::new();
        for k in role_keys {
            root.keys.insert(k.key_id(), k.public().clone());
            keyids.push(k.key_id());
        }
        root.roles.insert(
            role,
            RoleKeys {
                keyids,
                threshold: NonZeroU64::new(threshold).unwrap_or(NonZeroU64::MIN),
                _extra: HashMap::new(),
            },
        );
    }
    Ok(root)
}

/// Signs a new, empty repository.
pub fn init(
    keys: &KeyRing,
    thresholds: Thresholds,
    expiries: &Expiries,
    now: SystemTime,
) -> Result<(Publication, Initialized), RepoError> {
    let one = NonZeroU64::MIN;
    let root = root_for(
        keys,
        one,
        [
            (RoleType::Root, thresholds.root),
            (RoleType::Targets, thresholds.targets),
            (RoleType::Snapshot, 1),
            (RoleType::Timestamp, 1),
        ],
        expires_at(now, expiries.root),
    )?;
    let root_keys = root.roles[&RoleType::Root].keyids.len();
    let signed_root = sign::sign(root.clone(), &root, keys)?;
    let mut targets = Targets::new(
        SPEC_VERSION.to_owned(),
        one,
        expires_at(now, expiries.targets),
    );
    targets.delegations = None;
    let signed_targets = sign::sign(targets, &root, keys)?;
    let (snapshot, timestamp) = sign::sign_online(
        Previous::default(),
        metafile(signed_targets.buffer(), one),
        &root,
        keys,
        expiries,
        now,
    )?;
    let publication = Publication {
        targets: Vec::new(),
        versioned: vec![
            ("1.root.json".to_owned(), signed_root.buffer().clone()),
            ("1.targets.json".to_owned(), signed_targets.buffer().clone()),
            ("1.snapshot.json".to_owned(), snapshot.buffer().clone()),
        ],
        timestamp: timestamp.buffer().clone(),
    };
    Ok((
        publication,
        Initialized {
            root_keys,
            root_threshold: thresholds.root,
        },
    ))
}
