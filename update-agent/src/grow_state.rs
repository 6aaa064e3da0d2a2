//! `update-agent grow-state`: the first boot grows `STATE` (DESIGN §2) — its
//! partition to the end of the disk, then its ext4, online.
//!
//! Order, so that a power cut at any point leaves a bootable machine:
//!
//! 1. The GPT: `STATE`'s last LBA raised to the last usable LBA in memory and
//!    written as one ordered commit with the backup moved to the disk's end
//!    ([`GptSlotDisk::grow_state`]); a cut leaves the old or the new table,
//!    and the slots' entries are untouched either way.
//! 2. The kernel's view: the mounted partition is resized in place (BLKPG).
//! 3. The filesystem, only now and only online (`resize2fs` on the mounted
//!    device, i.e. the kernel's journaled `EXT4_IOC_RESIZE_FS`): it grows in
//!    whole groups, each step committed through the journal, so a cut leaves
//!    a consistent filesystem of the old, the new or an intermediate size,
//!    never one larger than its partition (the partition was grown first).
//!
//! Every step is idempotent: the unit (`moho-grow-state.service`) runs at
//! every boot, finds `STATE` full and the filesystem at the partition's size,
//! and finishes whatever a cut interrupted. Offline growth is refused: an
//! interrupted offline `resize2fs` is not crash-safe.

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use moho_core::state_growth::StateGrowth;
use moho_disk::{DiskError, GptSlotDisk};

/// Growing `STATE` failed.
#[derive(Debug, thiserror::Error)]
pub enum GrowError {
    /// The disk is an image file: there is no mounted filesystem to grow.
    #[error(
        "{disk}: not a block device; grow-state grows a mounted STATE online (attach the image with losetup)",
        disk = disk.display()
    )]
    NotABlockDevice {
        /// The disk.
        disk: PathBuf,
    },
    /// Reading or writing the GPT failed.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// The kernel shows no device for the partition.
    #[error("{disk}: the kernel has no device for partition {number}", disk = disk.display())]
    NoPartitionDevice {
        /// The disk.
        disk: PathBuf,
        /// The partition.
        number: u32,
    },
    /// `STATE`'s filesystem is not mounted.
    #[error(
        "{device}: STATE is not mounted; its filesystem is grown online only (the partition is \
         grown; the filesystem follows at the next boot with STATE on /var)",
        device = device.display()
    )]
    NotMounted {
        /// The partition device.
        device: PathBuf,
    },
    /// A tool failed or is missing.
    #[error("{tool} {device}: {detail}", device = device.display())]
    Tool {
        /// The tool.
        tool: &'static str,
        /// The partition device.
        device: PathBuf,
        /// What it said, or why it did not run.
        detail: String,
    },
}

/// Grows a mounted filesystem to fill its device.
pub trait FsGrower {
    /// Grows the filesystem on `device` (mounted at `mount_point`); returns
    /// what the tool said.
    fn grow(&self, device: &Path, mount_point: &Path) -> Result<String, GrowError>;
}

/// The real one: e2fsprogs' `resize2fs`, which grows a mounted ext4 online.
/// A filesystem that already fills its device (a disk as the image made
/// it) is left alone: `resize2fs` without a size rounds the device down to
/// a page and would try to shrink it, which it refuses online.
#[derive(Debug, Default, Clone, Copy)]
pub struct Resize2fs;

/// An ext2/3/4 superblock's size: (blocks, block size in bytes), or `None`
/// if `sb` (the 1024 bytes at byte 1024 of the device) is not one.
pub fn ext4_size(sb: &[u8]) -> Option<(u64, u64)> {
    let le32 = |at: usize| -> Option<u64> {
        let b: [u8; 4] = sb.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(u32::from_le_bytes(b)))
    };
    if sb.get(0x38..0x3a)? != [0x53, 0xEF] {
        return None;
    }
    let log = le32(0x18)?;
    if log > 6 {
        return None;
    }
    // INCOMPAT_64BIT: the high half of the block count is kept too.
    let hi = if le32(0x60)? & 0x80 != 0 {
        le32(0x150)?
    } else {
        0
    };
    Some(((hi << 32) | le32(0x4)?, 1024 << log))
}

