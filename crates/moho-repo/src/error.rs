//! Why a repository edit was refused or failed.
//!
//! Refusals of the input (a name nodes would refuse, a release already
//! published, too few keys) are told apart from failures of the system
//! (`is_bad_input`), because the CLI maps them to different exit codes and a
//! refusal always comes before anything was written.

use std::io;
use std::path::{Path, PathBuf};

use moho_release::{TargetNameError, VerifyError};
use tough::schema::RoleType;

use crate::keys::KeyError;

/// Why a repository edit refused or failed.
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
    /// The current repository does not load (bad chain, signatures, names...).
    #[error("{what}: the repository does not load: {source}")]
    Load {
        /// The repository (a path, or what the caller calls it).
        what: String,
        /// What the verifier said.
        source: Box<VerifyError>,
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
    /// A release needs at least one channel.
    #[error("a release must be signed for at least one channel")]
    NoChannel,
    /// A channel name that is not a plain name.
    #[error("channel {channel:?}: {source}")]
    BadChannel {
        /// The channel.
        channel: String,
        /// Why.
        source: TargetNameError,
    },
    /// A board name that is not a plain name.
    #[error("board {board:?}: {source}")]
    BadBoard {
        /// The board.
        board: String,
        /// Why.
        source: TargetNameError,
    },
    /// A board that passes as a target name but that no node could name in
    /// a check-in (too long for the node protocol).
    #[error("board {board:?}: nodes could not check in for it: {source}")]
    BoardNodesCannotName {
        /// The board.
        board: String,
        /// The node protocol's rule.
        source: moho_protocol::names::NameError,
    },
    /// A version that is not semver.
    #[error("version {version:?} is not a semantic version: {reason}")]
    BadVersion {
        /// The version.
        version: String,
        /// Why.
        reason: String,
    },
    /// A target name nodes would refuse (and with it the whole repository).
    #[error("target name {name:?} would make every node refuse the repository: {source}")]
    BadTargetName {
        /// The name (board/version/file).
        name: String,
        /// Why.
        source: TargetNameError,
    },
    /// A chunk size nodes would refuse.
    #[error("chunk size {0} is not a power of two between 4 KiB and 1 GiB")]
    BadChunkSize(u64),
    /// A target larger than nodes accept.
    #[error("{name}: {length} bytes is more than the {limit} bytes nodes accept")]
    TooLarge {
        /// The target name.
        name: String,
        /// Its length.
        length: u64,
        /// The nodes' limit.
        limit: u64,
    },
    /// A file name in the repository longer than file systems store.
    #[error("{}: the file name component is {len} bytes, more than the {limit} a file system stores", path.display())]
    FileNameTooLong {
        /// The path that would be written.
        path: PathBuf,
        /// The longest component's length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The edited repository would not pass the nodes' verifier: nothing
    /// was written.
    #[error("nodes would refuse the repository with this change, so nothing was written: {source}")]
    NodesWouldRefuse {
        /// What the verifier said.
        source: Box<VerifyError>,
    },
    /// The written repository does not pass the node verifier now.
    #[error("{}: written, but nodes would refuse it now: {source}", path.display())]
    SelfCheck {
        /// The repository.
        path: PathBuf,
        /// What the verifier said.
        source: Box<VerifyError>,
    },
    /// A signed target has no file in either layout.
    #[error("target {name}: no file at {} (nor at the legacy {}); nothing was changed", spec.display(), legacy.display())]
    TargetFileMissing {
        /// The target name.
        name: String,
        /// Where the specification's layout puts it.
        spec: PathBuf,
        /// Where the legacy layout put it.
        legacy: PathBuf,
    },
    /// A target's file differs from what the targets metadata signs.
    #[error("target {name}: {}: {problem}; nothing was changed", path.display())]
    TargetFileCorrupt {
        /// The target name.
        name: String,
        /// The file.
        path: PathBuf,
        /// What differs.
        problem: String,
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

/// Wraps an I/O error with its path and what was being done.
pub(crate) fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> RepoError + use<> {
    let path = path.to_owned();
    move |source| RepoError::Io { path, op, source }
}
