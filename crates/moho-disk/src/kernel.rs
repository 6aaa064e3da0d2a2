//! Keeping the kernel's idea of a block device's partitions in step with its
//! GPT, and other block-device ioctls.
//!
//! After a commit, the kernel's partition list is compared with the table (via
//! sysfs). If they differ, `BLKRRPART` asks the kernel to re-parse the disk;
//! if the kernel does not parse GPT itself (this happens: the rescan then
//! finds nothing) or a partition is in use, the difference is applied with
//! `BLKPG` partition add/delete, as `partx` does; a partition that only
//! changed its end (`STATE` grown to fill the disk, mounted on `/var`) is
//! resized in place (`BLKPG_RESIZE_PARTITION`, as `resizepart` does), since a
//! partition in use cannot be deleted. Attribute-only changes leave
//! the geometry alone, so usually nothing needs doing.
#![allow(unsafe_code)] // ioctls; each call site says why it is sound

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::libc::{c_int, c_void};

use crate::error::DiskError;

mod ioctls {
    use super::{BlkpgIoctlArg, c_int};
    nix::ioctl_none!(blkrrpart, 0x12, 95);
    nix::ioctl_read_bad!(blksszget, nix::request_code_none!(0x12, 104), c_int);
    nix::ioctl_write_ptr_bad!(blkpg, nix::request_code_none!(0x12, 105), BlkpgIoctlArg);
}

const BLKPG_ADD_PARTITION: c_int = 1;
const BLKPG_DEL_PARTITION: c_int = 2;
const BLKPG_RESIZE_PARTITION: c_int = 3;

/// `struct blkpg_ioctl_arg` from `<linux/blkpg.h>`.
#[repr(C)]
#[derive(Debug)]
pub struct BlkpgIoctlArg {
    op: c_int,
    flags: c_int,
    datalen: c_int,
    data: *mut c_void,
}

/// `struct blkpg_partition` from `<linux/blkpg.h>`.
#[repr(C)]
#[derive(Debug)]
struct BlkpgPartition {
    start: i64,
    length: i64,
    pno: c_int,
    devname: [u8; 64],
    volname: [u8; 64],
}

/// A partition as the kernel should see it: number, byte offset, byte length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelPartition {
    /// Partition number.
    pub number: u32,
    /// Offset in bytes.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
}

/// What bringing the kernel up to date took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelRefresh {
    /// A regular file: the kernel keeps no partition view of it.
    NotABlockDevice,
    /// The kernel already had exactly these partitions.
    AlreadyCurrent,
    /// `BLKRRPART` made the kernel re-read the table.
    Rescanned,
    /// `BLKPG` added and removed these partition numbers.
    Reconciled {
        /// Added.
        added: Vec<u32>,
        /// Removed.
        removed: Vec<u32>,
        /// Resized in place (same start, new length).
        resized: Vec<u32>,
    },
}

/// The logical sector size of a block device (`BLKSSZGET`).
pub fn logical_sector_size(file: &File) -> io::Result<u64> {
    let mut size: c_int = 0;
    // SAFETY: BLKSSZGET writes one int through the pointer, which points to a
    // live, properly aligned c_int; the fd is open for the call's duration.
    unsafe { ioctls::blksszget(file.as_raw_fd(), &mut size) }.map_err(io::Error::from)?;
    u64::try_from(size).map_err(|_| io::Error::other(format!("BLKSSZGET returned {size}")))
}

/// The sysfs directory of the block device `file` is open on.
fn sysfs_dir(file: &File) -> io::Result<PathBuf> {
    let rdev = file.metadata()?.rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    fs::canonicalize(format!("/sys/dev/block/{major}:{minor}"))
}

/// The partitions the kernel currently has for the disk `file` is open on.
pub fn kernel_partitions(file: &File) -> io::Result<Vec<KernelPartition>> {
    let dir = sysfs_dir(file)?;
    let mut parts = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let p = entry.path();
        let Ok(number) = read_number(&p.join("partition")) else {
            continue;
        };
        let start = read_number(&p.join("start"))? * 512;
        let length = read_number(&p.join("size"))? * 512;
        parts.push(KernelPartition {
            number: u32::try_from(number).map_err(io::Error::other)?,
            start,
            length,
        });
    }
    parts.sort();
    Ok(parts)
}

