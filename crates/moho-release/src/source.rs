//! Where metadata comes from: a narrow synchronous trait the caller
//! implements over its transport, an in-memory implementation that records
//! what was asked, and the loop that drives a [`RepositoryLoad`] with it.
//!
//! Async callers (the agent over HTTPS) drive [`RepositoryLoad`] themselves:
//! the loop in [`load_repository`] is five lines.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use crate::error::{FetchError, VerifyError};
use crate::load::{LoadStep, RepositoryLoad};
use crate::repository::{TrustedMetadata, TrustedState, VerifiedRepository};

/// Delivers repository metadata files by name (relative to the metadata base URL).
pub trait MetadataSource {
    /// The file's bytes, `Ok(None)` if the repository has no such file.
    /// Implementations should stop reading after `max_len + 1` bytes; longer
    /// answers are refused anyway.
    fn fetch(&self, file: &str, max_len: u64) -> Result<Option<Vec<u8>>, FetchError>;
}

/// Loads and verifies a repository from `source` (see [`RepositoryLoad`]).
pub fn load_repository(
    source: &dyn MetadataSource,
    trusted_root: &[u8],
    trusted: &TrustedState,
    now: SystemTime,
) -> Result<VerifiedRepository, VerifyError> {
    drive(source, RepositoryLoad::start(trusted_root, trusted, now)?)
}

/// [`load_repository`] re-using the metadata the client accepted last
/// (see [`TrustedMetadata`] and [`RepositoryLoad::start_with_metadata`]).
pub fn load_repository_with(
    source: &dyn MetadataSource,
    trusted_root: &[u8],
    trusted: &TrustedState,
    metadata: &TrustedMetadata,
    now: SystemTime,
) -> Result<VerifiedRepository, VerifyError> {
    drive(
        source,
        RepositoryLoad::start_with_metadata(trusted_root, trusted, metadata.clone(), now)?,
    )
}

/// Loads a repository for a publishing tool: every check of
/// [`load_repository`] except expiry (see [`RepositoryLoad::start_for_publishing`]).
pub fn load_for_publishing(
    source: &dyn MetadataSource,
    trusted_root: &[u8],
) -> Result<VerifiedRepository, VerifyError> {
    drive(source, RepositoryLoad::start_for_publishing(trusted_root)?)
}

fn drive(
    source: &dyn MetadataSource,
    mut load: RepositoryLoad,
) -> Result<VerifiedRepository, VerifyError> {
    loop {
        let request = load.request();
        let bytes = source
            .fetch(&request.file, request.max_len)
            .map_err(|source| VerifyError::Fetch {
                file: request.file.clone(),
                source,
            })?;
        match load.supply(bytes)? {
            LoadStep::Need(next) => load = *next,
            LoadStep::Done(repo) => return Ok(*repo),
        }
    }
}

/// Metadata held in memory (uploaded files, test fixtures); records every
/// file asked for, in order.
#[derive(Debug, Default)]
pub struct MemorySource {
    files: BTreeMap<String, Vec<u8>>,
    asked: Mutex<Vec<String>>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a file.
    pub fn insert(&mut self, file: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.files.insert(file.into(), bytes.into());
    }

    /// Removes a file.
    pub fn remove(&mut self, file: &str) -> Option<Vec<u8>> {
        self.files.remove(file)
    }

    /// A file's bytes.
    pub fn get(&self, file: &str) -> Option<&[u8]> {
        self.files.get(file).map(Vec::as_slice)
    }

    /// Every file name held.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// The files asked for so far, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl MetadataSource for MemorySource {
    fn fetch(&self, file: &str, _max_len: u64) -> Result<Option<Vec<u8>>, FetchError> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(file.to_owned());
        }
        Ok(self.files.get(file).cloned())
    }
}
