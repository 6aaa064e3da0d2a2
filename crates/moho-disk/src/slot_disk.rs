//! The narrow interface the agent uses to read and change slot attributes,
//! with the real GPT implementation and a fake that records calls.
//!
//! The agent reads a [`SlotTable`], computes the next one with the pure
//! functions of `moho_core::transitions`, and commits it in one call. The
//! commit is a compare-and-swap: it writes only if the disk still holds the
//! table the change was computed from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use moho_core::layout::{PartitionInfo, identify_slots};
use moho_core::slot_attrs::SlotAttributes;
use moho_core::slot_table::{SlotName, SlotTable};
use moho_core::state_growth::StateGrowth;

use crate::device::Disk;
use crate::error::DiskError;
use crate::gpt_commit::{commit_attributes, commit_state_growth};
use crate::gpt_read::{GptSnapshot, TableHealth, read_gpt};
use crate::kernel::{KernelPartition, KernelRefresh, refresh_kernel_view};

/// Where a slot's bytes are: a byte range of a disk (file or block device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotExtent {
    /// The whole disk.
    pub disk: PathBuf,
    /// Byte offset of the slot's partition.
    pub offset: u64,
    /// Its length in bytes.
    pub length: u64,
}

/// Reads and writes the slot attributes of one disk.
pub trait SlotDisk {
    /// The disk, for messages.
    fn path(&self) -> &Path;
    /// Where slot `name`'s bytes are (as of the last read).
    fn slot_extent(&self, name: SlotName) -> Result<SlotExtent, DiskError>;
    /// Reads the slot table afresh from the disk.
    fn read_slots(&mut self) -> Result<SlotTable, DiskError>;
    /// The health of the GPT copies as of the last read.
    fn health(&self) -> TableHealth;
    /// Writes `next` if the disk still holds `expected`. Only attribute
    /// fields may differ between the two. A table that needs repair is
    /// rewritten even when nothing changed.
    fn commit_slots(&mut self, expected: &SlotTable, next: &SlotTable) -> Result<(), DiskError>;
}

/// A Moho disk's GPT, on an image file or a block device.
#[derive(Debug)]
pub struct GptSlotDisk {
    disk: Disk,
    snapshot: GptSnapshot,
    last_refresh: Option<KernelRefresh>,
}

impl GptSlotDisk {
    /// Opens `path` and checks that it holds a Moho slot pair.
    pub fn open(path: &Path, writable: bool) -> Result<Self, DiskError> {
        let mut disk = Disk::open(path, writable)?;
        let snapshot = read_gpt(&mut disk.file, path, disk.sector_size, disk.size)?;
        let me = Self {
            disk,
            snapshot,
            last_refresh: None,
        };
        me.slots_of(&me.snapshot)?;
        Ok(me)
    }

    /// The snapshot of the last read.
    pub fn snapshot(&self) -> &GptSnapshot {
        &self.snapshot
    }

    /// Whether the disk is a block device.
    pub fn is_block_device(&self) -> bool {
        self.disk.is_block
    }

    /// What the last commit did to the kernel's partition view.
    pub fn last_kernel_refresh(&self) -> Option<&KernelRefresh> {
        self.last_refresh.as_ref()
    }

    /// The byte range of partition `number`.
    pub fn partition_range(&self, number: u32) -> Option<(u64, u64)> {
        let ss = self.snapshot.sector_size;
        self.snapshot
            .partitions
            .get(&number)
            .map(|p| (p.first_lba * ss, (p.last_lba + 1 - p.first_lba) * ss))
    }

    /// Grows `STATE` to the end of the disk (moving the backup GPT there
    /// too), in one commit under the disk lock, then brings the kernel's
    /// view up to date (a mounted `STATE` is resized in place). Writes
    /// nothing when `STATE` already fills the disk and both copies are valid
    /// (else the table is repaired); the filesystem is the caller's to grow
    /// afterwards.
    pub fn grow_state(&mut self) -> Result<StateGrowth, DiskError> {
        let path = self.disk.path.clone();
        self.disk
            .file
            .lock()
            .map_err(|e| DiskError::io(&path, "flock", e))?;
        let result = self.grow_state_locked();
        let unlocked = self.disk.file.unlock();
        let growth = result?;
        unlocked.map_err(|e| DiskError::io(&path, "unlock", e))?;
        self.refresh_kernel()?;
        Ok(growth)
    }

