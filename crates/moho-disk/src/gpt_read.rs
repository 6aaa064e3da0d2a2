//! Reading both copies of a GPT and deciding which one to trust.
//!
//! Each copy (primary at LBA 1, backup at the last LBA) is checked on its
//! own: signature and header CRC (by the `gpt` crate's parser), its own LBA,
//! a 128-byte entry size, an entry array inside the disk, and the entry
//! array's CRC (which the crate's header parser does not check). The primary
//! copy is trusted when valid, else the backup; a damaged or diverging copy
//! is reported in [`TableHealth`] and rewritten by the next commit. A
//! backup that is not at the disk's last LBA because the disk is larger
//! than the table was made for is reported as such, and moved there by the
//! next commit (see [`crate::gpt_place`]).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use crc::{CRC_32_ISO_HDLC, Crc};
use gpt::disk::LogicalBlockSize;
use gpt::header::{Header, read_header_from_arbitrary_device};
use gpt::partition::{Partition, file_read_partitions};

use crate::backup_window::BackupWindow;
use crate::error::DiskError;

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);
/// The only entry size the `gpt` crate (and every common tool) writes.
pub const ENTRY_SIZE: u32 = 128;
/// Byte offset of the last-LBA field inside an entry.
pub const LAST_LBA_OFFSET: usize = 40;
/// Byte offset of the attribute field inside an entry.
pub const ATTR_OFFSET: usize = 48;
/// Largest entry array we accept (sgdisk's default is 128 entries = 16 KiB).
const MAX_ARRAY_BYTES: u64 = 1024 * 1024;

/// Which of the two GPT copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// LBA 1 and the array after it.
    Primary,
    /// The last LBA and the array before it.
    Backup,
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Primary => "primary",
            Self::Backup => "backup",
        })
    }
}

/// One valid GPT copy: its header and raw entry array.
#[derive(Debug, Clone)]
pub struct GptCopy {
    /// The parsed, CRC-checked header.
    pub header: Header,
    /// The entry array, exactly as on disk (CRC-checked).
    pub array: Vec<u8>,
}

/// The state of one copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyHealth {
    /// Header and array are intact.
    Valid,
    /// Something is wrong; the text says what.
    Damaged(String),
}

/// The state of both copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableHealth {
    /// Primary copy.
    pub primary: CopyHealth,
    /// Backup copy.
    pub backup: CopyHealth,
    /// Both are valid but do not describe the same table (an interrupted
    /// commit); the primary is trusted.
    pub diverged: bool,
}

impl TableHealth {
    /// Whether the next commit will repair something.
    pub fn needs_repair(&self) -> bool {
        self.primary != CopyHealth::Valid || self.backup != CopyHealth::Valid || self.diverged
    }
}

impl fmt::Display for TableHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |h: &CopyHealth| match h {
            CopyHealth::Valid => "valid".to_owned(),
            CopyHealth::Damaged(why) => format!("damaged ({why})"),
        };
        write!(
            f,
            "primary {}, backup {}",
            show(&self.primary),
            show(&self.backup)
        )?;
        if self.diverged {
            write!(f, ", copies differ (primary trusted)")?;
        }
        Ok(())
    }
}

/// Everything read from a disk's GPT.
#[derive(Debug, Clone)]
pub struct GptSnapshot {
    /// Logical sector size.
    pub sector_size: u64,
    /// Disk size in bytes.
    pub disk_size: u64,
    /// The primary copy, or why it is unusable.
    pub primary: Result<GptCopy, String>,
    /// The backup copy, or why it is unusable.
    pub backup: Result<GptCopy, String>,
    /// Which copy the partitions were read from.
    pub trusted: Which,
    /// Partition entries of the trusted copy, by partition number.
    pub partitions: BTreeMap<u32, Partition>,
}

impl GptSnapshot {
    /// The trusted copy.
    pub fn trusted_copy(&self) -> &GptCopy {
        match (&self.primary, &self.backup, self.trusted) {
            (Ok(c), _, Which::Primary) | (_, Ok(c), Which::Backup) => c,
            // read_gpt only sets `trusted` to a copy that is Ok.
            (Err(_), _, Which::Primary) | (_, Err(_), Which::Backup) => {
                unreachable!("trusted copy is always valid")
            }
        }
    }

    /// The health of both copies.
    pub fn health(&self) -> TableHealth {
        let h = |c: &Result<GptCopy, String>| match c {
            Ok(_) => CopyHealth::Valid,
            Err(e) => CopyHealth::Damaged(e.clone()),
        };
        let diverged = match (&self.primary, &self.backup) {
            (Ok(p), Ok(b)) => {
                p.array != b.array
                    || p.header.disk_guid != b.header.disk_guid
                    || p.header.first_usable != b.header.first_usable
                    || p.header.last_usable != b.header.last_usable
                    || p.header.num_parts != b.header.num_parts
            }
            _ => false,
        };
        TableHealth {
            primary: h(&self.primary),
            backup: h(&self.backup),
            diverged,
        }
    }

