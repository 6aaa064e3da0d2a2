//! Reading and writing a slot's bytes: aligned, direct I/O that bypasses
//! the page cache (so a read-back sees what the device holds, and a 4 GiB
//! image does not evict the node's working set).
//!
//! `O_DIRECT` needs offsets, lengths and buffers aligned to the device's
//! block size; we align everything to 4 KiB and pad the last, short write
//! with zeros (the slot is larger than the image). Where `O_DIRECT` is not
//! supported (tmpfs), writes are buffered, flushed with `fdatasync`, and the
//! cached pages are dropped before a read-back.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use moho_disk::SlotExtent;
use nix::fcntl::{OFlag, PosixFadviseAdvice, posix_fadvise};

/// Alignment of every direct I/O.
pub const ALIGN: usize = 4096;

/// A heap buffer whose usable part starts on an [`ALIGN`] boundary.
#[derive(Debug)]
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes (rounded up to [`ALIGN`]).
    pub fn new(len: usize) -> Self {
        let len = len.div_ceil(ALIGN) * ALIGN;
        let raw = vec![0u8; len + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN);
        Self { raw, start, len }
    }

    /// The usable bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// The usable bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.len
    }
}

/// A slot I/O that failed.
#[derive(Debug, thiserror::Error)]
#[error("{} (slot at byte {offset}): {op}: {source}", disk.display())]
pub struct SlotIoError {
    /// The disk.
    pub disk: PathBuf,
    /// The slot's offset on it.
    pub offset: u64,
    /// What was being done.
    pub op: String,
    /// Why.
    pub source: io::Error,
}

/// A disk (device or image file) opened once for the slots' bytes: direct
/// I/O where the filesystem or device supports it, else buffered.
#[derive(Debug, Clone)]
pub struct SlotFile {
    file: Arc<File>,
    path: PathBuf,
    direct: bool,
    writable: bool,
}

impl SlotFile {
    /// Opens `path` (writable when `write`).
    pub fn open(path: &Path, write: bool) -> Result<Self, SlotIoError> {
        let fail = |e| SlotIoError {
            disk: path.to_owned(),
            offset: 0,
            op: "open".into(),
            source: e,
        };
        let open = |direct: bool| {
            let mut o = OpenOptions::new();
            o.read(true).write(write);
            if direct {
                o.custom_flags(OFlag::O_DIRECT.bits());
            }
            o.open(path)
        };
        let (file, direct) = match open(true) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => {
                tracing::debug!(disk = %path.display(), "O_DIRECT not supported; using fdatasync");
                (open(false).map_err(fail)?, false)
            }
            Err(e) => return Err(fail(e)),
        };
        Ok(Self {
            file: Arc::new(file),
            path: path.to_owned(),
            direct,
            writable: write,
        })
    }

    /// The disk.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it was opened for writing.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The slot at `extent` of this disk.
    pub fn slot(&self, extent: &SlotExtent) -> SlotIo {
        SlotIo {
            file: Arc::clone(&self.file),
            extent: extent.clone(),
            direct: self.direct,
        }
    }
}

/// One slot of a [`SlotFile`].
#[derive(Debug)]
pub struct SlotIo {
    file: Arc<File>,
    extent: SlotExtent,
    direct: bool,
}

impl SlotIo {
    /// Opens the slot described by `extent` on its own (tools and tests;
    /// the agent's services use [`SlotFile::slot`]).
    pub fn open(extent: &SlotExtent, write: bool) -> Result<Self, SlotIoError> {
        Ok(SlotFile::open(&extent.disk, write)?.slot(extent))
    }

    /// The slot's length in bytes.
    pub fn len(&self) -> u64 {
        self.extent.length
    }

    /// Whether the slot has no bytes (never, for a real slot).
    pub fn is_empty(&self) -> bool {
        self.extent.length == 0
    }

