//! A repository whose metadata passed every check, and what it signs.
//!
//! [`VerifiedRepository`] can only be obtained from a finished
//! [`RepositoryLoad`](crate::RepositoryLoad): holding one means the root
//! chain, every signature threshold, every expiry (against the caller's
//! `now`), the snapshot/timestamp consistency and the rollback checks held.
//! Its targets have been screened too: safe names, and well-formed release
//! metadata on every image target.

use std::collections::BTreeMap;
use std::time::SystemTime;

use moho_core::release::ImageTargetCustom;
use semver::Version;
use serde::{Deserialize, Serialize};
use tough::schema::{Root, Signed, Snapshot, Target, Targets, Timestamp};

use crate::chunk_index::chunk_size_is_valid;
use crate::digest::Sha256Digest;
use crate::error::VerifyError;
use crate::layout::{Layout, target_path};
use crate::release::{NodeContext, VerifiedRelease};
use crate::target_name::{validate_component, validate_target_name};

/// The timestamp, snapshot and targets metadata a client accepted last, byte
/// for byte ([`VerifiedRepository::trusted_metadata`]).
///
/// Persist it beside the trusted root and hand it to the next load
/// ([`RepositoryLoad::start_with_metadata`](crate::RepositoryLoad::start_with_metadata)),
/// which then does what the TUF specification asks of a client: a
/// `timestamp.json` of the same version as the trusted one is discarded
/// and the trusted metadata kept (§5.4.3: nothing changed, nothing is
/// fetched), and a snapshot or targets file that is still the one listed is
/// re-used from here instead of downloaded. Each file is still checked
/// against the current root before it is used (it comes from a disk), and
/// one that fails is fetched as if it were absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedMetadata {
    /// `timestamp.json`.
    pub timestamp: Option<Vec<u8>>,
    /// `N.snapshot.json`.
    pub snapshot: Option<Vec<u8>>,
    /// `N.targets.json`.
    pub targets: Option<Vec<u8>>,
}

/// What a node remembers between two loads to detect rollback (replay) attacks.
///
/// Persist it next to the newest trusted root ([`VerifiedRepository::root_json`])
/// after every successful load, and pass it to the next
/// [`RepositoryLoad::start`](crate::RepositoryLoad::start). `Default` trusts
/// nothing yet (first start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedState {
    timestamp_version: u64,
    snapshot_version: u64,
    targets_version: u64,
}

impl TrustedState {
    /// Version of the trusted timestamp metadata (0: none).
    pub fn timestamp_version(&self) -> u64 {
        self.timestamp_version
    }

    /// Version of the trusted snapshot metadata (0: none).
    pub fn snapshot_version(&self) -> u64 {
        self.snapshot_version
    }

    /// Version of the trusted targets metadata (0: none).
    pub fn targets_version(&self) -> u64 {
        self.targets_version
    }

    pub(crate) fn new(timestamp_version: u64, snapshot_version: u64, targets_version: u64) -> Self {
        Self {
            timestamp_version,
            snapshot_version,
            targets_version,
        }
    }
}

/// When each top-level role's metadata expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// `root.json`.
    pub root: SystemTime,
    /// `targets.json` (offline key: re-signed on each release).
    pub targets: SystemTime,
    /// `snapshot.json` (online key).
    pub snapshot: SystemTime,
    /// `timestamp.json` (online key, shortest).
    pub timestamp: SystemTime,
}

/// A signed target: where to fetch it and what its bytes must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    name: String,
    length: u64,
    sha256: Sha256Digest,
    consistent: bool,
}

impl TargetInfo {
    /// Target name, `<board>/<version>/<file>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signed length, bytes.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Signed SHA-256.
    pub fn sha256(&self) -> Sha256Digest {
        self.sha256
    }

    /// Path of the file relative to the repository's targets base URL, as
    /// the TUF specification places it: `<dir>/<sha256>.<basename>` when the
    /// repository uses consistent snapshots, else the name.
    pub fn path(&self) -> String {
        self.path_in(Layout::Spec)
    }

    /// Path of the file in `layout` (see [`crate::layout`]).
    pub fn path_in(&self, layout: Layout) -> String {
        target_path(&self.name, &self.sha256, self.consistent, layout)
    }

    /// The paths a reader tries, in order: the specification's, then the
    /// legacy one (`<sha256>.<name>`) of repositories made before it, when
    /// that differs.
    pub fn paths(&self) -> Vec<String> {
        let mut paths = vec![self.path_in(Layout::Spec)];
        let legacy = self.path_in(Layout::Legacy);
        if legacy != paths[0] {
            paths.push(legacy);
        }
        paths
    }

