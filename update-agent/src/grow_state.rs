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
#[derive(Debug, Default, Clone, Copy)]
pub struct Resize2fs;

impl FsGrower for Resize2fs {
    fn grow(&self, device: &Path, _mount_point: &Path) -> Result<String, GrowError> {
        let tool_err = |detail: String| GrowError::Tool {
            tool: "resize2fs",
            device: device.to_owned(),
            detail,
        };
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