/// The block count `resize2fs` (given no size) grows a filesystem of
/// `blocks` blocks of `block_size` bytes to on a `device_bytes` device: the
/// whole blocks that fit, rounded down to a whole page when a block is
/// smaller than `page_size` (its own rule). `None` when that is not larger:
/// there is nothing to grow.
pub fn fs_growth(blocks: u64, block_size: u64, device_bytes: u64, page_size: u64) -> Option<u64> {
    let mut fit = device_bytes / block_size.max(1);
    if page_size > block_size {
        let per_page = page_size / block_size.max(1);
        fit -= fit % per_page;
    }
    (fit > blocks).then_some(fit)
}

/// What the filesystem on `device` is and whether it fills the device:
/// `Some(text)` when there is nothing to grow.
fn already_full(device: &Path) -> Option<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = fs::File::open(device).ok()?;
    let device_bytes = f.seek(SeekFrom::End(0)).ok()?;
    f.seek(SeekFrom::Start(1024)).ok()?;
    let mut sb = [0u8; 1024];
    f.read_exact(&mut sb).ok()?;
    let (blocks, block_size) = ext4_size(&sb)?;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    match fs_growth(blocks, block_size, device_bytes, page) {
        Some(_) => None,
        None => Some(format!(
            "already fills its partition ({blocks} blocks of {block_size} bytes on {device_bytes} bytes)"
        )),
    }
}

impl FsGrower for Resize2fs {
    fn grow(&self, device: &Path, _mount_point: &Path) -> Result<String, GrowError> {
        let tool_err = |detail: String| GrowError::Tool {
            tool: "resize2fs",
            device: device.to_owned(),
            detail,
        };
        if let Some(full) = already_full(device) {
            return Ok(full);
        }
        let out = Command::new("resize2fs")
            .arg(device)
            .output()
            .map_err(|e| tool_err(format!("cannot run resize2fs (e2fsprogs): {e}")))?;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let said = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("resize2fs "))
            .collect::<Vec<_>>()
            .join("; ");
        if !out.status.success() {
            return Err(tool_err(format!("{}: {said}", out.status)));
        }
        Ok(said)
    }
}

/// What `grow-state` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrowReport {
    /// The disk.
    pub disk: PathBuf,
    /// The partition device of `STATE`.
    pub device: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// `STATE`'s partition number.
    pub partition: u32,
    /// Its size before, bytes.
    pub bytes_before: u64,
    /// Its size now, bytes.
    pub bytes_after: u64,
    /// What the filesystem tool said.
    pub filesystem: String,
}

impl fmt::Display for GrowReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: u64 = 1024 * 1024;
        if self.bytes_before == self.bytes_after {
            write!(
                f,
                "STATE (partition {} of {}) already fills the disk ({} MiB)",
                self.partition,
                self.disk.display(),
                self.bytes_after / MIB
            )?;
        } else {
            write!(
                f,
                "STATE (partition {} of {}) grown from {} MiB to {} MiB",
                self.partition,
                self.disk.display(),
                self.bytes_before / MIB,
                self.bytes_after / MIB
            )?;
        }
        write!(
            f,
            "; filesystem on {} ({}): {}",
            self.device.display(),
            self.mount_point.display(),
            self.filesystem
        )
    }
}

/// A step of [`grow_state`], announced as it starts (the console line a
/// power-cut test cuts at; an operator sees where a boot stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrowStep {
    /// The GPT commit that makes `STATE` reach the end of the disk (it
    /// writes nothing when it already does and the table is whole).
    Partition {
        /// The disk.
        disk: PathBuf,
        /// `STATE`'s partition number.
        number: u32,
    },
    /// Growing the mounted filesystem to its partition.
    Filesystem {
        /// The partition device.
        device: PathBuf,
        /// Where it is mounted.
        mount_point: PathBuf,
    },
}

