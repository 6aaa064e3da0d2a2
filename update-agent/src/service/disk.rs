//! The node's disk as the services use it, opened once: the slot table
//! behind `moho_disk::SlotDisk` (the real GPT, or a recording fake) and the
//! slots' bytes ([`SlotFile`], opened on first use and kept). The daemon
//! holds one for its whole life; a CLI command opens one per run.

use std::path::Path;

use moho_core::slot_table::SlotName;
use moho_disk::{DiskError, GptSlotDisk, SlotDisk};

use crate::install::slot_io::{SlotFile, SlotIo, SlotIoError};

/// The slot table and the slots' bytes of one disk.
pub struct NodeDisk {
    table: Box<dyn SlotDisk + Send>,
    bytes: Option<SlotFile>,
    writable: bool,
}

impl std::fmt::Debug for NodeDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeDisk")
            .field("disk", &self.table.path())
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

/// The slots' bytes could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum NodeDiskError {
    /// The slot's place on the disk.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// Opening the disk for slot I/O.
    #[error(transparent)]
    Io(#[from] SlotIoError),
}

impl NodeDisk {
    /// Opens the GPT disk at `path` (for writing when `writable`).
    pub fn open(path: &Path, writable: bool) -> Result<Self, DiskError> {
        Ok(Self::new(
            Box::new(GptSlotDisk::open(path, writable)?),
            writable,
        ))
    }

    /// Wraps a slot table (a fake in tests); slot bytes are read from
    /// where its extents say.
    pub fn new(table: Box<dyn SlotDisk + Send>, writable: bool) -> Self {
        Self {
            table,
            bytes: None,
            writable,
        }
    }

    /// The slot table.
    pub fn table(&mut self) -> &mut dyn SlotDisk {
        self.table.as_mut()
    }

    /// The disk, for messages.
    pub fn path(&self) -> &Path {
        self.table.path()
    }

    /// Slot `slot`'s bytes, through the disk opened once.
    pub fn slot_io(&mut self, slot: SlotName) -> Result<SlotIo, NodeDiskError> {
        let extent = self.table.slot_extent(slot)?;
        let file = match &self.bytes {
            Some(f) if f.path() == extent.disk => f.clone(),
            _ => {
                let f = SlotFile::open(&extent.disk, self.writable)?;
                self.bytes = Some(f.clone());
                f
            }
        };
        Ok(file.slot(&extent))
    }
}
