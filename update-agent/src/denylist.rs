//! The persistent local deny list (DESIGN §3.11): versions that failed to
//! boot on this node and must not be installed again, with why and how often.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::{AtomicFileError, read_optional, write_atomic};

/// One denied version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denied {
    /// Why it was denied.
    pub reason: String,
    /// How many times it failed.
    pub count: u32,
    /// When it was last denied (RFC 3339).
    pub last: String,
}

/// The deny list file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DenyListError {
    /// I/O.
    #[error(transparent)]
    Io(#[from] AtomicFileError),
    /// Not a deny list.
    #[error("{}: corrupt deny list: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Versions this node refuses to install.
#[derive(Debug, Clone, Default)]
pub struct DenyList {
    path: PathBuf,
    /// Version → entry.
    pub entries: BTreeMap<String, Denied>,
}

impl DenyList {
    /// Loads `denylist.json` from `state_dir` (empty if absent).
    pub fn load(state_dir: &Path) -> Result<Self, DenyListError> {
        let path = state_dir.join("denylist.json");
        let entries = match read_optional(&path)? {
            None => BTreeMap::new(),
            Some(b) => serde_json::from_slice(&b).map_err(|e| DenyListError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?,
        };
        Ok(Self { path, entries })
    }

    /// The entry for `version`, if denied.
    pub fn get(&self, version: &str) -> Option<&Denied> {
        self.entries.get(version)
    }

    /// Denies `version` (or counts another failure) and saves.
    pub fn deny(&mut self, version: &str, reason: &str, when: &str) -> Result<(), DenyListError> {
        let e = self.entries.entry(version.to_owned()).or_insert(Denied {
            reason: reason.to_owned(),
            count: 0,
            last: when.to_owned(),
        });
        e.count += 1;
        e.reason = reason.to_owned();
        e.last = when.to_owned();
        self.save()
    }

    /// Forgets `version`; returns whether it was denied.
    pub fn clear(&mut self, version: &str) -> Result<bool, DenyListError> {
        let was = self.entries.remove(version).is_some();
        self.save()?;
        Ok(was)
    }

    fn save(&self) -> Result<(), DenyListError> {
        let bytes =
            serde_json::to_vec_pretty(&self.entries).map_err(|e| DenyListError::Corrupt {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        write_atomic(&self.path, &bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_persist_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = DenyList::load(dir.path()).unwrap();
        d.deny("1.2.0", "rolled back", "2026-11-22T00:00:00Z")
            .unwrap();
        d.deny("1.2.0", "rolled back", "2026-11-23T00:00:00Z")
            .unwrap();
        let again = DenyList::load(dir.path()).unwrap();
        assert_eq!(again.get("1.2.0").unwrap().count, 2);
        assert!(again.get("1.3.0").is_none());
    }
}
