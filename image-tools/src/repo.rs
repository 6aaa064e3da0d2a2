//! The release repository on disk, and how `repo` commands change it.
//!
//! Layout (TUF with consistent snapshots, as `tough` reads it):
//! `metadata/N.root.json`, `metadata/N.targets.json`,
//! `metadata/N.snapshot.json`, `metadata/timestamp.json`, and target files
//! under `targets/<sha256>.<board>/<version>/<file>`.
//!
//! Every command loads the repository with `tough`'s own loader (trusting
//! `metadata/1.root.json` and following the root chain; expiry not enforced,
//! since `refresh` exists to renew expired metadata), computes and signs all
//! new metadata in memory with `tough`'s `SignedRole`, and only then writes:
//! target files first, then new versioned metadata files (never
//! overwriting), and `timestamp.json` last by atomic rename. Until that
//! rename, readers see the previous consistent snapshot; a failure before it
//! leaves at most unreferenced files. Afterwards the result is re-read with
//! `moho-release`, the nodes' verifier, as a self-check.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use moho_release::{Sha256Digest, TrustedState, VerifiedRepository, VerifyError, load_repository};
use serde::Serialize;
use tough::editor::signed::SignedRole;
use tough::schema::{
    Hashes, KeyHolder, Metafile, Role, RoleType, Root, Signed, Snapshot, Targets, Timestamp,
};
use tough::{ExpirationEnforcement, FilesystemTransport, RepositoryLoader};
use url::Url;

use crate::cli::OnlineExpiry;
use crate::keys::{KeyError, KeyRing};
use crate::repo_source::DirSource;

/// The TUF specification version written.
pub const SPEC_VERSION: &str = "1.0.0";

/// Why a repository command refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No repository at the path.
    #[error("{}: not a repository (no metadata/1.root.json; run `image-tools repo init`)", path.display())]
    NotARepo {
        /// The path given.
        path: PathBuf,
    },
    /// `init` on an existing repository.
    #[error("{}: already holds a repository (metadata/ exists); nothing was written", path.display())]
    AlreadyInitialized {
        /// The path given.
        path: PathBuf,
    },
    /// `tough` refused to load the repository.
    #[error("{}: the repository does not load: {source}", path.display())]
    Load {
        /// The repository.
        path: PathBuf,
        /// What `tough` said.
        source: Box<tough::error::Error>,
    },
    /// Not enough keys to sign a role.
    #[error("{}: not enough {role} keys to reach the threshold of {threshold} (the keys of this role in root version {root_version} are needed)", dir.display())]
    NotEnoughKeys {
        /// The keys directory.
        dir: PathBuf,
        /// The role.
        role: RoleType,
        /// Signatures needed.
        threshold: u64,
        /// The root naming the role's keys.
        root_version: u64,
    },
    /// A threshold above the number of keys.
    #[error("{role} threshold {threshold} is more than the {keys} {role} key(s) available")]
    BadThreshold {
        /// The role.
        role: RoleType,
        /// Asked.
        threshold: u64,
        /// Keys.
        keys: usize,
    },
    /// Signing failed in `tough`.
    #[error("signing {role} metadata failed: {source}")]
    Sign {
        /// The role.
        role: RoleType,
        /// Why.
        source: Box<tough::error::Error>,
    },
    /// Key files could not be used.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The image has no usable release manifest.
    #[error("{}: {reason} (build the image with `image-tools build`)", path.display())]
    Manifest {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The image or its chunk index changed since `build`.
    #[error("{}: {reason}; rebuild it", path.display())]
    ImageChanged {
        /// The image.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// The release (board and version) is already published.
    #[error("{name}: already published; releases are immutable, publish a new version")]
    AlreadyPublished {
        /// The target name.
        name: String,
    },
    /// No published image has the version (and board).
    #[error("no published image has version {version}{}", board.as_ref().map(|b| format!(" for board {b}")).unwrap_or_default())]
    UnknownRelease {
        /// The version asked.
        version: String,
        /// The board asked.
        board: Option<String>,
    },
    /// Every matching image is already signed for the channel.
    #[error("{names}: already signed for channel {channel}; nothing to do")]
    AlreadyOnChannel {
        /// The target names.
        names: String,
        /// The channel.
        channel: String,
    },
    /// A channel name that is not a plain name.
    #[error("channel {channel:?}: {source}")]
    BadChannel {
        /// The channel.
        channel: String,
        /// Why.
        source: moho_release::TargetNameError,
    },
    /// A version that is not semver.
    #[error("version {version:?} is not a semantic version: {reason}")]
    BadVersion {
        /// The version.
        version: String,
        /// Why.
        reason: String,
    },
    /// The written repository does not pass the node verifier now (for
    /// instance targets or root metadata expired, which only their offline
    /// keys can renew).
    #[error("{}: written, but nodes would refuse it now: {source}", path.display())]
    SelfCheck {
        /// The repository.
        path: PathBuf,
        /// What the verifier said.
        source: Box<VerifyError>,
    },
    /// Reading or writing failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
}

impl RepoError {
    /// Whether the input was refused (as opposed to a failure of the system).
    pub fn is_bad_input(&self) -> bool {
        match self {
            RepoError::Io { .. } | RepoError::Sign { .. } | RepoError::SelfCheck { .. } => false,
            RepoError::Keys(k) => k.is_bad_input(),
            _ => true,
        }
    }
}

pub(crate) fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> RepoError + use<> {
    let path = path.to_owned();
    move |source| RepoError::Io { path, op, source }
}

/// The two directories of a repository.
#[derive(Debug, Clone)]
pub struct RepoPaths {
    /// The repository directory.
    pub dir: PathBuf,
}

impl RepoPaths {
    /// Paths of the repository at `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// `metadata/`.
    pub fn metadata(&self) -> PathBuf {
        self.dir.join("metadata")
    }

    /// `targets/`.
    pub fn targets(&self) -> PathBuf {
        self.dir.join("targets")
    }
}

/// A tokio runtime for `tough`'s async API (a single thread; blocking file
/// work goes to its blocking pool).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, RepoError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err(Path::new("tokio runtime"), "start"))
}

