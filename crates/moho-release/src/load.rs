//! The TUF client workflow (specification §5) as a state machine that does
//! no I/O: it says which metadata file it needs next, the caller fetches it
//! however it likes (file, memory, HTTPS; sync or async) and hands the bytes
//! back, and time is the caller's `now`.
//!
//! Why not `tough::RepositoryLoader`: it is async, keeps its rollback state in
//! a datastore directory it creates on disk, and reads the system clock,
//! none of which the shared crates may do (DESIGN §1). The checks below follow
//! the same specification steps, use `tough`'s schema types and its
//! `Root::verify_role`, and are cross-checked against `tough`'s loader in the
//! tests.
//!
//! Order: trusted root → `N+1.root.json`... until one is missing (each signed
//! by the previous and by itself, versions consecutive) → root expiry →
//! `timestamp.json` → snapshot (hash, length and version as the timestamp
//! lists them) → targets (likewise from the snapshot). Signatures are checked
//! before a file's content is believed, rollback against the caller's
//! [`TrustedState`], expiry against `now`.
//!
//! Given the files the last load accepted ([`TrustedMetadata`],
//! [`RepositoryLoad::start_with_metadata`]), it behaves as the
//! specification asks of a client that keeps them: a timestamp of the
//! trusted version is discarded for the trusted one (§5.4.3, "nothing
//! changed"), and a snapshot or targets file that still is the listed one
//! is taken from them instead of requested (§5.5, §5.6). Kept files pass
//! the same checks as downloaded ones; one that fails is requested.
//!
//! An async caller (the agent fetching over HTTPS) drives it like this; a
//! synchronous one can use [`load_repository`](crate::load_repository):
//!
//! ```no_run
//! # use moho_release::{LoadStep, RepositoryLoad, TrustedState, VerifyError};
//! # async fn fetch(_file: &str, _max_len: u64) -> Option<Vec<u8>> { None }
//! # async fn example(root: &[u8], state: TrustedState) -> Result<(), VerifyError> {
//! let mut load = RepositoryLoad::start(root, &state, std::time::SystemTime::now())?;
//! let repo = loop {
//!     let request = load.request();
//!     let bytes = fetch(&request.file, request.max_len).await; // None: 404
//!     match load.supply(bytes)? {
//!         LoadStep::Need(next) => load = *next,
//!         LoadStep::Done(repo) => break *repo,
//!     }
//! };
//! // Persist repo.root_json() and repo.trusted_state() for the next load.
//! # let _ = repo; Ok(()) }
//! ```

use std::time::SystemTime;

use jiff::Timestamp as Instant;
use tough::schema::key::Key;
use tough::schema::{Metafile, RoleType, Root, Signed, Snapshot, Targets, Timestamp};

use crate::digest::Sha256Digest;
use crate::error::VerifyError;
use crate::repository::{TrustedMetadata, TrustedState, VerifiedRepository};
use crate::signatures::{self, Parsed};

/// Size limits against endless-data attacks (the same defaults as `tough`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `N.root.json`.
    pub max_root_size: u64,
    /// Largest `timestamp.json`.
    pub max_timestamp_size: u64,
    /// Largest snapshot when the timestamp does not sign its length.
    pub max_snapshot_size: u64,
    /// Largest targets metadata when the snapshot does not sign its length.
    pub max_targets_size: u64,
    /// Most root rotations followed in one load.
    pub max_root_updates: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_root_size: 1 << 20,
            max_timestamp_size: 1 << 20,
            max_snapshot_size: 1 << 20,
            max_targets_size: 10 << 20,
            max_root_updates: 1024,
        }
    }
}

/// The next metadata file a [`RepositoryLoad`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    /// File name relative to the repository's metadata base URL, e.g. `3.root.json`.
    pub file: String,
    /// Do not deliver more than this many bytes (stop reading after `max_len + 1`).
    pub max_len: u64,
    /// `true` when "not found" is a normal answer (the end of the root chain).
    pub optional: bool,
}

/// What a [`RepositoryLoad`] wants after being fed.
#[derive(Debug)]
pub enum LoadStep {
    /// Another file is needed: see [`RepositoryLoad::request`].
    Need(Box<RepositoryLoad>),
    /// Every check passed.
    Done(Box<VerifiedRepository>),
}

impl LoadStep {
    fn set_max_len_signed(&mut self, signed: bool) {
        if let LoadStep::Need(load) = self {
            load.max_len_signed = signed;
        }
    }
}

