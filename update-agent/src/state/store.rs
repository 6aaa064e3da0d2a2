//! The agent state on disk: `state.json` in the state directory, written
//! atomically so a crash leaves either the old or the new state.

use std::path::{Path, PathBuf};

use crate::atomic_file::{AtomicFileError, read_optional, write_atomic};

use super::machine::AgentState;

/// Where and how the state is kept.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
}

/// The state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// I/O.
    #[error(transparent)]
    Io(#[from] AtomicFileError),
    /// The file holds something else.
    #[error("{}: not an agent state ({source}); move it away to start afresh", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

impl StateStore {
    /// The store in `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("state.json"),
        }
    }

    /// The persisted state; `Idle` when none was ever written.
    pub fn load(&self) -> Result<AgentState, StoreError> {
        match read_optional(&self.path)? {
            None => Ok(AgentState::Idle),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Persists `state`.
    pub fn save(&self, state: &AgentState) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            source,
        })?;
        write_atomic(&self.path, &bytes)?;
        Ok(())
    }
}