    /// Whether I/O bypasses the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    fn check_bounds(&self, at: u64, len: usize, op: &str) -> Result<(), SlotIoError> {
        if !at.is_multiple_of(ALIGN as u64) || at.saturating_add(len as u64) > self.extent.length {
            return Err(err(
                &self.extent,
                format!("{op} of {len} bytes at slot offset {at}"),
                io::Error::new(io::ErrorKind::InvalidInput, "outside the slot or unaligned"),
            ));
        }
        Ok(())
    }

    /// Writes the first `data_len` bytes of `buf` at slot offset `at`
    /// (a multiple of [`ALIGN`]); the write is padded to [`ALIGN`] with the
    /// buffer's following bytes, which the caller keeps zeroed.
    pub fn write_at(&self, at: u64, buf: &AlignedBuf, data_len: usize) -> Result<(), SlotIoError> {
        let padded = data_len.div_ceil(ALIGN) * ALIGN;
        self.check_bounds(at, padded, "write")?;
        self.file
            .write_all_at(&buf.as_slice()[..padded], self.extent.offset + at)
            .map_err(|e| {
                err(
                    &self.extent,
                    format!("write of {padded} bytes at slot offset {at}"),
                    e,
                )
            })
    }

    /// Reads `len` bytes at slot offset `at` into `buf` (which must hold
    /// `len` rounded up to [`ALIGN`]).
    pub fn read_at(&self, at: u64, buf: &mut AlignedBuf, len: usize) -> Result<(), SlotIoError> {
        let padded = len.div_ceil(ALIGN) * ALIGN;
        self.check_bounds(at, padded, "read")?;
        self.file
            .read_exact_at(&mut buf.as_mut_slice()[..padded], self.extent.offset + at)
            .map_err(|e| {
                err(
                    &self.extent,
                    format!("read of {padded} bytes at slot offset {at}"),
                    e,
                )
            })
    }

    /// Makes every write durable, and (without `O_DIRECT`) drops the slot's
    /// cached pages so that later reads come from the device.
    pub fn sync(&self) -> Result<(), SlotIoError> {
        self.file
            .sync_data()
            .map_err(|e| err(&self.extent, "fdatasync".into(), e))?;
        if !self.direct {
            let off = i64::try_from(self.extent.offset).unwrap_or(i64::MAX);
            let len = i64::try_from(self.extent.length).unwrap_or(i64::MAX);
            posix_fadvise(
                self.file.as_fd(),
                off,
                len,
                PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            )
            .map_err(|e| err(&self.extent, "posix_fadvise(DONTNEED)".into(), e.into()))?;
        }
        Ok(())
    }
}

fn err(extent: &SlotExtent, op: String, source: io::Error) -> SlotIoError {
    SlotIoError {
        disk: extent.disk.clone(),
        offset: extent.offset,
        op,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffers_are_aligned_and_rounded_up() {
        let b = AlignedBuf::new(5000);
        assert_eq!(b.as_slice().as_ptr() as usize % ALIGN, 0);
        assert_eq!(b.capacity(), 8192);
    }

    #[test]
    fn writes_land_at_the_slot_offset_and_stay_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk");
        File::create(&disk).unwrap().set_len(1 << 20).unwrap();
        let extent = SlotExtent {
            disk: disk.clone(),
            offset: 65536,
            length: 16384,
        };
        let io = SlotIo::open(&extent, true).unwrap();
        let mut buf = AlignedBuf::new(8192);
        buf.as_mut_slice()[..5].copy_from_slice(b"hello");
        io.write_at(4096, &buf, 5).unwrap();
        io.sync().unwrap();
        let raw = std::fs::read(&disk).unwrap();
        assert_eq!(&raw[65536 + 4096..65536 + 4101], b"hello");
        let mut back = AlignedBuf::new(4096);
        io.read_at(4096, &mut back, 5).unwrap();
        assert_eq!(&back.as_slice()[..5], b"hello");
        let e = io.write_at(16384, &buf, 5).unwrap_err();
        assert!(e.to_string().contains("outside the slot"), "{e}");
    }
}