impl fmt::Display for GrowStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Partition { disk, number } => write!(
                f,
                "STATE: partition {number} of {} to the end of the disk (GPT commit)",
                disk.display()
            ),
            Self::Filesystem {
                device,
                mount_point,
            } => write!(
                f,
                "STATE: the filesystem on {} ({}) to its partition",
                device.display(),
                mount_point.display()
            ),
        }
    }
}

/// Grows `STATE` on `disk`: the partition (one GPT commit), the kernel's
/// view, then the mounted filesystem with `grower`; `announce` hears of
/// each step before it starts.
pub fn grow_state(
    disk: &Path,
    grower: &dyn FsGrower,
    announce: &mut dyn FnMut(&GrowStep),
) -> Result<GrowReport, GrowError> {
    let mut gpt = GptSlotDisk::open(disk, true)?;
    if !gpt.is_block_device() {
        return Err(GrowError::NotABlockDevice {
            disk: disk.to_owned(),
        });
    }
    let ss = gpt.snapshot().sector_size;
    if let Some((&number, _)) = gpt
        .snapshot()
        .partitions
        .iter()
        .find(|(_, p)| p.name == moho_core::layout::STATE_LABEL)
    {
        announce(&GrowStep::Partition {
            disk: disk.to_owned(),
            number,
        });
    }
    let growth = gpt.grow_state()?;
    let (number, bytes_before) = match growth {
        StateGrowth::Grow {
            number,
            first_lba,
            from_last_lba,
            ..
        } => (number, (from_last_lba + 1 - first_lba) * ss),
        StateGrowth::AlreadyFull { number, .. } => (
            number,
            gpt.partition_range(number).map_or(0, |(_, len)| len),
        ),
    };
    let bytes_after = gpt.partition_range(number).map_or(0, |(_, len)| len);
    let device = partition_device(disk, number)?;
    let rdev = fs::metadata(&device)
        .map_err(|e| GrowError::Tool {
            tool: "stat",
            device: device.clone(),
            detail: e.to_string(),
        })?
        .rdev();
    let devno = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mount_point = mount_point_of(&mountinfo, devno).ok_or_else(|| GrowError::NotMounted {
        device: device.clone(),
    })?;
    announce(&GrowStep::Filesystem {
        device: device.clone(),
        mount_point: mount_point.clone(),
    });
    let filesystem = grower.grow(&device, &mount_point)?;
    Ok(GrowReport {
        disk: disk.to_owned(),
        device,
        mount_point,
        partition: number,
        bytes_before,
        bytes_after,
        filesystem,
    })
}

/// `/dev/<name>` of partition `number` of `disk`, as sysfs lists it.
pub(crate) fn partition_device(disk: &Path, number: u32) -> Result<PathBuf, GrowError> {
    let missing = || GrowError::NoPartitionDevice {
        disk: disk.to_owned(),
        number,
    };
    let canon = fs::canonicalize(disk).map_err(|_| missing())?;
    let name = canon.file_name().ok_or_else(missing)?;
    let sys = Path::new("/sys/class/block").join(name);
    for e in fs::read_dir(&sys).map_err(|_| missing())?.flatten() {
        let n = fs::read_to_string(e.path().join("partition")).unwrap_or_default();
        if n.trim().parse::<u32>().ok() == Some(number) {
            let dev = Path::new("/dev").join(e.file_name());
            if dev.exists() {
                return Ok(dev);
            }
        }
    }
    Err(missing())
}