    /// Checks target bytes against the signed length and hash.
    pub fn verify_bytes(&self, bytes: &[u8]) -> Result<(), VerifyError> {
        if bytes.len() as u64 != self.length {
            return Err(VerifyError::TargetLengthMismatch {
                name: self.name.clone(),
                expected: self.length,
                actual: bytes.len() as u64,
            });
        }
        let actual = Sha256Digest::of(bytes);
        if actual != self.sha256 {
            return Err(VerifyError::TargetHashMismatch {
                name: self.name.clone(),
                expected: self.sha256,
                actual,
            });
        }
        Ok(())
    }
}

/// An OS image target and its release metadata (DESIGN §5), as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseTarget {
    image: TargetInfo,
    custom: ImageTargetCustom,
    version: Version,
    min_version: Option<Version>,
}

impl ReleaseTarget {
    /// The image target.
    pub fn image(&self) -> &TargetInfo {
        &self.image
    }

    /// The signed `custom` metadata, exactly as published.
    pub fn custom(&self) -> &ImageTargetCustom {
        &self.custom
    }

    /// The release version, parsed.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// The oldest version it may be applied from, parsed.
    pub fn min_version(&self) -> Option<&Version> {
        self.min_version.as_ref()
    }
}

/// A repository that passed every check of the TUF client workflow at `now`.
#[derive(Debug, Clone)]
pub struct VerifiedRepository {
    root_json: Vec<u8>,
    root: Signed<Root>,
    timestamp: Signed<Timestamp>,
    snapshot: Signed<Snapshot>,
    targets: Signed<Targets>,
    metadata: TrustedMetadata,
    plain: BTreeMap<String, TargetInfo>,
    releases: BTreeMap<String, ReleaseTarget>,
}

impl VerifiedRepository {
    /// Screens the targets of metadata that passed the load checks.
    pub(crate) fn new(
        root_json: Vec<u8>,
        root: Signed<Root>,
        timestamp: Signed<Timestamp>,
        snapshot: Signed<Snapshot>,
        targets: Signed<Targets>,
        metadata: TrustedMetadata,
    ) -> Result<Self, VerifyError> {
        let consistent = root.signed.consistent_snapshot;
        let mut plain = BTreeMap::new();
        let mut images = Vec::new();
        // In name order, so that a repository with several bad targets is
        // always refused for the same one (tough keeps them in a HashMap).
        let mut entries: Vec<_> = targets.signed.targets.iter().collect();
        entries.sort_by(|a, b| a.0.raw().cmp(b.0.raw()));
        for (name, target) in entries {
            let raw = name.raw();
            check_name(raw)?;
            let info = target_info(raw, target, consistent)?;
            if target.custom.is_empty() {
                plain.insert(raw.to_owned(), info);
            } else {
                images.push((info, target));
            }
        }
        let mut releases = BTreeMap::new();
        for (info, target) in images {
            let release = release_target(info, target, &plain)?;
            releases.insert(release.image.name.clone(), release);
        }
        Ok(Self {
            root_json,
            root,
            timestamp,
            snapshot,
            targets,
            metadata,
            plain,
            releases,
        })
    }

    /// The timestamp, snapshot and targets files as accepted, byte for
    /// byte: persist them for the next load (see [`TrustedMetadata`]).
    pub fn trusted_metadata(&self) -> &TrustedMetadata {
        &self.metadata
    }

    /// The newest trusted root, byte for byte as signed: persist it as the
    /// node's trusted root for the next load.
    pub fn root_json(&self) -> &[u8] {
        &self.root_json
    }

    /// Version of the newest trusted root.
    pub fn root_version(&self) -> u64 {
        self.root.signed.version.get()
    }

    /// The versions to persist for rollback detection.
    pub fn trusted_state(&self) -> TrustedState {
        TrustedState::new(
            self.timestamp.signed.version.get(),
            self.snapshot.signed.version.get(),
            self.targets.signed.version.get(),
        )
    }

    /// When each role's metadata expires.
    pub fn expiry(&self) -> Expiry {
        Expiry {
            root: self.root.signed.expires.into(),
            targets: self.targets.signed.expires.into(),
            snapshot: self.snapshot.signed.expires.into(),
            timestamp: self.timestamp.signed.expires.into(),
        }
    }

    /// Whether target file names carry their hash (consistent snapshots).
    pub fn consistent_snapshot(&self) -> bool {
        self.root.signed.consistent_snapshot
    }

    /// The newest root, as signed.
    pub fn signed_root(&self) -> &Signed<Root> {
        &self.root
    }

    /// The targets metadata, as signed.
    pub fn signed_targets(&self) -> &Signed<Targets> {
        &self.targets
    }

