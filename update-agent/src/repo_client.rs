//! The agent's TUF client: loads and verifies the signed repository through
//! a [`Transport`] with the shared verifier (`moho_release`), and keeps its
//! rollback protection in the state directory.
//!
//! `tuf/root.json` holds the newest root the node has verified (the root
//! shipped in the OS, `repository.root`, is used when it is newer);
//! `tuf/trusted.json` the versions of timestamp, snapshot and targets last
//! accepted. Both are replaced atomically after every successful load, so a
//! crash can never roll the node's view of the repository back.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use moho_release::{TargetInfo, TrustedState, VerifiedRepository, VerifyError, load_repository};
use url::Url;

use crate::atomic_file::{AtomicFileError, read_optional, write_atomic};
use crate::fetch::metadata::TransportSource;
use crate::fetch::{FetchError, Transport};

/// Loading or reading the repository failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The trusted root file could not be read.
    #[error("{}: cannot read the trusted root: {source}", path.display())]
    Root {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The metadata did not verify.
    #[error("repository {url}: {source}")]
    Verify {
        /// The metadata URL.
        url: Url,
        /// What is wrong (the attack).
        source: VerifyError,
    },
    /// A target could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A target is missing from the server.
    #[error("{0}: not found on the server")]
    Missing(Url),
    /// The rollback state could not be saved or read.
    #[error(transparent)]
    State(#[from] AtomicFileError),
    /// The rollback state file is not ours.
    #[error("{}: corrupt ({message}); delete it only if you trust the repository", path.display())]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Where the repository is and where the node keeps its trust.
#[derive(Debug)]
pub struct RepoClient<'a> {
    /// How bytes are fetched.
    pub transport: &'a dyn Transport,
    /// Metadata base URL.
    pub metadata_url: &'a Url,
    /// Targets base URL.
    pub targets_url: &'a Url,
    /// The root shipped with the OS.
    pub shipped_root: &'a Path,
    /// The agent's state directory.
    pub state_dir: &'a Path,
}

fn root_version(bytes: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["signed"]["version"].as_u64())
        .unwrap_or(0)
}

impl RepoClient<'_> {
    fn tuf_dir(&self) -> PathBuf {
        self.state_dir.join("tuf")
    }

    /// The newest trusted root: persisted or shipped, whichever is newer.
    fn trusted_root(&self) -> Result<Vec<u8>, RepoError> {
        let shipped = std::fs::read(self.shipped_root).map_err(|source| RepoError::Root {
            path: self.shipped_root.to_owned(),
            source,
        })?;
        let persisted = read_optional(&self.tuf_dir().join("root.json"))?;
        Ok(match persisted {
            Some(p) if root_version(&p) > root_version(&shipped) => p,
            _ => shipped,
        })
    }

    fn trusted_state(&self) -> Result<TrustedState, RepoError> {
        let path = self.tuf_dir().join("trusted.json");
        match read_optional(&path)? {
            None => Ok(TrustedState::default()),
            Some(b) => serde_json::from_slice(&b).map_err(|e| RepoError::CorruptState {
                path,
                message: e.to_string(),
            }),
        }
    }

    /// Loads and verifies the repository as of `now`, then persists the
    /// newest root and the accepted metadata versions.
    pub fn load(&self, now: SystemTime) -> Result<VerifiedRepository, RepoError> {
        let root = self.trusted_root()?;
        let state = self.trusted_state()?;
        let source = TransportSource {
            transport: self.transport,
            base: self.metadata_url,
        };
        let repo =
            load_repository(&source, &root, &state, now).map_err(|source| RepoError::Verify {
                url: self.metadata_url.clone(),
                source,
            })?;
        if repo.root_json() != root.as_slice() {
            write_atomic(&self.tuf_dir().join("root.json"), repo.root_json())?;
        }
        let json =
            serde_json::to_vec(&repo.trusted_state()).map_err(|e| RepoError::CorruptState {
                path: self.tuf_dir().join("trusted.json"),
                message: e.to_string(),
            })?;
        write_atomic(&self.tuf_dir().join("trusted.json"), &json)?;
        Ok(repo)
    }

    /// The URL of a target.
    pub fn target_url(&self, info: &TargetInfo) -> Result<Url, RepoError> {
        self.targets_url.join(info.path()).map_err(|e| {
            RepoError::Fetch(FetchError::Transport {
                url: self.targets_url.clone(),
                message: format!("target path {:?}: {e}", info.path()),
            })
        })
    }

    /// Fetches a small target whole and checks its length and hash.
    pub fn fetch_small_target(&self, info: &TargetInfo) -> Result<Vec<u8>, RepoError> {
        let url = self.target_url(info)?;
        let body = self
            .transport
            .get(&url, None)?
            .ok_or_else(|| RepoError::Missing(url.clone()))?;
        let mut bytes = Vec::new();
        body.take(info.length().saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| FetchError::Io {
                url: url.clone(),
                source,
            })?;
        info.verify_bytes(&bytes)
            .map_err(|source| RepoError::Verify { url, source })?;
        Ok(bytes)
    }
}