/// The first mount point of the block device `major:minor` in a
/// `/proc/self/mountinfo` text (octal escapes in the path decoded).
pub fn mount_point_of(mountinfo: &str, devno: (u64, u64)) -> Option<PathBuf> {
    let want = format!("{}:{}", devno.0, devno.1);
    mountinfo.lines().find_map(|line| {
        let mut fields = line.split(' ');
        let dev = fields.nth(2)?;
        let point = fields.nth(1)?;
        (dev == want).then(|| PathBuf::from(unescape(point)))
    })
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 259:2 / / ro,relatime shared:1 - ext4 /dev/vda2 ro
23 22 0:21 / /proc rw,nosuid shared:2 - proc proc rw
30 22 259:4 / /var rw,relatime shared:9 - ext4 /dev/vda4 rw
31 22 7:4 / /mnt/with\\040space rw,relatime shared:10 - ext4 /dev/loop0p4 rw
";

    #[test]
    fn the_mount_point_is_found_by_device_number() {
        assert_eq!(
            mount_point_of(MOUNTINFO, (259, 4)),
            Some(PathBuf::from("/var"))
        );
        assert_eq!(
            mount_point_of(MOUNTINFO, (7, 4)),
            Some(PathBuf::from("/mnt/with space"))
        );
        assert_eq!(mount_point_of(MOUNTINFO, (259, 3)), None);
        assert_eq!(mount_point_of("", (259, 4)), None);
    }

    /// A superblock (at its own offset 0) of `blocks` blocks of
    /// `1024 << log` bytes, 64-bit or not.
    fn superblock(blocks: u64, log: u32, bit64: bool) -> Vec<u8> {
        let mut sb = vec![0u8; 1024];
        sb[0x4..0x8].copy_from_slice(&((blocks & 0xffff_ffff) as u32).to_le_bytes());
        sb[0x18..0x1c].copy_from_slice(&log.to_le_bytes());
        sb[0x38..0x3a].copy_from_slice(&0xEF53u16.to_le_bytes());
        if bit64 {
            sb[0x60..0x64].copy_from_slice(&0x80u32.to_le_bytes());
            sb[0x150..0x154].copy_from_slice(&((blocks >> 32) as u32).to_le_bytes());
        }
        sb
    }

    #[test]
    fn the_superblock_gives_the_filesystem_size() {
        assert_eq!(
            ext4_size(&superblock(64_495, 0, false)),
            Some((64_495, 1024))
        );
        assert_eq!(
            ext4_size(&superblock(5 << 32 | 7, 2, true)),
            Some((5 << 32 | 7, 4096))
        );
        let mut not = superblock(10, 0, false);
        not[0x38] = 0;
        assert_eq!(ext4_size(&not), None);
        assert_eq!(ext4_size(&[0u8; 100]), None);
    }

    #[test]
    fn a_filesystem_that_fills_its_device_is_not_grown() {
        // The disk as `disk create` made it: 256 MiB STATE with 1 KiB blocks
        // over a partition that is not a whole number of pages. resize2fs
        // would round the device down to 64 492 blocks: a shrink.
        assert_eq!(fs_growth(64_495, 1024, 66_043_392, 4096), None);
        // Exactly full, 4 KiB blocks.
        assert_eq!(fs_growth(1000, 4096, 4096 * 1000, 4096), None);
        // A grown disk: everything that fits, in whole pages.
        assert_eq!(fs_growth(64_495, 1024, 1 << 30, 4096), Some(1 << 20));
        assert_eq!(
            fs_growth(64_495, 1024, (1 << 30) + 3072, 4096),
            Some(1 << 20)
        );
        assert_eq!(fs_growth(1000, 4096, 4096 * 1001 + 10, 4096), Some(1001));
    }

    #[test]
    fn the_report_says_what_grew() {
        let mut r = GrowReport {
            disk: "/dev/vda".into(),
            device: "/dev/vda4".into(),
            mount_point: "/var".into(),
            partition: 4,
            bytes_before: 100 << 20,
            bytes_after: 1900 << 20,
            filesystem: "The filesystem on /dev/vda4 is now 486400 (4k) blocks long.".into(),
        };
        let text = r.to_string();
        assert!(
            text.contains("grown from 100 MiB to 1900 MiB") && text.contains("486400"),
            "{text}"
        );
        r.bytes_before = r.bytes_after;
        assert!(r.to_string().contains("already fills the disk (1900 MiB)"));
    }
}