/// The signed roles of a loaded repository.
#[derive(Debug)]
pub struct Loaded {
    /// The newest root.
    pub root: Signed<Root>,
    /// Targets.
    pub targets: Signed<Targets>,
    /// Snapshot.
    pub snapshot: Signed<Snapshot>,
    /// Timestamp.
    pub timestamp: Signed<Timestamp>,
    /// The current targets file, byte for byte.
    pub targets_bytes: Vec<u8>,
}

/// Loads the repository with `tough`'s loader (see the module docs).
pub fn load(paths: &RepoPaths) -> Result<Loaded, RepoError> {
    let metadata = paths.metadata();
    let root_path = metadata.join("1.root.json");
    let trusted = fs::read(&root_path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            RepoError::NotARepo {
                path: paths.dir.clone(),
            }
        } else {
            io_err(&root_path, "read")(e)
        }
    })?;
    let load_err = |source| RepoError::Load {
        path: paths.dir.clone(),
        source: Box::new(source),
    };
    let base = |dir: &Path| {
        let abs = std::path::absolute(dir).map_err(io_err(dir, "resolve"))?;
        Url::from_directory_path(&abs).map_err(|()| RepoError::Io {
            path: abs.clone(),
            op: "make a file URL",
            source: io::Error::other("not an absolute path"),
        })
    };
    let (metadata_url, targets_url) = (base(&metadata)?, base(&paths.targets())?);
    let repo = runtime()?
        .block_on(
            RepositoryLoader::new(&trusted, metadata_url, targets_url)
                .transport(FilesystemTransport)
                .expiration_enforcement(ExpirationEnforcement::Unsafe)
                .load(),
        )
        .map_err(load_err)?;
    let targets = repo.targets().clone();
    let file = metadata.join(format!("{}.targets.json", targets.signed.version));
    let targets_bytes = fs::read(&file).map_err(io_err(&file, "read"))?;
    Ok(Loaded {
        root: repo.root().clone(),
        targets,
        snapshot: repo.snapshot().clone(),
        timestamp: repo.timestamp().clone(),
        targets_bytes,
    })
}

