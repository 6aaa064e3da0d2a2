//! The signed repository on the server side: where the served files live,
//! loading and verifying it with `moho-release` against the server's
//! trusted root, syncing its releases into the database, and publishing new
//! releases atomically.
//!
//! The metadata nodes are served comes from the database ([`stored`]): the
//! same on every replica. Layout of `--repo DIR` (the targets, and the
//! metadata the server imports): either a plain TUF repository
//! (`DIR/metadata`, `DIR/targets`, managed by someone else; a sync imports
//! its metadata when it is newer than the stored one), or, once the server
//! has published into it, generations `DIR/generations/N/{metadata,targets}`
//! with the symlink `DIR/current` naming the one whose targets are served. A
//! publication is a new generation (hard links to the unchanged files plus
//! the uploaded ones) that becomes visible only after it verified, in one
//! database transaction — nodes never see a half-uploaded release.

pub mod publish;
pub mod refresh;
pub mod source;
pub mod stored;
pub mod sync;

use std::path::{Path, PathBuf};

/// Why a repository operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The server was started without a trusted root.
    #[error(
        "no trusted root configured: start the server with --trusted-root FILE (the repository's 1.root.json)"
    )]
    NoTrustedRoot,
    /// Verification refused the repository.
    #[error("repository does not verify against the trusted root: {0}")]
    Verify(#[from] moho_release::VerifyError),
    /// A signed target file is missing or differs from its signed hash/length.
    #[error("target {name}: {problem}")]
    Target {
        /// Target name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// Another publication (from another replica, or a re-signing) was
    /// served while this one was verified; nothing of this one is served.
    #[error(
        "another publication was served meanwhile (timestamp version {served}, this one has {ours}): nothing changed, publish again"
    )]
    Superseded {
        /// Timestamp version of this publication.
        ours: u64,
        /// Timestamp version served now.
        served: u64,
    },
    /// An upload id or path that does not exist or is not allowed.
    #[error("{0}")]
    BadUpload(String),
    /// The database refused the synced list.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// File system failure.
    #[error("{path}: {source}")]
    Io {
        /// Path concerned.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Wraps an I/O error with its path.
pub fn io_err(path: &Path) -> impl Fn(std::io::Error) -> RepoError + '_ {
    move |source| RepoError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The directory currently served: `DIR/current` if the server manages
/// generations, else `DIR` itself.
pub fn served_root(repo_dir: &Path) -> PathBuf {
    let current = repo_dir.join("current");
    if current.exists() {
        current
    } else {
        repo_dir.to_owned()
    }
}
