//! `image-tools repo init`: an empty repository whose version-1 root trusts
//! the keys of a keys directory (by file name: `root-*`, `targets-*`,
//! `snapshot-*`, `timestamp-*`), with consistent snapshots.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::num::NonZeroU64;
use std::path::PathBuf;

use tough::schema::{RoleKeys, RoleType, Root, Targets};

use crate::cli::RepoInitArgs;
use crate::keys::KeyRing;
use crate::repo::{self, Publication, RepoError, RepoPaths, SPEC_VERSION, expires_in, io_err};

/// What `init` made.
#[derive(Debug)]
pub struct InitReport {
    repo: PathBuf,
    root_keys: usize,
    root_threshold: u64,
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "initialized {}: root version 1 ({} of {} root keys), empty targets; nodes trust {}",
            self.repo.display(),
            self.root_threshold,
            self.root_keys,
            self.repo.join("metadata/1.root.json").display()
        )
    }
}

/// The root-role keys and threshold of a new root, from a key ring.
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

/// Runs `repo init`.
pub fn run(args: &RepoInitArgs) -> Result<InitReport, RepoError> {
    let paths = RepoPaths::new(&args.repo);
    if paths.metadata().exists() {
        return Err(RepoError::AlreadyInitialized {
            path: args.repo.clone(),
        });
    }
    let keys = KeyRing::load(&args.keys)?;
    let one = NonZeroU64::MIN;
    let root = root_for(
        &keys,
        one,
        [
            (RoleType::Root, args.root_threshold),
            (RoleType::Targets, args.targets_threshold),
            (RoleType::Snapshot, 1),
            (RoleType::Timestamp, 1),
        ],
        expires_in(args.root_expiry.root_expires),
    )?;
    let root_keys = root.roles[&RoleType::Root].keyids.len();
    let signed_root = repo::sign(root.clone(), &root, &keys)?;
    let mut targets = Targets::new(
        SPEC_VERSION.to_owned(),
        one,
        expires_in(args.targets_expiry.targets_expires),
    );
    targets.delegations = None;
    let signed_targets = repo::sign(targets, &root, &keys)?;
    let (snapshot, timestamp) = repo::sign_online(
        None,
        None,
        signed_targets.buffer(),
        one,
        &root,
        &keys,
        &args.online_expiry,
    )?;
    let publication = Publication {
        versioned: vec![
            ("1.root.json".to_owned(), signed_root.buffer().clone()),
            ("1.targets.json".to_owned(), signed_targets.buffer().clone()),
            ("1.snapshot.json".to_owned(), snapshot.buffer().clone()),
        ],
        timestamp: timestamp.buffer().clone(),
        ..Publication::default()
    };
    for dir in [paths.metadata(), paths.targets()] {
        fs::create_dir_all(&dir).map_err(io_err(&dir, "create directory"))?;
    }
    publication.write(&paths)?;
    repo::self_check(&paths)?;
    Ok(InitReport {
        repo: args.repo.clone(),
        root_keys,
        root_threshold: args.root_threshold,
    })
}