/// A repository load in progress (see the module documentation).
#[derive(Debug)]
pub struct RepositoryLoad {
    /// `None`: a publisher's load, which does not judge expiry.
    now: Option<Instant>,
    limits: Limits,
    trusted: TrustedState,
    /// The files accepted last time, re-used where still current.
    cached: TrustedMetadata,
    /// The files accepted by this load so far.
    accepted: TrustedMetadata,
    original_timestamp_keys: Vec<Key>,
    original_snapshot_keys: Vec<Key>,
    root: Signed<Root>,
    root_json: Vec<u8>,
    root_updates: u64,
    stage: Stage,
    request: MetadataRequest,
    /// Whether `request.max_len` is a length signed by the referring role
    /// (then a longer file is a length mismatch, not an endless-data attack).
    max_len_signed: bool,
}

#[derive(Debug)]
enum Stage {
    Root,
    Timestamp,
    Snapshot {
        timestamp: Box<Signed<Timestamp>>,
    },
    Targets {
        timestamp: Box<Signed<Timestamp>>,
        snapshot: Box<Signed<Snapshot>>,
    },
}

const TRUSTED_ROOT: &str = "trusted root";

impl RepositoryLoad {
    /// Starts a load from the node's trusted root (`root.json` bytes shipped
    /// with the OS or saved from the last load), the state saved from the last
    /// load (`TrustedState::default()` on first start) and the current time.
    ///
    /// The trusted root must be signed by a threshold of its own root keys;
    /// its expiry does not matter (a newer root may follow).
    pub fn start(
        trusted_root: &[u8],
        trusted: &TrustedState,
        now: SystemTime,
    ) -> Result<Self, VerifyError> {
        Self::start_with_limits(trusted_root, trusted, now, Limits::default())
    }

    /// [`start`](Self::start) with explicit size limits.
    pub fn start_with_limits(
        trusted_root: &[u8],
        trusted: &TrustedState,
        now: SystemTime,
        limits: Limits,
    ) -> Result<Self, VerifyError> {
        // A clock beyond jiff's range (year 9999) makes everything expired.
        let now = Instant::try_from(now).unwrap_or(Instant::MAX);
        Self::begin(
            trusted_root,
            trusted,
            TrustedMetadata::default(),
            Some(now),
            limits,
        )
    }

    /// [`start`](Self::start) with the metadata files the last load
    /// accepted ([`VerifiedRepository::trusted_metadata`]): a timestamp of
    /// the trusted version is discarded and the trusted one kept
    /// (specification §5.4.3), and a snapshot or targets file that is still
    /// the one listed is taken from `cached` instead of requested. A cached
    /// file is checked like a downloaded one; one that fails is requested.
    pub fn start_with_metadata(
        trusted_root: &[u8],
        trusted: &TrustedState,
        cached: TrustedMetadata,
        now: SystemTime,
    ) -> Result<Self, VerifyError> {
        let now = Instant::try_from(now).unwrap_or(Instant::MAX);
        Self::begin(trusted_root, trusted, cached, Some(now), Limits::default())
    }

    /// A load for a publishing tool, which must read a repository whose
    /// metadata expired in order to renew it: every check of
    /// [`start`](Self::start) except expiry, with nothing trusted yet. A node
    /// never uses this (the result would let expired metadata through).
    pub fn start_for_publishing(trusted_root: &[u8]) -> Result<Self, VerifyError> {
        Self::begin(
            trusted_root,
            &TrustedState::default(),
            TrustedMetadata::default(),
            None,
            Limits::default(),
        )
    }

    fn begin(
        trusted_root: &[u8],
        trusted: &TrustedState,
        cached: TrustedMetadata,
        now: Option<Instant>,
        limits: Limits,
    ) -> Result<Self, VerifyError> {
        let parsed: Parsed<Root> = signatures::parse(TRUSTED_ROOT, trusted_root)?;
        signatures::check(&parsed.signed.signed, RoleType::Root, TRUSTED_ROOT, &parsed)?;
        let root = parsed.signed;
        let next = root.signed.version.get().saturating_add(1);
        Ok(Self {
            now,
            limits,
            trusted: *trusted,
            cached,
            accepted: TrustedMetadata::default(),
            original_timestamp_keys: root.signed.keys(RoleType::Timestamp).cloned().collect(),
            original_snapshot_keys: root.signed.keys(RoleType::Snapshot).cloned().collect(),
            root,
            root_json: trusted_root.to_vec(),
            root_updates: 0,
            stage: Stage::Root,
            request: MetadataRequest {
                file: format!("{next}.root.json"),
                max_len: limits.max_root_size,
                optional: true,
            },
            max_len_signed: false,
        })
    }

