//! Where the two GPT copies of a table belong on a disk of a given size
//! (pure: headers in, headers out).
//!
//! The primary header sits at LBA 1 with its entry array after it; the
//! backup header sits at the disk's last LBA with its array just before it.
//! A disk larger than the one the table was made for (an image written to
//! a bigger disk, a grown cloud volume) is the normal case: its backup is
//! somewhere in the middle. [`place_headers`] then moves the backup to the
//! end and extends the last usable LBA to just before its array, as
//! `sgdisk -e` does, so the space after the last partition can be used
//! (the first boot grows `STATE` into it). Everything else in the headers
//! (disk GUID, first usable LBA, entry count and size) is kept. A disk
//! smaller than its partitions is refused.

use gpt::disk::LogicalBlockSize;
use gpt::header::{Header, HeaderBuilder};

/// Both headers of a table, ready to be written (CRCs are filled in by the
/// `gpt` crate when each is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The header for LBA 1.
    pub primary: Header,
    /// The header for the disk's last LBA.
    pub backup: Header,
    /// Whether the backup moved (the table was made for a smaller disk).
    pub relocated: bool,
}

/// Why a table cannot be placed on this disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// The disk ends before the table's partitions do.
    #[error(
        "the disk ends at LBA {last_lba}, leaving LBA {last_usable} as the last usable one, \
         but partition {partition} ends at LBA {partition_end} (disk shrunk?)"
    )]
    DiskTooSmall {
        /// The disk's last LBA.
        last_lba: u64,
        /// The last usable LBA it would leave.
        last_usable: u64,
        /// The partition that does not fit.
        partition: u32,
        /// Where it ends.
        partition_end: u64,
    },
    /// The `gpt` crate refused to build a header.
    #[error("building a GPT header: {0}")]
    Header(String),
}

/// Sectors taken by an entry array of `header`'s geometry.
pub fn array_sectors(header: &Header, lb: LogicalBlockSize) -> u64 {
    (u64::from(header.num_parts) * u64::from(header.part_size)).div_ceil(lb.as_u64())
}

/// The primary and backup headers for a disk whose last LBA is `last_lba`,
/// from the `trusted` header (either copy). `partition_ends` are the last
/// LBAs of the partitions in use, by partition number.
pub fn place_headers(
    trusted: &Header,
    last_lba: u64,
    lb: LogicalBlockSize,
    partition_ends: impl IntoIterator<Item = (u32, u64)>,
) -> Result<Placement, PlaceError> {
    let array = array_sectors(trusted, lb);
    let backup_lba = if trusted.current_lba == 1 {
        trusted.backup_lba
    } else {
        trusted.current_lba
    };
    let relocated = backup_lba != last_lba;
    let last_usable = if relocated {
        last_lba.saturating_sub(array + 1)
    } else {
        trusted.last_usable
    };
    if let Some((partition, partition_end)) = partition_ends
        .into_iter()
        .filter(|&(_, end)| end > last_usable)
        .max_by_key(|&(_, end)| end)
    {
        return Err(PlaceError::DiskTooSmall {
            last_lba,
            last_usable,
            partition,
            partition_end,
        });
    }
    let build = |primary: bool| {
        let mut b = HeaderBuilder::from_header(trusted);
        b.backup_lba(last_lba)
            .last_usable(last_usable)
            .primary(primary);
        b.build(lb).map_err(|e| PlaceError::Header(e.to_string()))
    };
    let (primary, mut backup) = (build(true)?, build(false)?);
    // The crate puts the backup array right after the last usable LBA; a
    // table read from disk keeps the array where that disk had it.
    if !relocated && trusted.current_lba != 1 {
        backup.part_start = trusted.part_start;
    }
    Ok(Placement {
        primary,
        backup,
        relocated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LB: LogicalBlockSize = LogicalBlockSize::Lb512;

    /// The primary header of a 1 MiB-aligned table made for a disk of
    /// `sectors` sectors, with 128 entries.
    fn primary_for(sectors: u64) -> Header {
        HeaderBuilder::new()
            .backup_lba(sectors - 1)
            .build(LB)
            .unwrap()
    }

    #[test]
    fn a_table_at_the_end_of_its_disk_stays_where_it_is() {
        let h = primary_for(2048 * 512);
        let p = place_headers(&h, 2048 * 512 - 1, LB, [(4, 1000)]).unwrap();
        assert!(!p.relocated);
        assert_eq!(p.primary, h);
        assert_eq!(p.backup.current_lba, 2048 * 512 - 1);
        assert_eq!(p.backup.backup_lba, 1);
        assert_eq!(p.backup.part_start, 2048 * 512 - 33);
        assert_eq!(p.backup.last_usable, h.last_usable);
    }

    #[test]
    fn a_grown_disk_gets_its_backup_at_the_new_end_and_the_space_before_it() {
        let old = 1024 * 1024; // 512 MiB
        let new = 4 * old; // 2 GiB
        let h = primary_for(old);
        let p = place_headers(&h, new - 1, LB, [(2, 5000), (4, old - 34)]).unwrap();
        assert!(p.relocated);
        assert_eq!(p.primary.current_lba, 1);
        assert_eq!(p.primary.backup_lba, new - 1);
        assert_eq!(p.primary.part_start, 2);
        assert_eq!(p.primary.last_usable, new - 34);
        assert_eq!(p.backup.current_lba, new - 1);
        assert_eq!(p.backup.backup_lba, 1);
        assert_eq!(p.backup.part_start, new - 33);
        assert_eq!(p.backup.last_usable, new - 34);
        for header in [&p.primary, &p.backup] {
            assert_eq!(header.disk_guid, h.disk_guid);
            assert_eq!(header.first_usable, h.first_usable);
            assert_eq!((header.num_parts, header.part_size), (128, 128));
        }
    }

    #[test]
    fn the_backup_header_alone_is_enough_to_place_both() {
        let old = 100_000;
        let h = primary_for(old);
        let mut backup = HeaderBuilder::from_header(&h);
        let backup = backup.primary(false).build(LB).unwrap();
        let same = place_headers(&backup, old - 1, LB, []).unwrap();
        assert!(!same.relocated);
        assert_eq!(same.primary, h);
        assert_eq!(same.backup, backup);
        let grown = place_headers(&backup, 2 * old - 1, LB, []).unwrap();
        assert!(grown.relocated);
        assert_eq!(grown.primary.backup_lba, 2 * old - 1);
        assert_eq!(grown.backup.part_start, 2 * old - 33);
    }

    #[test]
    fn a_disk_smaller_than_its_partitions_is_refused() {
        let h = primary_for(100_000);
        let err =
            place_headers(&h, 50_000 - 1, LB, [(2, 10_000), (4, 99_000), (3, 60_000)]).unwrap_err();
        assert_eq!(
            err,
            PlaceError::DiskTooSmall {
                last_lba: 49_999,
                last_usable: 49_966,
                partition: 4,
                partition_end: 99_000,
            }
        );
        assert!(err.to_string().contains("partition 4 ends at LBA 99000"));
        // A shrink that still holds every partition is just a move.
        let p = place_headers(&h, 90_000 - 1, LB, [(4, 80_000)]).unwrap();
        assert!(p.relocated);
        assert_eq!(p.backup.current_lba, 89_999);
    }
}
