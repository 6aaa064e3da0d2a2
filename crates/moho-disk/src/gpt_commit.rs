//! Writing an edited GPT back to disk so that a power cut at any moment
//! leaves at least one valid copy (DESIGN §2).
//!
//! The edit is made in memory on the trusted copy's raw entry array (only
//! the attribute fields of the named partitions change; every other byte,
//! including entries we do not understand, is kept). The commit then writes,
//! flushing after each step:
//!
//! 1. the other copy's entry array, 2. the other copy's header (its CRCs now
//!    cover the new array), 3. the trusted copy's entry array, 4. its header.
//!
//! Both headers come from [`place_headers`]: on a disk larger than the one
//! the table was made for, the backup copy is written at the disk's new
//! last LBA (and the last usable LBA extended), in the same ordered,
//! flushed steps; the primary, written last, is what makes the move final.
//!
//! Growing `STATE` ([`commit_state_growth`]) is the same commit with one
//! more in-memory edit: the `STATE` entry's last LBA, up to the last usable
//! LBA of the placed headers. A cut before step 2 completes leaves the old
//! table (and the old backup, still valid where it was); after it, the new
//! one. The filesystem is grown only after the commit, so it never extends
//! past its partition.
//!
//! "Trusted" is the copy the table was read from: the primary when it is
//! valid, else the backup. Until step 2 completes the trusted copy is intact
//! and still describes the old table; from then on the other copy is intact
//! and describes the new one. A damaged copy is thus always rebuilt first,
//! which is how a disk "is repaired on the next write". The torn-write
//! property test in `tests/gpt_io.rs` cuts a commit after every sector.

use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::path::Path;

use gpt::disk::LogicalBlockSize;
use moho_core::state_growth::{PartitionExtent, StateGrowth, plan_state_growth};

use crate::device::BlockIo;
use crate::error::DiskError;
use crate::gpt_place::{Placement, place_headers};
use crate::gpt_read::{ATTR_OFFSET, ENTRY_SIZE, GptSnapshot, LAST_LBA_OFFSET, Which, lb_size};

/// Applies `attrs` (partition number → new raw attribute field) to the
/// trusted copy and writes both copies.
pub fn commit_attributes<D: BlockIo>(
    dev: &mut D,
    path: &Path,
    snap: &GptSnapshot,
    attrs: &BTreeMap<u32, u64>,
) -> Result<(), DiskError> {
    let lb = lb_size(path, snap.sector_size)?;
    let trusted = snap.trusted_copy();
    let mut array = trusted.array.clone();
    for (&number, &raw) in attrs {
        if !snap.partitions.contains_key(&number) {
            return Err(DiskError::Unsupported {
                path: path.to_owned(),
                what: format!("partition {number} does not exist"),
            });
        }
        let at = (number as usize - 1) * ENTRY_SIZE as usize + ATTR_OFFSET;
        array[at..at + 8].copy_from_slice(&raw.to_le_bytes());
    }

    let placement = place(path, snap, lb)?;
    write_copies(dev, path, snap, &array, placement)
}