    /// The file needed now.
    pub fn request(&self) -> &MetadataRequest {
        &self.request
    }

    /// Feeds the requested file (`None`: not found) and checks it.
    pub fn supply(mut self, bytes: Option<Vec<u8>>) -> Result<LoadStep, VerifyError> {
        let file = self.request.file.clone();
        if let Some(b) = &bytes
            && b.len() as u64 > self.request.max_len
            && !self.max_len_signed
        {
            return Err(VerifyError::TooLarge {
                file,
                limit: self.request.max_len,
            });
        }
        let stage = std::mem::replace(&mut self.stage, Stage::Root);
        match (stage, bytes) {
            (Stage::Root, Some(bytes)) => self.next_root(&file, bytes),
            (Stage::Root, None) => self.root_chain_done(),
            (_, None) => Err(VerifyError::MissingMetadata { file }),
            (Stage::Timestamp, Some(bytes)) => self.timestamp(&file, &bytes),
            (Stage::Snapshot { timestamp }, Some(bytes)) => self.snapshot(&file, bytes, timestamp),
            (
                Stage::Targets {
                    timestamp,
                    snapshot,
                },
                Some(bytes),
            ) => self.targets(&file, bytes, *timestamp, *snapshot),
        }
    }

    fn need(
        mut self,
        stage: Stage,
        file: String,
        max_len: u64,
        optional: bool,
    ) -> Result<LoadStep, VerifyError> {
        self.stage = stage;
        self.max_len_signed = false;
        self.request = MetadataRequest {
            file,
            max_len,
            optional,
        };
        Ok(LoadStep::Need(Box::new(self)))
    }

    /// §5.3.4–5.3.7: version N+1, signed by root N and by itself.
    fn next_root(mut self, file: &str, bytes: Vec<u8>) -> Result<LoadStep, VerifyError> {
        let parsed: Parsed<Root> = signatures::parse(file, &bytes)?;
        signatures::check(&self.root.signed, RoleType::Root, file, &parsed)?;
        signatures::check(&parsed.signed.signed, RoleType::Root, file, &parsed)?;
        let expected = self.root.signed.version.get().saturating_add(1);
        let found = parsed.signed.signed.version.get();
        if found != expected {
            return Err(VerifyError::RootVersionMismatch {
                file: file.to_owned(),
                expected,
                found,
            });
        }
        self.root_updates += 1;
        if self.root_updates >= self.limits.max_root_updates {
            return Err(VerifyError::TooLarge {
                file: format!("root chain (at {file})"),
                limit: self.limits.max_root_updates,
            });
        }
        self.root = parsed.signed;
        self.root_json = bytes;
        let max = self.limits.max_root_size;
        self.need(
            Stage::Root,
            format!("{}.root.json", found.saturating_add(1)),
            max,
            true,
        )
    }

    /// §5.3.10–5.3.11: the newest root must be current; rotated online keys
    /// void the trusted timestamp and snapshot (fast-forward recovery).
    fn root_chain_done(mut self) -> Result<LoadStep, VerifyError> {
        self.check_expiry(RoleType::Root, self.root.signed.expires)?;
        let rotated = !self
            .original_timestamp_keys
            .iter()
            .eq(self.root.signed.keys(RoleType::Timestamp))
            || !self
                .original_snapshot_keys
                .iter()
                .eq(self.root.signed.keys(RoleType::Snapshot));
        if rotated {
            self.trusted = TrustedState::default();
            self.cached = TrustedMetadata::default();
        }
        let max = self.limits.max_timestamp_size;
        self.need(Stage::Timestamp, "timestamp.json".to_owned(), max, false)
    }