    /// The snapshot metadata, as signed.
    pub fn signed_snapshot(&self) -> &Signed<Snapshot> {
        &self.snapshot
    }

    /// The timestamp metadata, as signed.
    pub fn signed_timestamp(&self) -> &Signed<Timestamp> {
        &self.timestamp
    }

    /// Every OS image target with its release metadata, by target name.
    pub fn releases(&self) -> impl Iterator<Item = &ReleaseTarget> {
        self.releases.values()
    }

    /// Every signed target (images, chunk indexes, other files), by name.
    pub fn targets(&self) -> impl Iterator<Item = &TargetInfo> {
        let mut all: Vec<&TargetInfo> = self
            .plain
            .values()
            .chain(self.releases.values().map(|r| &r.image))
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all.into_iter()
    }

    /// Any signed target (image, chunk index or other file) by name.
    pub fn target(&self, name: &str) -> Result<&TargetInfo, VerifyError> {
        check_name(name)?;
        self.plain
            .get(name)
            .or_else(|| self.releases.get(name).map(|r| &r.image))
            .ok_or_else(|| VerifyError::TargetNotFound {
                name: name.to_owned(),
            })
    }

    /// An OS image target by name, without node policy (for listing and tooling).
    pub fn release(&self, name: &str) -> Result<&ReleaseTarget, VerifyError> {
        check_name(name)?;
        match self.releases.get(name) {
            Some(r) => Ok(r),
            None if self.plain.contains_key(name) => Err(VerifyError::NotAnImage {
                name: name.to_owned(),
            }),
            None => Err(VerifyError::TargetNotFound {
                name: name.to_owned(),
            }),
        }
    }

    /// The release descriptor a node may act on: the image target `name`
    /// checked against the node's board, channel and running version.
    pub fn release_for(
        &self,
        name: &str,
        node: &NodeContext,
    ) -> Result<VerifiedRelease, VerifyError> {
        let release = self.release(name)?;
        VerifiedRelease::check(release, self.target(&release.custom.chunk_index)?, node)
    }
}

fn check_name(name: &str) -> Result<(), VerifyError> {
    validate_target_name(name).map_err(|source| VerifyError::UnsafeTargetName {
        name: name.to_owned(),
        source,
    })
}

fn target_info(name: &str, target: &Target, consistent: bool) -> Result<TargetInfo, VerifyError> {
    let sha256 = Sha256Digest::from_slice(target.hashes.sha256.as_ref()).ok_or_else(|| {
        VerifyError::Malformed {
            file: "targets.json".to_owned(),
            reason: format!(
                "target {name}: sha256 has {} bytes, expected 32",
                target.hashes.sha256.len()
            ),
        }
    })?;
    Ok(TargetInfo {
        name: name.to_owned(),
        length: target.length,
        sha256,
        consistent,
    })
}

fn release_target(
    image: TargetInfo,
    target: &Target,
    plain: &BTreeMap<String, TargetInfo>,
) -> Result<ReleaseTarget, VerifyError> {
    let name = image.name.clone();
    let bad = |reason: String| VerifyError::MalformedCustom {
        name: name.clone(),
        reason,
    };
    let object = serde_json::Value::Object(target.custom.clone().into_iter().collect());
    let custom: ImageTargetCustom =
        serde_json::from_value(object).map_err(|e| bad(e.to_string()))?;
    let version = Version::parse(&custom.version)
        .map_err(|e| bad(format!("version {:?} is not semver: {e}", custom.version)))?;
    let min_version = custom
        .min_version
        .as_deref()
        .map(|v| {
            Version::parse(v).map_err(|e| bad(format!("min_version {v:?} is not semver: {e}")))
        })
        .transpose()?;
    let prefix = format!("{}/{}/", custom.board, custom.version);
    if !name.starts_with(&prefix) {
        return Err(bad(format!(
            "board {:?} and version {:?} do not match the target name",
            custom.board, custom.version
        )));
    }
    if custom.channels.is_empty() {
        return Err(bad("signed for no channel".to_owned()));
    }
    if let Some(c) = custom
        .channels
        .iter()
        .find(|c| validate_component(c).is_err())
    {
        return Err(bad(format!("channel name {c:?} is not a plain name")));
    }
    if !chunk_size_is_valid(custom.chunk_size) {
        return Err(bad(format!(
            "chunk size {} is not a valid chunk size",
            custom.chunk_size
        )));
    }
    if !custom.chunk_index.starts_with(&prefix) || !plain.contains_key(&custom.chunk_index) {
        return Err(bad(format!(
            "chunk index {:?} is not a signed plain target of this release",
            custom.chunk_index
        )));
    }
    Ok(ReleaseTarget {
        image,
        custom,
        version,
        min_version,
    })
}