/// Grows `STATE` to the end of the disk in one commit of the trusted copy
/// (its entry's last LBA changed in memory, the backup placed at the disk's
/// last LBA, both copies written in the usual order). Returns what was
/// decided; [`StateGrowth::AlreadyFull`] writes nothing unless a copy needs
/// repair (a growth cut short), which it then rewrites from the trusted one.
pub fn commit_state_growth<D: BlockIo>(
    dev: &mut D,
    path: &Path,
    snap: &GptSnapshot,
) -> Result<StateGrowth, DiskError> {
    let lb = lb_size(path, snap.sector_size)?;
    let placement = place(path, snap, lb)?;
    let extents: Vec<PartitionExtent> = snap
        .partitions
        .iter()
        .map(|(&number, p)| PartitionExtent {
            number,
            label: p.name.clone(),
            type_guid: p.part_type_guid.guid,
            first_lba: p.first_lba,
            last_lba: p.last_lba,
        })
        .collect();
    let growth = plan_state_growth(&extents, placement.primary.last_usable).map_err(|source| {
        DiskError::StateGrowth {
            path: path.to_owned(),
            source,
        }
    })?;
    let mut array = snap.trusted_copy().array.clone();
    if let StateGrowth::Grow {
        number,
        from_last_lba,
        to_last_lba,
        ..
    } = growth
    {
        tracing::info!(
            disk = %path.display(),
            partition = number,
            from = from_last_lba,
            to = to_last_lba,
            "growing STATE to the end of the disk"
        );
        let at = (number as usize - 1) * ENTRY_SIZE as usize + LAST_LBA_OFFSET;
        array[at..at + 8].copy_from_slice(&to_last_lba.to_le_bytes());
    } else if !snap.health().needs_repair() {
        return Ok(growth);
    }
    // A growth, or a table a cut growth left half written (STATE already
    // full in the trusted copy): either way both copies end up valid.
    write_copies(dev, path, snap, &array, placement)?;
    Ok(growth)
}

/// Both headers for this disk's size (see [`place_headers`]).
fn place(path: &Path, snap: &GptSnapshot, lb: LogicalBlockSize) -> Result<Placement, DiskError> {
    let trusted = snap.trusted_copy();
    let last_lba = snap.last_lba();
    let ends = snap.partitions.iter().map(|(&n, p)| (n, p.last_lba));
    let placement =
        place_headers(&trusted.header, last_lba, lb, ends).map_err(|e| DiskError::Unsupported {
            path: path.to_owned(),
            what: e.to_string(),
        })?;
    if placement.relocated {
        tracing::info!(
            disk = %path.display(),
            from = if snap.trusted == Which::Primary { trusted.header.backup_lba } else { trusted.header.current_lba },
            to = last_lba,
            "moving the backup GPT to the end of the disk"
        );
    }
    Ok(placement)
}

/// Writes `array` with both headers of `placement`: the other copy first,
/// then the trusted one, each array before its header, flushed after each.
fn write_copies<D: BlockIo>(
    dev: &mut D,
    path: &Path,
    snap: &GptSnapshot,
    array: &[u8],
    placement: Placement,
) -> Result<(), DiskError> {
    let lb = lb_size(path, snap.sector_size)?;
    let Placement {
        mut primary,
        mut backup,
        ..
    } = placement;
    let order = match snap.trusted {
        Which::Primary => [Which::Backup, Which::Primary],
        Which::Backup => [Which::Primary, Which::Backup],
    };
    for which in order {
        let header = match which {
            Which::Primary => &mut primary,
            Which::Backup => &mut backup,
        };
        let offset = header.part_start * snap.sector_size;
        write_at(dev, path, offset, array, &format!("{which} entry array"))?;
        sync(dev, path)?;
        let written = match which {
            Which::Primary => header.write_primary(dev, lb),
            Which::Backup => header.write_backup(dev, lb),
        };
        written.map_err(|e| DiskError::Gpt {
            path: path.to_owned(),
            op: match which {
                Which::Primary => "writing the primary GPT header",
                Which::Backup => "writing the backup GPT header",
            },
            source: e.into(),
        })?;
        sync(dev, path)?;
    }
    Ok(())
}

fn write_at<D: BlockIo>(
    dev: &mut D,
    path: &Path,
    offset: u64,
    bytes: &[u8],
    what: &str,
) -> Result<(), DiskError> {
    dev.seek(SeekFrom::Start(offset))
        .and_then(|_| dev.write_all(bytes))
        .map_err(|e| DiskError::io(path, format!("writing the {what} at byte {offset}"), e))
}

fn sync<D: BlockIo>(dev: &mut D, path: &Path) -> Result<(), DiskError> {
    dev.sync().map_err(|e| DiskError::io(path, "fsync", e))
}