fn read_number(p: &Path) -> io::Result<u64> {
    fs::read_to_string(p)?
        .trim()
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", p.display())))
}

/// Makes the kernel's partitions of `file` equal `want`.
pub fn refresh_kernel_view(
    path: &Path,
    file: &File,
    want: &[KernelPartition],
) -> Result<KernelRefresh, DiskError> {
    let kerr = |detail: String| DiskError::Kernel {
        path: path.to_owned(),
        detail,
    };
    let mut want = want.to_vec();
    want.sort();
    let have = kernel_partitions(file).map_err(|e| kerr(format!("reading sysfs: {e}")))?;
    if have == want {
        return Ok(KernelRefresh::AlreadyCurrent);
    }
    // SAFETY: BLKRRPART takes no argument; the fd is a block device open for
    // the call's duration.
    let rescan = unsafe { ioctls::blkrrpart(file.as_raw_fd()) };
    let have = kernel_partitions(file).map_err(|e| kerr(format!("reading sysfs: {e}")))?;
    if rescan.is_ok() && have == want {
        return Ok(KernelRefresh::Rescanned);
    }
    tracing::debug!(
        disk = %path.display(),
        ?rescan,
        "kernel did not pick up the GPT by itself; applying BLKPG add/delete"
    );
    let wanted: BTreeMap<u32, KernelPartition> = want.iter().map(|p| (p.number, *p)).collect();
    let mut removed = Vec::new();
    let mut resized = Vec::new();
    for p in &have {
        match wanted.get(&p.number) {
            Some(w) if w == p => {}
            Some(w) if w.start == p.start => {
                blkpg(file, BLKPG_RESIZE_PARTITION, w).map_err(|e| {
                    kerr(format!(
                        "resizing partition {} (start {}) from {} to {} bytes: {e}",
                        p.number, p.start, p.length, w.length
                    ))
                })?;
                resized.push(p.number);
            }
            _ => {
                blkpg(file, BLKPG_DEL_PARTITION, p).map_err(|e| {
                    kerr(format!(
                        "removing stale partition {} (start {}, length {}): {e}",
                        p.number, p.start, p.length
                    ))
                })?;
                removed.push(p.number);
            }
        }
    }
    let mut added = Vec::new();
    let still: Vec<KernelPartition> =
        kernel_partitions(file).map_err(|e| kerr(format!("reading sysfs: {e}")))?;
    for p in &want {
        if !still.contains(p) {
            blkpg(file, BLKPG_ADD_PARTITION, p).map_err(|e| {
                kerr(format!(
                    "adding partition {} (start {}, length {}): {e}",
                    p.number, p.start, p.length
                ))
            })?;
            added.push(p.number);
        }
    }
    let now = kernel_partitions(file).map_err(|e| kerr(format!("reading sysfs: {e}")))?;
    if now != want {
        return Err(kerr(format!(
            "kernel shows {now:?} after BLKPG, expected {want:?}"
        )));
    }
    Ok(KernelRefresh::Reconciled {
        added,
        removed,
        resized,
    })
}

fn blkpg(file: &File, op: c_int, p: &KernelPartition) -> io::Result<()> {
    let mut part = BlkpgPartition {
        start: i64::try_from(p.start).map_err(io::Error::other)?,
        length: i64::try_from(p.length).map_err(io::Error::other)?,
        pno: c_int::try_from(p.number).map_err(io::Error::other)?,
        devname: [0; 64],
        volname: [0; 64],
    };
    let arg = BlkpgIoctlArg {
        op,
        flags: 0,
        datalen: c_int::try_from(size_of::<BlkpgPartition>()).map_err(io::Error::other)?,
        data: (&raw mut part).cast::<c_void>(),
    };
    // SAFETY: `arg` and the partition record it points to live on this stack
    // frame for the whole call, with the layout of <linux/blkpg.h>; the kernel
    // only reads them. The fd is a block device open for the call's duration.
    unsafe { ioctls::blkpg(file.as_raw_fd(), &arg) }.map_err(io::Error::from)?;
    Ok(())
}
