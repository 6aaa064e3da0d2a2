//! Rotating keys: root version N+1 trusting new keys.
//!
//! Each role with keys in the new key ring (by file name) gets exactly those
//! keys; the others keep theirs. The new root is signed by a threshold of the
//! *current* root keys and by a threshold of its *own* root keys, so a node
//! holding root N can follow to N+1 (TUF §5.3.4); then targets, snapshot and
//! timestamp are re-signed with the keys the new root names.

use std::fmt;
use std::num::NonZeroU64;
use std::time::SystemTime;

use tough::schema::{RoleType, Root};

use crate::current::Current;
use crate::error::RepoError;
use crate::keys::KeyRing;
use crate::publication::Publication;
use crate::sign::{self, Expiries, Previous, expires_at, metafile, next_version};

/// Thresholds to change with the rotation (`None`: unchanged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewThresholds {
    /// Root signatures required from now on.
    pub root: Option<u64>,
    /// Targets signatures required from now on.
    pub targets: Option<u64>,
}

/// What `rotate` published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The new root version.
    pub root_version: u64,
    /// The roles that got new keys.
    pub rotated: Vec<RoleType>,
}

impl fmt::Display for Rotated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roles: Vec<String> = self.rotated.iter().map(ToString::to_string).collect();
        write!(
            f,
            "root version {} published; new keys for: {}",
            self.root_version,
            if roles.is_empty() {
                "none (thresholds only)".to_owned()
            } else {
                roles.join(", ")
            }
        )
    }
}

fn new_root(
    old: &Root,
    new_keys: &KeyRing,
    thresholds: NewThresholds,
    expires: jiff::Timestamp,
) -> Result<(Root, Vec<RoleType>), RepoError> {
    let mut root = old.clone();
    root.version = next_version(old.version);
    root.expires = expires;
    let mut rotated = Vec::new();
    for role in [
        RoleType::Root,
        RoleType::Targets,
        RoleType::Snapshot,
        RoleType::Timestamp,
    ] {
        let Some(role_keys) = root.roles.get_mut(&role) else {
            continue;
        };
        if new_keys.has_role(role) {
            role_keys.keyids = new_keys
                .for_role(role)?
                .iter()
                .map(|k| k.key_id())
                .collect();
            for k in new_keys.for_role(role)? {
                root.keys.insert(k.key_id(), k.public().clone());
            }
            rotated.push(role);
        }
        let wanted = match role {
            RoleType::Root => thresholds.root,
            RoleType::Targets => thresholds.targets,
            _ => None,
        };
        let threshold = wanted.unwrap_or(role_keys.threshold.get());
        if threshold > role_keys.keyids.len() as u64 {
            return Err(RepoError::BadThreshold {
                role,
                threshold,
                keys: role_keys.keyids.len(),
            });
        }
        role_keys.threshold = NonZeroU64::new(threshold).unwrap_or(NonZeroU64::MIN);
    }
    // Keep only the keys some role still uses.
    let used: Vec<_> = root
        .roles
        .values()
        .flat_map(|r| r.keyids.iter().cloned())
        .collect();
    root.keys.retain(|id, _| used.contains(id));
    Ok((root, rotated))
}

/// Publishes root N+1 trusting `new_keys`, signed with `old_keys` (a
/// threshold of the current root keys) and `new_keys`.
pub fn rotate(
    current: &Current,
    old_keys: KeyRing,
    new_keys: KeyRing,
    thresholds: NewThresholds,
    expiries: &Expiries,
    now: SystemTime,
) -> Result<(Publication, Rotated), RepoError> {
    let old_root = &current.root().signed;
    let (root, rotated) = new_root(
        old_root,
        &new_keys,
        thresholds,
        expires_at(now, expiries.root),
    )?;
    let keys = KeyRing::merged(new_keys, old_keys);
    let by_old = sign::sign(root.clone(), old_root, &keys)?;
    let by_new = sign::sign(root.clone(), &root, &keys)?;
    let signed_root = by_new
        .add_old_signatures(by_old.signed().signatures.clone())
        .map_err(|source| RepoError::Sign {
            role: RoleType::Root,
            source: Box::new(source),
        })?;
    let mut targets = current.targets().signed.clone();
    targets.version = next_version(targets.version);
    targets.expires = expires_at(now, expiries.targets);
    let targets_version = targets.version;
    let signed_targets = sign::sign(targets, &root, &keys)?;
    let (snapshot, timestamp) = sign::sign_online(
        Previous {
            snapshot: Some(&current.snapshot().signed),
            timestamp: Some(&current.timestamp().signed),
        },
        metafile(signed_targets.buffer(), targets_version),
        &root,
        &keys,
        expiries,
        now,
    )?;
    let publication = Publication {
        targets: Vec::new(),
        versioned: vec![
            (
                format!("{}.root.json", root.version),
                signed_root.buffer().clone(),
            ),
            (
                format!("{targets_version}.targets.json"),
                signed_targets.buffer().clone(),
            ),
            (
                format!("{}.snapshot.json", snapshot.signed().signed.version),
                snapshot.buffer().clone(),
            ),
        ],
        timestamp: timestamp.buffer().clone(),
    };
    Ok((
        publication,
        Rotated {
            root_version: root.version.get(),
            rotated,
        },
    ))
}
