//! Typed errors of the disk layer; every variant names the disk it is about.

use std::io;
use std::path::PathBuf;

use moho_core::layout::SlotLayoutError;

/// A disk operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The disk could not be opened.
    #[error("{path}: cannot open disk: {source}", path = path.display())]
    Open {
        /// The disk.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A read, write, seek or flush failed.
    #[error("{path}: {op} failed: {source}", path = path.display())]
    Io {
        /// The disk.
        path: PathBuf,
        /// What was being done, with the offset where it matters.
        op: String,
        /// Why.
        source: io::Error,
    },
    /// Neither GPT copy is valid.
    #[error(
        "{path}: no valid GPT (primary: {primary}; backup: {backup})",
        path = path.display()
    )]
    NoValidTable {
        /// The disk.
        path: PathBuf,
        /// What is wrong with the primary copy.
        primary: String,
        /// What is wrong with the backup copy.
        backup: String,
    },
    /// The GPT is valid but not one we can safely edit.
    #[error("{path}: unsupported GPT: {what}", path = path.display())]
    Unsupported {
        /// The disk.
        path: PathBuf,
        /// What is unusual about it.
        what: String,
    },
    /// The GPT does not hold a Moho slot pair.
    #[error("{path}: not a Moho disk: {source}", path = path.display())]
    NotMohoDisk {
        /// The disk.
        path: PathBuf,
        /// Which slot is missing or duplicated.
        source: SlotLayoutError,
    },
    /// The `gpt` crate refused an operation.
    #[error("{path}: {op}: {source}", path = path.display())]
    Gpt {
        /// The disk.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: gpt::GptError,
    },
    /// Someone else changed the slot table between our read and our commit.
    #[error(
        "{path}: slot table changed on disk since it was read (another writer?); nothing written",
        path = path.display()
    )]
    ConcurrentChange {
        /// The disk.
        path: PathBuf,
    },
    /// After the commit, the table read back is not what was written.
    #[error("{path}: read-back after commit does not match: {detail}", path = path.display())]
    ReadBackMismatch {
        /// The disk.
        path: PathBuf,
        /// What differs.
        detail: String,
    },
    /// The kernel's partition view could not be brought up to date.
    #[error("{path}: updating the kernel's partition table failed: {detail}", path = path.display())]
    Kernel {
        /// The disk.
        path: PathBuf,
        /// What failed, with the partition number and errno.
        detail: String,
    },
    /// `STATE` cannot be grown on this table.
    #[error("{path}: cannot grow STATE: {source}", path = path.display())]
    StateGrowth {
        /// The disk.
        path: PathBuf,
        /// Why.
        source: moho_core::state_growth::StateGrowthError,
    },
    /// The layout to create is impossible.
    #[error("{path}: {source}", path = path.display())]
    Layout {
        /// The disk.
        path: PathBuf,
        /// Why.
        source: moho_core::layout::LayoutError,
    },
}

impl DiskError {
    pub(crate) fn io(path: &std::path::Path, op: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            op: op.into(),
            source,
        }
    }
}