/// `now + d`, whole seconds, as metadata carries it.
pub fn expires_in(d: Duration) -> jiff::Timestamp {
    let at = SystemTime::now() + d;
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(jiff::Timestamp::MAX)
}

/// `v + 1`.
pub fn next_version(v: NonZeroU64) -> NonZeroU64 {
    v.checked_add(1).unwrap_or(v)
}

/// Signs `role` with the keys of `keys` that `root` names for it; refuses
/// fewer signatures than the threshold.
pub fn sign<T: Role + Serialize + Clone>(
    role: T,
    root: &Root,
    keys: &KeyRing,
) -> Result<SignedRole<T>, RepoError> {
    let rng = SystemRandom::new();
    let role_type = T::TYPE;
    let role_keys = root.roles.get(&role_type).ok_or(RepoError::NotEnoughKeys {
        dir: keys.dir().to_owned(),
        role: role_type,
        threshold: 1,
        root_version: root.version.get(),
    })?;
    let signed = runtime()?
        .block_on(SignedRole::new(
            role,
            &KeyHolder::Root(root.clone()),
            &keys.sources(),
            &rng,
        ))
        .map_err(|source| match source {
            tough::error::Error::SigningKeysNotFound { .. }
            | tough::error::Error::KeysNotFoundInRoot { .. } => RepoError::NotEnoughKeys {
                dir: keys.dir().to_owned(),
                role: role_type,
                threshold: role_keys.threshold.get(),
                root_version: root.version.get(),
            },
            source => RepoError::Sign {
                role: role_type,
                source: Box::new(source),
            },
        })?;
    // tough does not check the root role's threshold (cross-signing); do it here.
    if (signed.signed().signatures.len() as u64) < role_keys.threshold.get() {
        return Err(RepoError::NotEnoughKeys {
            dir: keys.dir().to_owned(),
            role: role_type,
            threshold: role_keys.threshold.get(),
            root_version: root.version.get(),
        });
    }
    Ok(signed)
}

/// A metafile entry (length, SHA-256, version) for `bytes`.
pub fn metafile(bytes: &[u8], version: NonZeroU64) -> Metafile {
    Metafile {
        length: Some(bytes.len() as u64),
        hashes: Some(Hashes {
            sha256: Sha256Digest::of(bytes).as_bytes().to_vec().into(),
            _extra: HashMap::new(),
        }),
        version,
        _extra: HashMap::new(),
    }
}

/// New snapshot and timestamp over `targets_bytes`, signed with the online keys.
pub fn sign_online(
    loaded_snapshot: Option<&Snapshot>,
    loaded_timestamp: Option<&Timestamp>,
    targets_bytes: &[u8],
    targets_version: NonZeroU64,
    root: &Root,
    keys: &KeyRing,
    expiry: &OnlineExpiry,
) -> Result<(SignedRole<Snapshot>, SignedRole<Timestamp>), RepoError> {
    let one = NonZeroU64::MIN;
    let snapshot_version = loaded_snapshot.map_or(one, |s| next_version(s.version));
    let mut snapshot = Snapshot::new(
        SPEC_VERSION.to_owned(),
        snapshot_version,
        expires_in(expiry.snapshot_expires),
    );
    snapshot.meta.insert(
        "targets.json".to_owned(),
        metafile(targets_bytes, targets_version),
    );
    let snapshot = sign(snapshot, root, keys)?;
    let timestamp_version = loaded_timestamp.map_or(one, |t| next_version(t.version));
    let mut timestamp = Timestamp::new(
        SPEC_VERSION.to_owned(),
        timestamp_version,
        expires_in(expiry.timestamp_expires),
    );
    timestamp.meta.insert(
        "snapshot.json".to_owned(),
        metafile(snapshot.buffer(), snapshot_version),
    );
    let timestamp = sign(timestamp, root, keys)?;
    Ok((snapshot, timestamp))
}