    /// The last LBA of the disk, where the backup header belongs.
    pub fn last_lba(&self) -> u64 {
        self.disk_size / self.sector_size - 1
    }
}

pub(crate) fn lb_size(path: &Path, sector_size: u64) -> Result<LogicalBlockSize, DiskError> {
    LogicalBlockSize::try_from(sector_size).map_err(|_| DiskError::Unsupported {
        path: path.to_owned(),
        what: format!("logical sector size {sector_size}"),
    })
}

/// Reads and checks both GPT copies of `dev`.
pub fn read_gpt<D: Read + Seek>(
    dev: &mut D,
    path: &Path,
    sector_size: u64,
    disk_size: u64,
) -> Result<GptSnapshot, DiskError> {
    let lb = lb_size(path, sector_size)?;
    if disk_size < sector_size * 68 {
        return Err(DiskError::Unsupported {
            path: path.to_owned(),
            what: format!("disk of {disk_size} bytes is too small for a GPT"),
        });
    }
    let last_lba = disk_size / sector_size - 1;
    let primary = read_copy(dev, lb, Which::Primary, last_lba, disk_size);
    let mut backup = read_copy(dev, lb, Which::Backup, last_lba, disk_size);
    if let (Ok(p), Err(why)) = (&primary, &mut backup)
        && p.header.backup_lba != last_lba
    {
        // The usual case of a disk larger than its image, not damage.
        *why = format!(
            "not at the end of the disk: the table was made for a disk ending at LBA {}, \
             this one ends at LBA {last_lba} (disk grown?); the next write moves it there",
            p.header.backup_lba
        );
    }
    let trusted = match (&primary, &backup) {
        (Ok(_), _) => Which::Primary,
        (Err(_), Ok(_)) => Which::Backup,
        (Err(p), Err(b)) => {
            return Err(DiskError::NoValidTable {
                path: path.to_owned(),
                primary: p.clone(),
                backup: b.clone(),
            });
        }
    };
    let mut snap = GptSnapshot {
        sector_size,
        disk_size,
        primary,
        backup,
        trusted,
        partitions: BTreeMap::new(),
    };
    snap.partitions =
        parse_entries(snap.trusted_copy(), lb).map_err(|e| DiskError::Unsupported {
            path: path.to_owned(),
            what: format!("{trusted} partition entries: {e}"),
        })?;
    Ok(snap)
}

/// Parses an entry array with the `gpt` crate, from memory.
pub(crate) fn parse_entries(
    copy: &GptCopy,
    lb: LogicalBlockSize,
) -> std::io::Result<BTreeMap<u32, Partition>> {
    let mut header = copy.header.clone();
    header.part_start = 0;
    header.crc32_parts = CRC32.checksum(&copy.array);
    file_read_partitions(&mut Cursor::new(&copy.array), &header, lb)
}

pub(crate) fn array_crc(array: &[u8]) -> u32 {
    CRC32.checksum(array)
}

fn read_copy<D: Read + Seek>(
    dev: &mut D,
    lb: LogicalBlockSize,
    which: Which,
    last_lba: u64,
    disk_size: u64,
) -> Result<GptCopy, String> {
    let ss = lb.as_u64();
    let header = match which {
        Which::Primary => read_header_from_arbitrary_device(dev, lb),
        Which::Backup => {
            read_header_from_arbitrary_device(&mut BackupWindow::new(dev, ss, last_lba), lb)
        }
    }
    .map_err(|e| {
        format!(
            "header at LBA {}: {e}",
            if which == Which::Primary { 1 } else { last_lba }
        )
    })?;

    let expected_lba = match which {
        Which::Primary => 1,
        Which::Backup => last_lba,
    };
    if header.current_lba != expected_lba {
        return Err(format!(
            "header says it is at LBA {} but was read from LBA {expected_lba}",
            header.current_lba
        ));
    }
    if header.part_size != ENTRY_SIZE {
        return Err(format!(
            "entry size {} (only 128 is supported)",
            header.part_size
        ));
    }
    let array_len = u64::from(header.num_parts) * u64::from(header.part_size);
    if header.num_parts == 0 || array_len > MAX_ARRAY_BYTES {
        return Err(format!("implausible entry count {}", header.num_parts));
    }
    let start = header
        .part_start
        .checked_mul(ss)
        .filter(|s| s.checked_add(array_len).is_some_and(|end| end <= disk_size))
        .filter(|_| header.part_start >= 2)
        .ok_or_else(|| {
            format!(
                "entry array at LBA {} lies outside the disk",
                header.part_start
            )
        })?;
    let mut array = vec![0u8; usize::try_from(array_len).map_err(|e| e.to_string())?];
    dev.seek(SeekFrom::Start(start))
        .and_then(|_| dev.read_exact(&mut array))
        .map_err(|e| format!("reading entry array at byte {start}: {e}"))?;
    let crc = array_crc(&array);
    if crc != header.crc32_parts {
        return Err(format!(
            "entry array CRC {crc:#010x} does not match header {:#010x}",
            header.crc32_parts
        ));
    }
    Ok(GptCopy { header, array })
}
