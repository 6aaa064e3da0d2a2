//! Everything one edit publishes, signed and in memory, and the check that
//! nodes would accept the repository with it — made before anything is
//! written anywhere.
//!
//! Where the files go is the caller's business: [`crate::dir::RepoDir`]
//! writes them into a repository directory in the order that keeps readers
//! on a consistent snapshot; the update server stages them for its own
//! verified switch.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use moho_release::{
    FetchError, MetadataSource, Sha256Digest, TrustedState, VerifiedRepository, load_repository,
};

use crate::error::RepoError;

/// The bytes of a new target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetContent {
    /// A file to copy (an OS image: too large to hold in memory).
    File(PathBuf),
    /// Bytes in memory (a chunk index).
    Bytes(Vec<u8>),
}

/// A target file the publication adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTarget {
    /// Target name, `<board>/<version>/<file>`.
    pub name: String,
    /// Its length, as signed.
    pub length: u64,
    /// Its SHA-256, as signed.
    pub sha256: Sha256Digest,
    /// Where its bytes are.
    pub content: TargetContent,
}

/// Signed metadata and target files of one edit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Publication {
    /// Target files to place.
    pub targets: Vec<NewTarget>,
    /// New versioned metadata files (`N.root.json`, `N.targets.json`,
    /// `N.snapshot.json`), never replacing an existing file: (name, bytes).
    pub versioned: Vec<(String, Vec<u8>)>,
    /// The new `timestamp.json`, which makes the rest visible.
    pub timestamp: Vec<u8>,
}

impl Publication {
    /// The publication of a new `targets` role over `current` (an add or a
    /// promotion): targets signed, a new snapshot and timestamp, and the
    /// target files `files` to place.
    pub(crate) fn of_targets(
        targets: tough::schema::Targets,
        files: Vec<NewTarget>,
        current: &crate::current::Current,
        keys: &crate::keys::KeyRing,
        expiries: &crate::sign::Expiries,
        now: SystemTime,
    ) -> Result<Self, RepoError> {
        let version = targets.version;
        let root = &current.root().signed;
        let signed_targets = crate::sign::sign(targets, root, keys)?;
        let (snapshot, timestamp) = crate::sign::sign_online(
            crate::sign::Previous {
                snapshot: Some(&current.snapshot().signed),
                timestamp: Some(&current.timestamp().signed),
            },
            crate::sign::metafile(signed_targets.buffer(), version),
            root,
            keys,
            expiries,
            now,
        )?;
        Ok(Self {
            targets: files,
            versioned: vec![
                (
                    format!("{version}.targets.json"),
                    signed_targets.buffer().clone(),
                ),
                (
                    format!("{}.snapshot.json", snapshot.signed().signed.version),
                    snapshot.buffer().clone(),
                ),
            ],
            timestamp: timestamp.buffer().clone(),
        })
    }

    /// Every metadata file, by name, `timestamp.json` last.
    pub fn metadata_files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.versioned
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .chain(std::iter::once((
                "timestamp.json",
                self.timestamp.as_slice(),
            )))
    }

    /// Loads the repository `base` would be with this publication on top,
    /// as a node that trusts `trusted_root` and nothing else yet would at
    /// `now`, and checks the new targets are listed as they will be
    /// written. A refusal here means nothing must be written.
    pub fn verify(
        &self,
        base: &dyn MetadataSource,
        trusted_root: &[u8],
        now: SystemTime,
    ) -> Result<VerifiedRepository, RepoError> {
        let overlay = Overlay {
            base,
            files: self.metadata_files().collect(),
        };
        let refused = |e| RepoError::NodesWouldRefuse {
            source: Box::new(e),
        };
        let repo = load_repository(&overlay, trusted_root, &TrustedState::default(), now)
            .map_err(refused)?;
        for t in &self.targets {
            let info = repo.target(&t.name).map_err(refused)?;
            if info.length() != t.length || info.sha256() != t.sha256 {
                return Err(refused(moho_release::VerifyError::TargetHashMismatch {
                    name: t.name.clone(),
                    expected: info.sha256(),
                    actual: t.sha256,
                }));
            }
        }
        Ok(repo)
    }
}

/// The base repository's metadata with the publication's files on top.
struct Overlay<'a> {
    base: &'a dyn MetadataSource,
    files: BTreeMap<&'a str, &'a [u8]>,
}

impl MetadataSource for Overlay<'_> {
    fn fetch(&self, file: &str, max_len: u64) -> Result<Option<Vec<u8>>, FetchError> {
        match self.files.get(file) {
            Some(bytes) => Ok(Some(bytes.to_vec())),
            None => self.base.fetch(file, max_len),
        }
    }
}