    /// §5.4. A timestamp of the trusted version is discarded for the
    /// trusted one when the caller kept it (§5.4.3: nothing changed).
    fn timestamp(mut self, file: &str, bytes: &[u8]) -> Result<LoadStep, VerifyError> {
        let parsed: Parsed<Timestamp> = signatures::parse(file, bytes)?;
        signatures::check(&self.root.signed, RoleType::Timestamp, file, &parsed)?;
        let mut timestamp = parsed.signed;
        let mut timestamp_json = bytes.to_vec();
        if timestamp.signed.version.get() == self.trusted.timestamp_version()
            && let Some((trusted, json)) = self.cached_timestamp(file)
        {
            timestamp = trusted;
            timestamp_json = json;
        }
        let meta = match timestamp.signed.meta.get("snapshot.json") {
            Some(meta) if timestamp.signed.meta.len() == 1 => meta.clone(),
            _ => {
                return Err(VerifyError::Malformed {
                    file: file.to_owned(),
                    reason: "meta must list exactly snapshot.json".to_owned(),
                });
            }
        };
        check_rollback(
            RoleType::Timestamp,
            self.trusted.timestamp_version(),
            timestamp.signed.version.get(),
        )?;
        check_rollback(
            RoleType::Snapshot,
            self.trusted.snapshot_version(),
            meta.version.get(),
        )?;
        self.check_expiry(RoleType::Timestamp, timestamp.signed.expires)?;
        self.accepted.timestamp = Some(timestamp_json);
        let name = self.versioned("snapshot.json", meta.version.get());
        let max = signed_limit(&name, meta.length, self.limits.max_snapshot_size)?;
        if let Some(cached) = self.cached.snapshot.take()
            && cached.len() as u64 <= max
            && let Ok(snapshot) = self.check_snapshot(&name, &cached, &timestamp)
        {
            self.accepted.snapshot = Some(cached);
            return self.after_snapshot(timestamp, snapshot);
        }
        let signed = meta.length.is_some();
        let mut step = self.need(
            Stage::Snapshot {
                timestamp: Box::new(timestamp),
            },
            name,
            max,
            false,
        )?;
        step.set_max_len_signed(signed);
        Ok(step)
    }

    /// The trusted timestamp the caller kept, if it still verifies under
    /// the current root and is of the trusted version.
    fn cached_timestamp(&mut self, file: &str) -> Option<(Signed<Timestamp>, Vec<u8>)> {
        let json = self.cached.timestamp.take()?;
        let parsed: Parsed<Timestamp> = signatures::parse(file, &json).ok()?;
        signatures::check(&self.root.signed, RoleType::Timestamp, file, &parsed).ok()?;
        (parsed.signed.signed.version.get() == self.trusted.timestamp_version())
            .then_some((parsed.signed, json))
    }

    /// §5.5.
    fn snapshot(
        mut self,
        file: &str,
        bytes: Vec<u8>,
        timestamp: Box<Signed<Timestamp>>,
    ) -> Result<LoadStep, VerifyError> {
        let snapshot = self.check_snapshot(file, &bytes, &timestamp)?;
        self.accepted.snapshot = Some(bytes);
        self.after_snapshot(*timestamp, snapshot)
    }

    fn check_snapshot(
        &self,
        file: &str,
        bytes: &[u8],
        timestamp: &Signed<Timestamp>,
    ) -> Result<Signed<Snapshot>, VerifyError> {
        let meta = &timestamp.signed.meta["snapshot.json"];
        check_listed(file, "timestamp.json", meta, bytes)?;
        let parsed: Parsed<Snapshot> = signatures::parse(file, bytes)?;
        signatures::check(&self.root.signed, RoleType::Snapshot, file, &parsed)?;
        let snapshot = parsed.signed;
        check_version(file, "timestamp.json", meta, snapshot.signed.version.get())?;
        let Some(targets_meta) = snapshot.signed.meta.get("targets.json") else {
            return Err(VerifyError::Malformed {
                file: file.to_owned(),
                reason: "meta does not list targets.json".to_owned(),
            });
        };
        check_rollback(
            RoleType::Targets,
            self.trusted.targets_version(),
            targets_meta.version.get(),
        )?;
        self.check_expiry(RoleType::Snapshot, snapshot.signed.expires)?;
        Ok(snapshot)
    }

    /// The targets file the snapshot lists: the cached one if it is that
    /// file, else a request.
    fn after_snapshot(
        mut self,
        timestamp: Signed<Timestamp>,
        snapshot: Signed<Snapshot>,
    ) -> Result<LoadStep, VerifyError> {
        let targets_meta = &snapshot.signed.meta["targets.json"];
        let name = self.versioned("targets.json", targets_meta.version.get());
        let max = signed_limit(&name, targets_meta.length, self.limits.max_targets_size)?;
        let signed = targets_meta.length.is_some();
        if let Some(cached) = self.cached.targets.take()
            && cached.len() as u64 <= max
            && let Ok(targets) = self.check_targets(&name, &cached, &snapshot)
        {
            self.accepted.targets = Some(cached);
            return self.done(timestamp, snapshot, targets);
        }
        let mut step = self.need(
            Stage::Targets {
                timestamp: Box::new(timestamp),
                snapshot: Box::new(snapshot),
            },
            name,
            max,
            false,
        )?;
        step.set_max_len_signed(signed);
        Ok(step)
    }

