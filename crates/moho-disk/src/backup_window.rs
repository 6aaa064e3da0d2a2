//! A read-only view of a disk in which the backup GPT header appears where
//! the primary one normally sits (LBA 1).
//!
//! The `gpt` crate parses and CRC-checks a header only at LBA 1
//! (`read_header_from_arbitrary_device`); this view lets the same, tested
//! parser check the backup copy too, instead of a second hand-written one.

use std::io::{self, Read, Seek, SeekFrom};

/// Maps reads of LBA 1 to `backup_lba`; every other byte reads through.
#[derive(Debug)]
pub struct BackupWindow<'a, D> {
    inner: &'a mut D,
    sector: u64,
    backup_lba: u64,
    pos: u64,
}

impl<'a, D: Read + Seek> BackupWindow<'a, D> {
    /// A view of `inner` with `backup_lba` shown at LBA 1.
    pub fn new(inner: &'a mut D, sector: u64, backup_lba: u64) -> Self {
        Self {
            inner,
            sector,
            backup_lba,
            pos: 0,
        }
    }

    fn physical(&self, logical: u64) -> u64 {
        if (self.sector..2 * self.sector).contains(&logical) {
            self.backup_lba * self.sector + (logical - self.sector)
        } else {
            logical
        }
    }
}

impl<D: Read + Seek> Read for BackupWindow<'_, D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Never let one read straddle the remapped sector's edges.
        let sector_end = (self.pos / self.sector + 1) * self.sector;
        let len = buf
            .len()
            .min(usize::try_from(sector_end - self.pos).unwrap_or(usize::MAX));
        self.inner.seek(SeekFrom::Start(self.physical(self.pos)))?;
        let n = self.inner.read(&mut buf[..len])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<D: Read + Seek> Seek for BackupWindow<'_, D> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => {
                let end = self.inner.seek(SeekFrom::End(0))?;
                end.checked_add_signed(d)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before 0"))?
            }
            SeekFrom::Current(d) => self
                .pos
                .checked_add_signed(d)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before 0"))?,
        };
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn lba_one_reads_the_backup_sector() {
        let mut disk: Vec<u8> = (0..8u8).flat_map(|s| vec![s; 512]).collect();
        let mut cur = Cursor::new(&mut disk);
        let mut w = BackupWindow::new(&mut cur, 512, 7);
        let mut buf = vec![0u8; 1024];
        w.seek(SeekFrom::Start(256)).unwrap();
        w.read_exact(&mut buf).unwrap();
        assert!(buf[..256].iter().all(|&b| b == 0));
        assert!(buf[256..768].iter().all(|&b| b == 7));
        assert!(buf[768..].iter().all(|&b| b == 2));
    }
}
