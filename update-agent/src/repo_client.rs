//! The agent's TUF client: loads and verifies the signed repository through
//! a [`Transport`] with the shared verifier (`moho_release`), and keeps its
//! rollback protection in the state directory.
//!
//! `tuf/root.json` holds the newest root the node has verified (the root
//! shipped in the OS, `repository.root`, is used when it is newer);
//! `tuf/trusted.json` the versions of timestamp, snapshot and targets last
//! accepted. Both are replaced atomically after every successful load, so a
//! crash can never roll the node's view of the repository back.
//! `tuf/timestamp.json`, `tuf/snapshot.json` and `tuf/targets.json` keep
//! those files themselves, so that a check whose timestamp has the trusted
//! version changes nothing and fetches nothing more, and an unchanged
//! snapshot or targets file is not downloaded again
//! (`moho_release::TrustedMetadata`). They are a cache: each is verified
//! again before it is used, and one that fails is fetched.
//!
//! Targets are read where the TUF specification puts them, or from the
//! legacy layout of repositories made by older tools
//! (`moho_release::layout`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use moho_release::layout::Layout;
use moho_release::{
    TargetInfo, TrustedMetadata, TrustedState, VerifiedRepository, VerifyError,
    load_repository_with,
};
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
    /// The layout the last small target was found in (see
    /// [`target_url`](Self::target_url)).
    found_in: OnceLock<Layout>,
}

fn root_version(bytes: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v["signed"]["version"].as_u64())
        .unwrap_or(0)
}

impl<'a> RepoClient<'a> {
    /// A client of the repository at `metadata_url`/`targets_url`, trusting
    /// `shipped_root` and keeping its state in `state_dir`.
    pub fn new(
        transport: &'a dyn Transport,
        metadata_url: &'a Url,
        targets_url: &'a Url,
        shipped_root: &'a Path,
        state_dir: &'a Path,
    ) -> Self {
        Self {
            transport,
            metadata_url,
            targets_url,
            shipped_root,
            state_dir,
            found_in: OnceLock::new(),
        }
    }

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

    /// The metadata files kept from the last load (a cache, see the module docs).
    fn kept_metadata(&self) -> Result<TrustedMetadata, RepoError> {
        let dir = self.tuf_dir();
        Ok(TrustedMetadata {
            timestamp: read_optional(&dir.join("timestamp.json"))?,
            snapshot: read_optional(&dir.join("snapshot.json"))?,
            targets: read_optional(&dir.join("targets.json"))?,
        })
    }

    /// Loads and verifies the repository as of `now`, then persists the
    /// newest root, the accepted metadata files and their versions.
    pub fn load(&self, now: SystemTime) -> Result<VerifiedRepository, RepoError> {
        let root = self.trusted_root()?;
        let state = self.trusted_state()?;
        let kept = self.kept_metadata()?;
        let source = TransportSource {
            transport: self.transport,
            base: self.metadata_url,
        };
        let repo = load_repository_with(&source, &root, &state, &kept, now).map_err(|source| {
            RepoError::Verify {
                url: self.metadata_url.clone(),
                source,
            }
        })?;
        if repo.root_json() != root.as_slice() {
            write_atomic(&self.tuf_dir().join("root.json"), repo.root_json())?;
        }
        let accepted = repo.trusted_metadata();
        for (file, new, old) in [
            ("timestamp.json", &accepted.timestamp, &kept.timestamp),
            ("snapshot.json", &accepted.snapshot, &kept.snapshot),
            ("targets.json", &accepted.targets, &kept.targets),
        ] {
            if let Some(bytes) = new
                && new != old
            {
                write_atomic(&self.tuf_dir().join(file), bytes)?;
            }
        }
        let json =
            serde_json::to_vec(&repo.trusted_state()).map_err(|e| RepoError::CorruptState {
                path: self.tuf_dir().join("trusted.json"),
                message: e.to_string(),
            })?;
        write_atomic(&self.tuf_dir().join("trusted.json"), &json)?;
        Ok(repo)
    }

    /// The URL of `path` below the targets base URL.
    fn join_target(&self, path: &str) -> Result<Url, RepoError> {
        self.targets_url.join(path).map_err(|e| {
            RepoError::Fetch(FetchError::Transport {
                url: self.targets_url.clone(),
                message: format!("target path {path:?}: {e}"),
            })
        })
    }

    /// The URL of a target: where the TUF specification puts it
    /// (`dir/HASH.basename`), or where repositories made by older tools
    /// have it (`HASH.dir/basename`). The layout is the one the release's
    /// chunk index was found in ([`fetch_small_target`](Self::fetch_small_target)
    /// comes first in an install; publishers write and migrate an image
    /// before its chunk index), so the image costs no extra request; without
    /// it, a one-byte request tells the layouts apart.
    pub fn target_url(&self, info: &TargetInfo) -> Result<Url, RepoError> {
        if let Some(layout) = self.found_in.get() {
            return self.join_target(&info.path_in(*layout));
        }
        let first = self.join_target(&info.path())?;
        if info.length() == 0 {
            return Ok(first);
        }
        for layout in [Layout::Spec, Layout::Legacy] {
            let url = self.join_target(&info.path_in(layout))?;
            if self.transport.get(&url, Some(0..1))?.is_some() {
                return Ok(url);
            }
        }
        Err(RepoError::Missing(first))
    }

    /// Fetches a small target whole and checks its length and hash (from
    /// either layout, like [`target_url`](Self::target_url)).
    pub fn fetch_small_target(&self, info: &TargetInfo) -> Result<Vec<u8>, RepoError> {
        let mut found = None;
        for layout in [Layout::Spec, Layout::Legacy] {
            let url = self.join_target(&info.path_in(layout))?;
            if let Some(body) = self.transport.get(&url, None)? {
                found = Some((layout, url, body));
                break;
            }
        }
        let Some((layout, url, body)) = found else {
            return Err(RepoError::Missing(self.join_target(&info.path())?));
        };
        let _ = self.found_in.set(layout);
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