    fn grow_state_locked(&mut self) -> Result<StateGrowth, DiskError> {
        self.reread()?;
        let before = self.slots_of(&self.snapshot)?;
        let repair = self.snapshot.health().needs_repair();
        let growth = commit_state_growth(&mut self.disk.file, &self.disk.path, &self.snapshot)?;
        if matches!(growth, StateGrowth::AlreadyFull { .. }) && !repair {
            return Ok(growth);
        }
        self.reread()?;
        let health = self.snapshot.health();
        let end = self
            .snapshot
            .partitions
            .get(&growth.number())
            .map(|p| p.last_lba);
        if health.needs_repair() || end != Some(growth.final_last_lba()) {
            return Err(DiskError::ReadBackMismatch {
                path: self.disk.path.clone(),
                detail: format!(
                    "after growing STATE: {health}, partition {} ends at {end:?}, expected {}",
                    growth.number(),
                    growth.final_last_lba()
                ),
            });
        }
        let after = self.slots_of(&self.snapshot)?;
        if after != before {
            return Err(DiskError::ReadBackMismatch {
                path: self.disk.path.clone(),
                detail: format!("growing STATE changed the slots: {before:?} -> {after:?}"),
            });
        }
        Ok(growth)
    }

    /// Makes the kernel's partitions of a block device match the GPT.
    pub fn refresh_kernel(&mut self) -> Result<KernelRefresh, DiskError> {
        if !self.disk.is_block {
            return Ok(KernelRefresh::NotABlockDevice);
        }
        let want = kernel_view(&self.snapshot);
        let r = refresh_kernel_view(&self.disk.path, &self.disk.file, &want)?;
        self.last_refresh = Some(r.clone());
        Ok(r)
    }

    fn reread(&mut self) -> Result<(), DiskError> {
        self.snapshot = read_gpt(
            &mut self.disk.file,
            &self.disk.path,
            self.disk.sector_size,
            self.disk.size,
        )?;
        Ok(())
    }

    fn slots_of(&self, snap: &GptSnapshot) -> Result<SlotTable, DiskError> {
        let parts: Vec<PartitionInfo> = snap
            .partitions
            .iter()
            .map(|(&number, p)| PartitionInfo {
                number,
                type_guid: p.part_type_guid.guid,
                partuuid: p.part_guid,
                label: p.name.clone(),
                attrs: SlotAttributes::from_raw(p.flags),
            })
            .collect();
        identify_slots(&parts).map_err(|source| DiskError::NotMohoDisk {
            path: self.disk.path.clone(),
            source,
        })
    }

    fn commit_locked(&mut self, expected: &SlotTable, next: &SlotTable) -> Result<(), DiskError> {
        self.reread()?;
        let current = self.slots_of(&self.snapshot)?;
        if current != *expected {
            return Err(DiskError::ConcurrentChange {
                path: self.disk.path.clone(),
            });
        }
        let mut attrs = BTreeMap::new();
        for name in SlotName::ALL {
            let (old, new) = (current.get(name), next.get(name));
            if (old.partition, &old.label, old.partuuid)
                != (new.partition, &new.label, new.partuuid)
            {
                return Err(DiskError::Unsupported {
                    path: self.disk.path.clone(),
                    what: format!("slot {name}: only attributes may change in a commit"),
                });
            }
            if old.attrs != new.attrs || self.snapshot.health().needs_repair() {
                attrs.insert(new.partition, new.attrs.raw());
            }
        }
        if attrs.is_empty() {
            // Nothing to write, but the caller asked for this table to be
            // in force: make sure the kernel sees its partitions too.
            self.refresh_kernel()?;
            return Ok(());
        }
        if self.snapshot.health().needs_repair() {
            tracing::warn!(
                disk = %self.disk.path.display(),
                health = %self.snapshot.health(),
                "repairing the GPT from the trusted copy"
            );
        }
        commit_attributes(&mut self.disk.file, &self.disk.path, &self.snapshot, &attrs)?;
        self.reread()?;
        let health = self.snapshot.health();
        if health.needs_repair() {
            return Err(DiskError::ReadBackMismatch {
                path: self.disk.path.clone(),
                detail: format!("after commit: {health}"),
            });
        }
        let written = self.slots_of(&self.snapshot)?;
        if written != *next {
            return Err(DiskError::ReadBackMismatch {
                path: self.disk.path.clone(),
                detail: format!("wrote {next:?}, read {written:?}"),
            });
        }
        self.refresh_kernel()?;
        Ok(())
    }
}

fn kernel_view(snap: &GptSnapshot) -> Vec<KernelPartition> {
    let ss = snap.sector_size;
    snap.partitions
        .iter()
        .map(|(&number, p)| KernelPartition {
            number,
            start: p.first_lba * ss,
            length: (p.last_lba + 1 - p.first_lba) * ss,
        })
        .collect()
}

