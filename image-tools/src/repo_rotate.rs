//! `image-tools repo rotate`: root version N+1 trusting new keys.
//!
//! Each role with `<role>-*.pem` files in `--new-keys` gets exactly those
//! keys; the others keep theirs. The new root is signed by a threshold of
//! the *current* root keys and by a threshold of its *own* root keys, so a
//! node holding root N can follow to N+1 (TUF §5.3.4); then targets,
//! snapshot and timestamp are re-signed with the keys the new root names.

use std::fmt;

use tough::schema::{RoleType, Root};

use crate::cli::RepoRotateArgs;
use crate::keys::KeyRing;
use crate::repo::{self, Publication, RepoError, RepoPaths, expires_in, next_version};

/// What `rotate` published.
#[derive(Debug)]
pub struct RotateReport {
    root_version: u64,
    rotated: Vec<RoleType>,
}

impl fmt::Display for RotateReport {
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
    args: &RepoRotateArgs,
) -> Result<(Root, Vec<RoleType>), RepoError> {
    let mut root = old.clone();
    root.version = next_version(old.version);
    root.expires = expires_in(args.root_expiry.root_expires);
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
            RoleType::Root => args.root_threshold,
            RoleType::Targets => args.targets_threshold,
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
        role_keys.threshold =
            std::num::NonZeroU64::new(threshold).unwrap_or(std::num::NonZeroU64::MIN);
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

/// Runs `repo rotate`.
pub fn run(args: &RepoRotateArgs) -> Result<RotateReport, RepoError> {
    let paths = RepoPaths::new(&args.repo);
    let old_keys = KeyRing::load(&args.keys)?;
    let new_keys = KeyRing::load(&args.new_keys)?;
    let loaded = repo::load(&paths)?;
    let old_root = &loaded.root.signed;
    let (root, rotated) = new_root(old_root, &new_keys, args)?;
    let keys = KeyRing::merged(new_keys, old_keys);

    // Signed by the old root's keys and by the new root's own keys.
    let by_old = repo::sign(root.clone(), old_root, &keys)?;
    let by_new = repo::sign(root.clone(), &root, &keys)?;
    let signed_root = by_new
        .add_old_signatures(by_old.signed().signatures.clone())
        .map_err(|source| RepoError::Sign {
            role: RoleType::Root,
            source: Box::new(source),
        })?;

    let mut targets = loaded.targets.signed.clone();
    targets.version = next_version(targets.version);
    targets.expires = expires_in(args.targets_expiry.targets_expires);
    let targets_version = targets.version;
    let signed_targets = repo::sign(targets, &root, &keys)?;
    let (snapshot, timestamp) = repo::sign_online(
        Some(&loaded.snapshot.signed),
        Some(&loaded.timestamp.signed),
        signed_targets.buffer(),
        targets_version,
        &root,
        &keys,
        &args.online_expiry,
    )?;
    Publication {
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
        ..Publication::default()
    }
    .write(&paths)?;
    repo::self_check(&paths)?;
    Ok(RotateReport {
        root_version: root.version.get(),
        rotated,
    })
}
