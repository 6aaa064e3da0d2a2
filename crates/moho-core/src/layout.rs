//! The Moho disk layout (DESIGN §2): which partition is what, and where the
//! partitions go on a disk of a given size.
//!
//! | # | label | type | content |
//! |---|---|---|---|
//! | 1 | `EFI-SYSTEM` | EFI system partition | FAT32, systemd-boot |
//! | 2 | `ROOT-A` | CoreOS usr | slot A |
//! | 3 | `ROOT-B` | CoreOS usr | slot B |
//! | 4 | `STATE` | Linux filesystem | ext4, `/var`, fills the disk |
//!
//! Partitions start on 1 MiB boundaries. Everything here is arithmetic; the
//! disk layer turns a [`DiskPlan`] into a GPT.

use std::fmt;

use uuid::{Uuid, uuid};

use crate::slot_attrs::SlotAttributes;
use crate::slot_table::{SlotEntry, SlotName, SlotTable};

/// EFI system partition.
pub const ESP_TYPE: Uuid = uuid!("C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
/// CoreOS "usr" partition type, used for both root slots (as Flatcar does).
pub const SLOT_TYPE: Uuid = uuid!("5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6");
/// Linux filesystem data.
pub const STATE_TYPE: Uuid = uuid!("0FC63DAF-8483-4772-8E79-3D69D8477DE4");

/// Label of partition 1.
pub const ESP_LABEL: &str = "EFI-SYSTEM";
/// Label of slot A.
pub const SLOT_A_LABEL: &str = "ROOT-A";
/// Label of slot B.
pub const SLOT_B_LABEL: &str = "ROOT-B";
/// Label of partition 4.
pub const STATE_LABEL: &str = "STATE";

/// Partitions start on multiples of this.
pub const ALIGNMENT: u64 = 1024 * 1024;
/// Sectors the GPT needs at each end of the disk (header + 128 × 128-byte
/// entries at 512-byte sectors), besides the protective MBR.
pub const GPT_RESERVED_SECTORS: u64 = 33;
/// Smallest STATE partition we will create.
pub const MIN_STATE_SIZE: u64 = 16 * 1024 * 1024;
/// Smallest ESP: FAT32 with 512-byte clusters needs 65,525 clusters.
pub const MIN_ESP_SIZE: u64 = 33 * 1024 * 1024;

/// The label a slot's partition carries.
pub const fn slot_label(name: SlotName) -> &'static str {
    match name {
        SlotName::A => SLOT_A_LABEL,
        SlotName::B => SLOT_B_LABEL,
    }
}

/// What `image-tools disk create` was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutRequest {
    /// Whole disk, bytes.
    pub disk_size: u64,
    /// EFI system partition, bytes.
    pub esp_size: u64,
    /// Each root slot, bytes.
    pub slot_size: u64,
    /// Logical sector size, bytes (512 or 4096).
    pub sector_size: u64,
}

/// One partition to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPlan {
    /// GPT partition number.
    pub number: u32,
    /// GPT partition name.
    pub label: &'static str,
    /// Type GUID.
    pub type_guid: Uuid,
    /// First sector.
    pub first_lba: u64,
    /// Last sector (inclusive).
    pub last_lba: u64,
}

impl PartitionPlan {
    /// Byte offset of the partition.
    pub const fn offset(&self, sector_size: u64) -> u64 {
        self.first_lba * sector_size
    }

    /// Size in bytes.
    pub const fn size(&self, sector_size: u64) -> u64 {
        (self.last_lba + 1 - self.first_lba) * sector_size
    }
}

/// Where every partition goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskPlan {
    /// The request this plan satisfies.
    pub request: LayoutRequest,
    /// ESP, ROOT-A, ROOT-B, STATE, in partition-number order.
    pub partitions: [PartitionPlan; 4],
}

