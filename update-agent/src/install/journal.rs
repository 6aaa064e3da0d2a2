//! The install journal: which image is being written to which slot, saved
//! once before the first byte. After a crash, a journal that matches the
//! chosen image and a slot that is still cleared mean "resume": every chunk
//! already in the slot is re-verified against the signed chunk index and
//! only the rest is fetched. The slot's own bytes are the progress record.

use std::path::{Path, PathBuf};

use moho_core::slot_table::SlotName;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::atomic_file::{AtomicFileError, read_optional, write_atomic};

/// An install under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// Image target name.
    pub target: String,
    /// Signed SHA-256 of the image (hex).
    pub image_sha256: String,
    /// Chunk size of its index.
    pub chunk_size: u64,
    /// The slot written.
    pub slot: SlotName,
    /// That slot's PARTUUID (a different disk means a different install).
    pub slot_partuuid: Uuid,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("install.json")
}

/// The journal, if an install was under way (an unreadable one is ignored:
/// the worst case is a fresh start).
pub fn load(state_dir: &Path) -> Result<Option<Journal>, AtomicFileError> {
    Ok(read_optional(&path(state_dir))?.and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Records the install about to start.
pub fn save(state_dir: &Path, j: &Journal) -> Result<(), AtomicFileError> {
    let bytes = serde_json::to_vec_pretty(j).unwrap_or_default();
    write_atomic(&path(state_dir), &bytes)
}

/// Forgets the install (it finished, or was abandoned).
pub fn remove(state_dir: &Path) -> Result<(), AtomicFileError> {
    match std::fs::remove_file(path(state_dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AtomicFileError {
            path: path(state_dir),
            op: "removing",
            source: e,
        }),
        _ => Ok(()),
    }
}