    /// §5.6 (without delegations, which Moho does not use).
    fn targets(
        mut self,
        file: &str,
        bytes: Vec<u8>,
        timestamp: Signed<Timestamp>,
        snapshot: Signed<Snapshot>,
    ) -> Result<LoadStep, VerifyError> {
        let targets = self.check_targets(file, &bytes, &snapshot)?;
        self.accepted.targets = Some(bytes);
        self.done(timestamp, snapshot, targets)
    }

    fn check_targets(
        &self,
        file: &str,
        bytes: &[u8],
        snapshot: &Signed<Snapshot>,
    ) -> Result<Signed<Targets>, VerifyError> {
        let meta = &snapshot.signed.meta["targets.json"];
        check_listed(file, "snapshot.json", meta, bytes)?;
        let parsed: Parsed<Targets> = signatures::parse(file, bytes)?;
        signatures::check(&self.root.signed, RoleType::Targets, file, &parsed)?;
        let targets = parsed.signed;
        check_version(file, "snapshot.json", meta, targets.signed.version.get())?;
        self.check_expiry(RoleType::Targets, targets.signed.expires)?;
        if targets
            .signed
            .delegations
            .as_ref()
            .is_some_and(|d| !d.roles.is_empty() || !d.keys.is_empty())
        {
            return Err(VerifyError::DelegationsUnsupported {
                file: file.to_owned(),
            });
        }
        Ok(targets)
    }

    fn done(
        self,
        timestamp: Signed<Timestamp>,
        snapshot: Signed<Snapshot>,
        targets: Signed<Targets>,
    ) -> Result<LoadStep, VerifyError> {
        let repo = VerifiedRepository::new(
            self.root_json,
            self.root,
            timestamp,
            snapshot,
            targets,
            self.accepted,
        )?;
        Ok(LoadStep::Done(Box::new(repo)))
    }

    fn versioned(&self, file: &str, version: u64) -> String {
        if self.root.signed.consistent_snapshot {
            format!("{version}.{file}")
        } else {
            file.to_owned()
        }
    }

    fn check_expiry(&self, role: RoleType, expires: Instant) -> Result<(), VerifyError> {
        if let Some(now) = self.now
            && expires <= now
        {
            return Err(VerifyError::Expired {
                role,
                expires: expires.to_string(),
                now: now.to_string(),
            });
        }
        Ok(())
    }
}

/// The byte limit for a file whose length another role may have signed: the
/// signed length, which must not exceed the configured maximum (online keys
/// could otherwise announce an endless file).
fn signed_limit(file: &str, signed: Option<u64>, max: u64) -> Result<u64, VerifyError> {
    match signed {
        Some(len) if len > max => Err(VerifyError::TooLarge {
            file: file.to_owned(),
            limit: max,
        }),
        Some(len) => Ok(len),
        None => Ok(max),
    }
}

fn check_rollback(role: RoleType, trusted: u64, offered: u64) -> Result<(), VerifyError> {
    if offered < trusted {
        return Err(VerifyError::Rollback {
            role,
            trusted,
            offered,
        });
    }
    Ok(())
}

fn check_version(
    file: &str,
    referrer: &'static str,
    meta: &Metafile,
    found: u64,
) -> Result<(), VerifyError> {
    if meta.version.get() != found {
        return Err(VerifyError::VersionMismatch {
            file: file.to_owned(),
            referrer,
            expected: meta.version.get(),
            found,
        });
    }
    Ok(())
}

/// The length and hash the referring role signed, when it signed them.
fn check_listed(
    file: &str,
    referrer: &'static str,
    meta: &Metafile,
    bytes: &[u8],
) -> Result<(), VerifyError> {
    if let Some(length) = meta.length
        && length != bytes.len() as u64
    {
        return Err(VerifyError::MetadataLengthMismatch {
            file: file.to_owned(),
            referrer,
            expected: length,
            actual: bytes.len() as u64,
        });
    }
    if let Some(hashes) = &meta.hashes {
        let expected = Sha256Digest::from_slice(hashes.sha256.as_ref()).ok_or_else(|| {
            VerifyError::Malformed {
                file: referrer.to_owned(),
                reason: format!("sha256 of {file} is not 32 bytes"),
            }
        })?;
        let actual = Sha256Digest::of(bytes);
        if actual != expected {
            return Err(VerifyError::MetadataHashMismatch {
                file: file.to_owned(),
                referrer,
                expected,
                actual,
            });
        }
    }
    Ok(())
}