/// A layout that cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A size that is not a whole number of alignment units.
    #[error("{what} size {size} bytes is not a multiple of 1 MiB")]
    Unaligned {
        /// Which size.
        what: &'static str,
        /// The value given.
        size: u64,
    },
    /// A sector size other than 512 or 4096.
    #[error("sector size {0} is not supported (512 or 4096)")]
    SectorSize(u64),
    /// A partition below its minimum.
    #[error("{what} size {size} bytes is below the minimum of {min} bytes")]
    TooSmall {
        /// Which partition.
        what: &'static str,
        /// The value given.
        size: u64,
        /// The minimum.
        min: u64,
    },
    /// The partitions do not fit on the disk.
    #[error(
        "layout does not fit: ESP {esp} + 2 x slot {slot} + STATE minimum {state_min} + GPT \
         overhead {overhead} = {needed} bytes, but the disk is {disk} bytes"
    )]
    DoesNotFit {
        /// ESP bytes.
        esp: u64,
        /// Slot bytes.
        slot: u64,
        /// Minimum STATE bytes.
        state_min: u64,
        /// Alignment and GPT bytes.
        overhead: u64,
        /// Total needed.
        needed: u64,
        /// Disk size.
        disk: u64,
    },
}

/// Computes partition positions; STATE takes everything after slot B.
pub fn plan_disk(req: LayoutRequest) -> Result<DiskPlan, LayoutError> {
    if req.sector_size != 512 && req.sector_size != 4096 {
        return Err(LayoutError::SectorSize(req.sector_size));
    }
    for (what, size) in [("ESP", req.esp_size), ("slot", req.slot_size)] {
        if size % ALIGNMENT != 0 || size == 0 {
            return Err(LayoutError::Unaligned { what, size });
        }
    }
    if req.esp_size < MIN_ESP_SIZE {
        return Err(LayoutError::TooSmall {
            what: "ESP",
            size: req.esp_size,
            min: MIN_ESP_SIZE,
        });
    }
    let ss = req.sector_size;
    let backup_sectors = GPT_RESERVED_SECTORS.div_ceil(ss / 512).max(2);
    let disk_sectors = req.disk_size / ss;
    let tail = (backup_sectors + 1) * ss;
    let overhead = ALIGNMENT + tail;
    let needed = req
        .esp_size
        .saturating_add(req.slot_size.saturating_mul(2))
        .saturating_add(MIN_STATE_SIZE)
        .saturating_add(overhead);
    if needed > req.disk_size {
        return Err(LayoutError::DoesNotFit {
            esp: req.esp_size,
            slot: req.slot_size,
            state_min: MIN_STATE_SIZE,
            overhead,
            needed,
            disk: req.disk_size,
        });
    }
    let align = ALIGNMENT / ss;
    let mut next = align;
    let mut part = |number: u32, label, type_guid, bytes: u64| {
        let first = next;
        let last = first + bytes / ss - 1;
        next = last + 1;
        PartitionPlan {
            number,
            label,
            type_guid,
            first_lba: first,
            last_lba: last,
        }
    };
    let esp = part(1, ESP_LABEL, ESP_TYPE, req.esp_size);
    let a = part(2, SLOT_A_LABEL, SLOT_TYPE, req.slot_size);
    let b = part(3, SLOT_B_LABEL, SLOT_TYPE, req.slot_size);
    // STATE runs to the last usable sector, just before the backup GPT.
    let last_usable = disk_sectors - backup_sectors - 1;
    let state = PartitionPlan {
        number: 4,
        label: STATE_LABEL,
        type_guid: STATE_TYPE,
        first_lba: next,
        last_lba: last_usable,
    };
    Ok(DiskPlan {
        request: req,
        partitions: [esp, a, b, state],
    })
}

/// A partition entry as the disk layer reads it, before we know what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// GPT partition number.
    pub number: u32,
    /// Type GUID.
    pub type_guid: Uuid,
    /// Unique partition GUID.
    pub partuuid: Uuid,
    /// Partition name.
    pub label: String,
    /// Attribute field.
    pub attrs: SlotAttributes,
}

/// The partition table does not hold a Moho slot pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotLayoutError {
    /// No partition named `label` with the slot type.
    #[error("no partition labelled {label} with type {SLOT_TYPE} (found: {found})")]
    Missing {
        /// The missing label.
        label: &'static str,
        /// What the table does hold.
        found: PartitionList,
    },
    /// More than one partition claims to be `label`.
    #[error("more than one partition labelled {label} with the slot type: partitions {numbers:?}")]
    Duplicate {
        /// The duplicated label.
        label: &'static str,
        /// Their numbers.
        numbers: Vec<u32>,
    },
}

/// A printable summary of a partition table, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionList(pub Vec<(u32, String, Uuid)>);

impl fmt::Display for PartitionList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no partitions");
        }
        for (i, (n, label, ty)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}:{label:?} type {ty}")?;
        }
        Ok(())
    }
}