/// Everything a command publishes, signed and in memory.
#[derive(Debug, Default)]
pub struct Publication {
    /// Target files to place: (source file, target name, sha256).
    pub target_files: Vec<(PathBuf, String, Sha256Digest)>,
    /// Target contents to place from memory: (bytes, target name).
    pub target_bytes: Vec<(Vec<u8>, String)>,
    /// Metadata files to create (never overwrite): (file name, bytes).
    pub versioned: Vec<(String, Vec<u8>)>,
    /// The new `timestamp.json`.
    pub timestamp: Vec<u8>,
}

impl Publication {
    /// Writes it all (see the module docs for the order).
    pub fn write(&self, paths: &RepoPaths) -> Result<(), RepoError> {
        let targets = paths.targets();
        for (src, name, sha) in &self.target_files {
            let dest = targets.join(format!("{sha}.{name}"));
            place(&dest, |tmp| fs::copy(src, tmp).map(drop))?;
        }
        for (bytes, name) in &self.target_bytes {
            let dest = targets.join(format!("{}.{name}", Sha256Digest::of(bytes)));
            place(&dest, |tmp| fs::write(tmp, bytes))?;
        }
        let metadata = paths.metadata();
        for (file, bytes) in &self.versioned {
            let path = metadata.join(file);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io_err(&path, "create (another publication may be running)"))?;
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .map_err(io_err(&path, "write"))?;
        }
        let ts = metadata.join("timestamp.json");
        place_replacing(&ts, &self.timestamp)?;
        File::open(&metadata)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&metadata, "fsync directory"))
    }
}

/// Creates `dest` (and its directories) through a temporary file; keeps an
/// existing `dest`, whose name already is its content hash.
fn place(dest: &Path, fill: impl FnOnce(&Path) -> io::Result<()>) -> Result<(), RepoError> {
    if dest.exists() {
        return Ok(());
    }
    let dir = crate::build::parent_dir(dest);
    fs::create_dir_all(&dir).map_err(io_err(&dir, "create directory"))?;
    let tmp = tempfile::Builder::new()
        .prefix(".moho-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(&dir)
        .map_err(io_err(&dir, "create temporary file"))?;
    fill(tmp.path()).map_err(io_err(dest, "write"))?;
    File::open(tmp.path())
        .and_then(|f| f.sync_all())
        .map_err(io_err(tmp.path(), "fsync"))?;
    tmp.persist(dest).map_err(|e| RepoError::Io {
        path: dest.to_owned(),
        op: "rename into place",
        source: e.error,
    })?;
    Ok(())
}

/// Replaces `dest` atomically with `bytes`.
fn place_replacing(dest: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    let dir = crate::build::parent_dir(dest);
    let mut tmp = tempfile::Builder::new()
        .prefix(".moho-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(&dir)
        .map_err(io_err(&dir, "create temporary file"))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err(tmp.path(), "write"))?;
    tmp.persist(dest).map_err(|e| RepoError::Io {
        path: dest.to_owned(),
        op: "rename into place",
        source: e.error,
    })?;
    Ok(())
}

/// Re-reads the repository as a node would (trusting `1.root.json`, at the
/// current time) to prove what was written verifies.
pub fn self_check(paths: &RepoPaths) -> Result<VerifiedRepository, RepoError> {
    let metadata = paths.metadata();
    let root_path = metadata.join("1.root.json");
    let root = fs::read(&root_path).map_err(io_err(&root_path, "read"))?;
    load_repository(
        &DirSource::new(&metadata),
        &root,
        &TrustedState::default(),
        SystemTime::now(),
    )
    .map_err(|source| RepoError::SelfCheck {
        path: paths.dir.clone(),
        source: Box::new(source),
    })
}
