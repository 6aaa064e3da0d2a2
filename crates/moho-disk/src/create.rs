//! Writing a fresh Moho partition table (DESIGN §2) onto a disk: protective
//! MBR, primary and backup GPT, the four partitions of a [`DiskPlan`], and
//! the initial slot attributes. Filesystems and slot contents are the
//! caller's business.

use std::collections::BTreeMap;
use std::path::Path;

use gpt::GptConfig;
use gpt::mbr::ProtectiveMBR;
use gpt::partition::Partition;
use moho_core::layout::DiskPlan;
use moho_core::slot_attrs::SlotAttributes;
use uuid::Uuid;

use crate::device::{BlockIo, Disk};
use crate::error::DiskError;
use crate::gpt_read::lb_size;
use crate::kernel::KernelRefresh;
use crate::slot_disk::GptSlotDisk;

/// The GUIDs a new disk gets; random unless the caller wants them fixed
/// (reproducible images).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskGuids {
    /// The disk GUID.
    pub disk: Uuid,
    /// Unique partition GUIDs of partitions 1–4.
    pub partitions: [Uuid; 4],
}

impl DiskGuids {
    /// Fresh random GUIDs.
    pub fn random() -> Self {
        Self {
            disk: Uuid::new_v4(),
            partitions: [
                Uuid::new_v4(),
                Uuid::new_v4(),
                Uuid::new_v4(),
                Uuid::new_v4(),
            ],
        }
    }
}

/// Initial attributes of the two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialSlots {
    /// Slot A.
    pub a: SlotAttributes,
    /// Slot B.
    pub b: SlotAttributes,
}

/// Writes the partition table of `plan` onto the disk at `path`, which must
/// already be at least `plan.request.disk_size` bytes.
pub fn create_layout(
    path: &Path,
    plan: &DiskPlan,
    slots: InitialSlots,
    guids: DiskGuids,
) -> Result<(GptSlotDisk, KernelRefresh), DiskError> {
    let mut disk = Disk::open(path, true)?;
    if disk.sector_size != plan.request.sector_size {
        return Err(DiskError::Unsupported {
            path: path.to_owned(),
            what: format!(
                "disk has {}-byte sectors, plan was made for {}",
                disk.sector_size, plan.request.sector_size
            ),
        });
    }
    if disk.size != plan.request.disk_size {
        return Err(DiskError::Unsupported {
            path: path.to_owned(),
            what: format!(
                "disk is {} bytes, plan was made for {}",
                disk.size, plan.request.disk_size
            ),
        });
    }
    write_table(&mut disk.file, path, plan, slots, guids)?;
    drop(disk);
    let mut slot_disk = GptSlotDisk::open(path, true)?;
    let refresh = slot_disk.refresh_kernel()?;
    Ok((slot_disk, refresh))
}

/// Writes MBR and both GPT copies to any device (files, block devices,
/// in-memory buffers in tests).
pub fn write_table<D: BlockIo>(
    dev: &mut D,
    path: &Path,
    plan: &DiskPlan,
    slots: InitialSlots,
    guids: DiskGuids,
) -> Result<(), DiskError> {
    let lb = lb_size(path, plan.request.sector_size)?;
    let gpt_err = |op: &'static str| {
        move |source: gpt::GptError| DiskError::Gpt {
            path: path.to_owned(),
            op,
            source,
        }
    };
    let mut partitions = BTreeMap::new();
    for (i, p) in plan.partitions.iter().enumerate() {
        let flags = match p.number {
            2 => slots.a.raw(),
            3 => slots.b.raw(),
            _ => 0,
        };
        partitions.insert(
            p.number,
            Partition {
                part_type_guid: p.type_guid.into(),
                part_guid: guids.partitions[i],
                first_lba: p.first_lba,
                last_lba: p.last_lba,
                flags,
                name: p.label.to_owned(),
            },
        );
    }
    let sectors = plan.request.disk_size / plan.request.sector_size;
    let mbr = ProtectiveMBR::with_lb_size(u32::try_from(sectors - 1).unwrap_or(u32::MAX));
    mbr.overwrite_lba0(dev).map_err(|e| {
        DiskError::io(
            path,
            "writing the protective MBR",
            std::io::Error::other(e.to_string()),
        )
    })?;
    let mut gdisk = GptConfig::new()
        .writable(true)
        .logical_block_size(lb)
        .create_from_device(&mut *dev, Some(guids.disk))
        .map_err(gpt_err("initialising the GPT"))?;
    gdisk
        .update_partitions(partitions)
        .map_err(gpt_err("adding the partitions"))?;
    gdisk.write_inplace().map_err(gpt_err("writing the GPT"))?;
    drop(gdisk);
    dev.sync().map_err(|e| DiskError::io(path, "fsync", e))
}
