//! Opening a disk (an image file or a block device) and the few facts about
//! it the GPT code needs: size, logical sector size, whether it is a block
//! device, and how to flush it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::error::DiskError;

/// Something a GPT can be read from and written to.
pub trait BlockIo: Read + Write + Seek + std::fmt::Debug {
    /// Makes every write so far durable (fsync for files and block devices).
    fn sync(&mut self) -> io::Result<()>;
}

impl BlockIo for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}

impl BlockIo for io::Cursor<Vec<u8>> {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An opened disk.
#[derive(Debug)]
pub struct Disk {
    /// The path it was opened by.
    pub path: PathBuf,
    /// The open handle.
    pub file: File,
    /// Whether it is a block device (then the kernel's view must be updated).
    pub is_block: bool,
    /// Logical sector size in bytes.
    pub sector_size: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Disk {
    /// Opens `path` for reading, and for writing if `writable`.
    pub fn open(path: &Path, writable: bool) -> Result<Self, DiskError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|source| DiskError::Open {
                path: path.to_owned(),
                source,
            })?;
        let meta = file
            .metadata()
            .map_err(|e| DiskError::io(path, "stat", e))?;
        let is_block = meta.file_type().is_block_device();
        if !is_block && !meta.is_file() {
            return Err(DiskError::Open {
                path: path.to_owned(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file or block device",
                ),
            });
        }
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|e| DiskError::io(path, "seek to end", e))?;
        let sector_size = if is_block {
            crate::kernel::logical_sector_size(&file)
                .map_err(|e| DiskError::io(path, "BLKSSZGET", e))?
        } else {
            512
        };
        Ok(Self {
            path: path.to_owned(),
            file,
            is_block,
            sector_size,
            size,
        })
    }
}