/// Finds ROOT-A and ROOT-B by label and type GUID.
pub fn identify_slots(parts: &[PartitionInfo]) -> Result<SlotTable, SlotLayoutError> {
    let find = |label: &'static str| -> Result<SlotEntry, SlotLayoutError> {
        let matches: Vec<&PartitionInfo> = parts
            .iter()
            .filter(|p| p.label == label && p.type_guid == SLOT_TYPE)
            .collect();
        match matches.as_slice() {
            [p] => Ok(SlotEntry {
                partition: p.number,
                label: p.label.clone(),
                partuuid: p.partuuid,
                attrs: p.attrs,
            }),
            [] => Err(SlotLayoutError::Missing {
                label,
                found: PartitionList(
                    parts
                        .iter()
                        .map(|p| (p.number, p.label.clone(), p.type_guid))
                        .collect(),
                ),
            }),
            many => Err(SlotLayoutError::Duplicate {
                label,
                numbers: many.iter().map(|p| p.number).collect(),
            }),
        }
    };
    Ok(SlotTable {
        a: find(SLOT_A_LABEL)?,
        b: find(SLOT_B_LABEL)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn req(disk: u64, esp: u64, slot: u64) -> LayoutRequest {
        LayoutRequest {
            disk_size: disk,
            esp_size: esp,
            slot_size: slot,
            sector_size: 512,
        }
    }

    #[test]
    fn partitions_are_aligned_contiguous_and_state_fills_the_disk() {
        let plan = plan_disk(req(1024 * MIB, 64 * MIB, 256 * MIB)).unwrap();
        let [esp, a, b, state] = &plan.partitions;
        assert_eq!(esp.first_lba, 2048);
        assert_eq!(esp.size(512), 64 * MIB);
        assert_eq!(a.first_lba * 512 % MIB, 0);
        assert_eq!(a.size(512), 256 * MIB);
        assert_eq!(b.first_lba, a.last_lba + 1);
        assert_eq!(state.first_lba, b.last_lba + 1);
        // 1 GiB = 2,097,152 sectors; the backup GPT takes the last 33.
        assert_eq!(state.last_lba, 2_097_152 - 34);
    }

    #[test]
    fn refuses_a_layout_that_does_not_fit_with_the_numbers() {
        let err = plan_disk(req(512 * MIB, 64 * MIB, 256 * MIB)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ESP 67108864 + 2 x slot 268435456"), "{msg}");
        assert!(msg.contains("but the disk is 536870912 bytes"), "{msg}");
    }

    #[test]
    fn refuses_unaligned_and_tiny_sizes() {
        assert!(matches!(
            plan_disk(req(1024 * MIB, 64 * MIB, 1000)),
            Err(LayoutError::Unaligned { what: "slot", .. })
        ));
        assert!(matches!(
            plan_disk(req(1024 * MIB, 8 * MIB, 64 * MIB)),
            Err(LayoutError::TooSmall { what: "ESP", .. })
        ));
    }

    fn info(number: u32, label: &str, ty: Uuid) -> PartitionInfo {
        PartitionInfo {
            number,
            type_guid: ty,
            partuuid: Uuid::from_u128(u128::from(number)),
            label: label.to_owned(),
            attrs: SlotAttributes::default(),
        }
    }

    #[test]
    fn identifies_slots_by_label_and_type() {
        let parts = vec![
            info(1, ESP_LABEL, ESP_TYPE),
            info(2, SLOT_A_LABEL, SLOT_TYPE),
            info(3, SLOT_B_LABEL, SLOT_TYPE),
        ];
        let t = identify_slots(&parts).unwrap();
        assert_eq!((t.a.partition, t.b.partition), (2, 3));
    }

    #[test]
    fn a_slot_label_with_the_wrong_type_is_not_a_slot() {
        let parts = vec![
            info(2, SLOT_A_LABEL, STATE_TYPE),
            info(3, SLOT_B_LABEL, SLOT_TYPE),
        ];
        let err = identify_slots(&parts).unwrap_err();
        assert!(
            err.to_string().starts_with("no partition labelled ROOT-A"),
            "{err}"
        );
        let dup = vec![
            info(2, SLOT_A_LABEL, SLOT_TYPE),
            info(5, SLOT_A_LABEL, SLOT_TYPE),
        ];
        assert!(matches!(
            identify_slots(&dup),
            Err(SlotLayoutError::Duplicate { numbers, .. }) if numbers == vec![2, 5]
        ));
    }
}