impl SlotDisk for GptSlotDisk {
    fn path(&self) -> &Path {
        &self.disk.path
    }

    fn slot_extent(&self, name: SlotName) -> Result<SlotExtent, DiskError> {
        let table = self.slots_of(&self.snapshot)?;
        let number = table.get(name).partition;
        let (offset, length) =
            self.partition_range(number)
                .ok_or_else(|| DiskError::Unsupported {
                    path: self.disk.path.clone(),
                    what: format!("slot {name}: partition {number} vanished"),
                })?;
        Ok(SlotExtent {
            disk: self.disk.path.clone(),
            offset,
            length,
        })
    }

    fn read_slots(&mut self) -> Result<SlotTable, DiskError> {
        self.reread()?;
        self.slots_of(&self.snapshot)
    }

    fn health(&self) -> TableHealth {
        self.snapshot.health()
    }

    fn commit_slots(&mut self, expected: &SlotTable, next: &SlotTable) -> Result<(), DiskError> {
        let path = self.disk.path.clone();
        // An exclusive BSD lock: other Moho writers wait, and udev does not
        // probe the disk while its table is being rewritten.
        self.disk
            .file
            .lock()
            .map_err(|e| DiskError::io(&path, "flock", e))?;
        let result = self.commit_locked(expected, next);
        let unlocked = self.disk.file.unlock();
        result?;
        unlocked.map_err(|e| DiskError::io(&path, "unlock", e))
    }
}

/// One call made to a [`FakeSlotDisk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotDiskCall {
    /// `read_slots`.
    Read,
    /// `commit_slots(expected, next)`.
    Commit {
        /// What the caller believed was on disk.
        expected: Box<SlotTable>,
        /// What it asked to write.
        next: Box<SlotTable>,
    },
}

/// An in-memory slot disk that records every call, for tests of the code
/// that decides what to write.
#[derive(Debug, Clone)]
pub struct FakeSlotDisk {
    path: PathBuf,
    /// The table "on disk".
    pub table: SlotTable,
    /// Every call, in order.
    pub calls: Vec<SlotDiskCall>,
    /// If set, the next commit fails with an I/O error carrying this text
    /// and leaves the table unchanged.
    pub fail_next_commit: Option<String>,
    /// Where each slot's bytes are (tests point these at files).
    pub extents: BTreeMap<SlotName, SlotExtent>,
}

impl FakeSlotDisk {
    /// A fake disk holding `table`.
    pub fn new(table: SlotTable) -> Self {
        Self {
            path: PathBuf::from("/fake/disk"),
            table,
            calls: Vec::new(),
            fail_next_commit: None,
            extents: BTreeMap::new(),
        }
    }

    /// The tables written so far.
    pub fn commits(&self) -> Vec<&SlotTable> {
        self.calls
            .iter()
            .filter_map(|c| match c {
                SlotDiskCall::Commit { next, .. } => Some(next.as_ref()),
                SlotDiskCall::Read => None,
            })
            .collect()
    }
}

impl SlotDisk for FakeSlotDisk {
    fn path(&self) -> &Path {
        &self.path
    }

    fn slot_extent(&self, name: SlotName) -> Result<SlotExtent, DiskError> {
        self.extents
            .get(&name)
            .cloned()
            .ok_or_else(|| DiskError::Unsupported {
                path: self.path.clone(),
                what: format!("fake disk has no extent for slot {name}"),
            })
    }

    fn read_slots(&mut self) -> Result<SlotTable, DiskError> {
        self.calls.push(SlotDiskCall::Read);
        Ok(self.table.clone())
    }

    fn health(&self) -> TableHealth {
        TableHealth {
            primary: crate::CopyHealth::Valid,
            backup: crate::CopyHealth::Valid,
            diverged: false,
        }
    }

    fn commit_slots(&mut self, expected: &SlotTable, next: &SlotTable) -> Result<(), DiskError> {
        self.calls.push(SlotDiskCall::Commit {
            expected: Box::new(expected.clone()),
            next: Box::new(next.clone()),
        });
        if let Some(msg) = self.fail_next_commit.take() {
            return Err(DiskError::io(
                &self.path,
                "write",
                std::io::Error::other(msg),
            ));
        }
        if self.table != *expected {
            return Err(DiskError::ConcurrentChange {
                path: self.path.clone(),
            });
        }
        self.table = next.clone();
        Ok(())
    }
}
