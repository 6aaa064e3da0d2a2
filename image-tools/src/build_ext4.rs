//! ext4 slot images: `mke2fs -d` from the tree, then every inode's times set
//! to the build epoch so that the same tree gives the same bytes.
//!
//! `mke2fs` (1.47.0, Debian 12) copies access, change and modification times
//! from the source files, and reading a file or copying a tree changes them;
//! `E2FSPROGS_FAKE_TIME` only fixes the times `mke2fs` itself stamps. So after
//! `mke2fs` the inode tables are walked (used inodes only, per the inode
//! bitmaps), the four times and their nanosecond fields are set to the epoch
//! and each inode checksum (crc32c, `metadata_csum`) is recomputed. The
//! result passes `e2fsck -fn` (tested). Unused inodes are zeroed (after an
//! edit by `ext4_previous` they hold the freed file's fields). Features are given explicitly, with
//! our own `mke2fs.conf`, so that the host's configuration cannot change the
//! bytes. No journal: a slot is mounted read-only.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{BuildError, run_tool};

/// Block size of slot images.
pub const BLOCK_SIZE: u64 = 4096;
/// Inode size.
pub const INODE_SIZE: u64 = 256;

const MKE2FS_CONF: &str = "\
[defaults]
\tbase_features = sparse_super,large_file,filetype,dir_index,ext_attr
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384

[fs_types]
\text4 = {
\t\tfeatures = extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
\tdefault = {
\t}
";

/// What `mke2fs` needs beyond the tree.
#[derive(Debug, Clone)]
pub struct Ext4Params {
    /// Filesystem UUID (also the directory hash seed).
    pub uuid: String,
    /// Every timestamp in the image, seconds since the epoch.
    pub epoch: u32,
    /// Number of inodes to create.
    pub inodes: u64,
}

/// Formats `image` (already sized) as ext4 holding `tree`, then fixes its times.
pub fn make(tree: &Path, image: &Path, params: &Ext4Params) -> Result<(), BuildError> {
    let conf = PathBuf::from(format!("{}.mke2fs.conf", image.display()));
    fs::write(&conf, MKE2FS_CONF).map_err(|source| BuildError::Io {
        path: conf.clone(),
        op: "write",
        source,
    })?;
    let mut cmd = Command::new("mke2fs");
    cmd.env("MKE2FS_CONFIG", &conf)
        .env("E2FSPROGS_FAKE_TIME", params.epoch.to_string())
        .args([
            "-q", "-F", "-t", "ext4", "-T", "default", "-b", "4096", "-I", "256", "-m", "0",
        ])
        .args([
            "-N",
            &params.inodes.to_string(),
            "-L",
            "moho-root",
            "-U",
            &params.uuid,
        ])
        .arg("-E")
        .arg(format!(
            "hash_seed={},nodiscard,lazy_itable_init=0,root_owner=0:0",
            params.uuid
        ))
        .arg("-d")
        .arg(tree)
        .arg(image);
    let result = run_tool(cmd, "mke2fs", "e2fsprogs");
    let _ = fs::remove_file(&conf);
    if let Err(BuildError::ToolFailed { stderr, .. }) = &result {
        let s = stderr.to_lowercase();
        if s.contains("could not allocate") || s.contains("no space") || s.contains("no free space")
        {
            return Err(BuildError::TooSmall {
                detail: format!("mke2fs ran out of space: {}", stderr.trim()),
            });
        }
    }
    result?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .map_err(|source| BuildError::Io {
            path: image.to_owned(),
            op: "open",
            source,
        })?;
    set_inode_times(&file, params.epoch).map_err(|source| BuildError::Io {
        path: image.to_owned(),
        op: "normalize inode times",
        source,
    })
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// crc32c as ext4 uses it: no pre- or post-inversion, explicit seed.
const CRC32C_RAW: crc::Algorithm<u32> = crc::Algorithm {
    width: 32,
    poly: 0x1edc_6f41,
    init: 0,
    refin: true,
    refout: true,
    xorout: 0,
    check: 0,
    residue: 0,
};
static CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&CRC32C_RAW);

fn crc32c(seed: u32, parts: &[&[u8]]) -> u32 {
    // `digest_with_initial` reflects the value it is given; undo that so the
    // register starts at `seed`.
    let mut d = CRC32C.digest_with_initial(seed.reverse_bits());
    for p in parts {
        d.update(p);
    }
    d.finalize()
}

const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const BG_INODE_UNINIT: u16 = 0x1;
const GOOD_OLD_INODE_SIZE: usize = 128;

/// Sets atime, ctime, mtime and crtime of every used inode to `epoch`, and
/// zeroes unused inodes.
pub fn set_inode_times(file: &File, epoch: u32) -> io::Result<()> {
    let mut sb = vec![0u8; 1024];
    file.read_exact_at(&mut sb, 1024)?;
    if u16_at(&sb, 0x38) != 0xEF53 {
        return Err(bad("not an ext2/3/4 filesystem"));
    }
    let inodes_count = u64::from(u32_at(&sb, 0x00));
    let first_data_block = u64::from(u32_at(&sb, 0x14));
    let block_size = 1024u64 << u32_at(&sb, 0x18);
    let inodes_per_group = u64::from(u32_at(&sb, 0x28));
    let inode_size = usize::from(u16_at(&sb, 0x58));
    let first_ino = u64::from(u32_at(&sb, 0x54));
    let incompat = u32_at(&sb, 0x60);
    let ro_compat = u32_at(&sb, 0x64);
    let desc_size = if incompat & INCOMPAT_64BIT != 0 {
        u64::from(u16_at(&sb, 0xFE))
    } else {
        32
    };
    if inodes_per_group == 0 || inode_size < GOOD_OLD_INODE_SIZE || desc_size < 32 {
        return Err(bad("implausible superblock"));
    }
    let csum_seed = if ro_compat & RO_COMPAT_METADATA_CSUM == 0 {
        None
    } else if incompat & INCOMPAT_CSUM_SEED != 0 {
        Some(u32_at(&sb, 0x270))
    } else {
        Some(crc32c(!0, &[&sb[0x68..0x78]]))
    };

    let groups = inodes_count.div_ceil(inodes_per_group);
    let gdt = (first_data_block + 1) * block_size;
    let mut desc = vec![0u8; usize::try_from(desc_size).map_err(|_| bad("descriptor size"))?];
    let mut bitmap =
        vec![0u8; usize::try_from(inodes_per_group.div_ceil(8)).map_err(|_| bad("group size"))?];
    let mut inode = vec![0u8; inode_size];
    for g in 0..groups {
        file.read_exact_at(&mut desc, gdt + g * desc_size)?;
        if u16_at(&desc, 0x12) & BG_INODE_UNINIT != 0 {
            continue;
        }
        let hi = |off: usize| {
            if desc_size >= 64 {
                u64::from(u32_at(&desc, off)) << 32
            } else {
                0
            }
        };
        let bitmap_block = u64::from(u32_at(&desc, 0x04)) | hi(0x24);
        let table_block = u64::from(u32_at(&desc, 0x08)) | hi(0x28);
        file.read_exact_at(&mut bitmap, bitmap_block * block_size)?;
        for i in 0..inodes_per_group {
            let used = bitmap[usize::try_from(i / 8).unwrap_or(usize::MAX)] & (1 << (i % 8)) != 0;
            let ino = g * inodes_per_group + i + 1;
            if ino < first_ino && ino != 2 {
                continue;
            }
            let off = table_block * block_size + i * inode_size as u64;
            file.read_exact_at(&mut inode, off)?;
            if !used {
                // A freed inode (an edit by `--previous`) keeps its old
                // fields and a deletion time: zero it, as mke2fs leaves
                // inodes never used (an all-zero inode needs no checksum).
                if inode.iter().any(|b| *b != 0) {
                    inode.fill(0);
                    file.write_all_at(&inode, off)?;
                }
                continue;
            }
            stamp_inode(&mut inode, epoch);
            if let Some(seed) = csum_seed {
                let ino32 = u32::try_from(ino).map_err(|_| bad("inode number"))?;
                set_inode_checksum(&mut inode, seed, ino32);
            }
            file.write_all_at(&inode, off)?;
        }
    }
    file.sync_all()
}

fn extra_fits(inode: &[u8], off: usize, len: usize) -> bool {
    inode.len() > GOOD_OLD_INODE_SIZE
        && off + len <= GOOD_OLD_INODE_SIZE + usize::from(u16_at(inode, 0x80))
}

fn stamp_inode(inode: &mut [u8], epoch: u32) {
    for off in [0x08, 0x0C, 0x10] {
        put_u32(inode, off, epoch);
    }
    // ctime_extra, mtime_extra, atime_extra, crtime, crtime_extra.
    for (off, value) in [(0x84, 0), (0x88, 0), (0x8C, 0), (0x90, epoch), (0x94, 0)] {
        if extra_fits(inode, off, 4) {
            put_u32(inode, off, value);
        }
    }
}

/// The inode checksum of `metadata_csum` (the kernel's `ext4_inode_csum`).
fn set_inode_checksum(inode: &mut [u8], fs_seed: u32, ino: u32) {
    let generation = u32_at(inode, 0x64);
    let seed = crc32c(fs_seed, &[&ino.to_le_bytes(), &generation.to_le_bytes()]);
    let has_hi = extra_fits(inode, 0x82, 2);
    put_u16(inode, 0x7C, 0);
    if has_hi {
        put_u16(inode, 0x82, 0);
    }
    let csum = crc32c(seed, &[inode]);
    put_u16(inode, 0x7C, (csum & 0xFFFF) as u16);
    if has_hi {
        put_u16(inode, 0x82, (csum >> 16) as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_crc32c_matches_the_standard_check_value() {
        // CRC-32C("123456789") = 0xE3069283 with the usual inversions.
        assert_eq!(crc32c(!0, &[b"123456789"]) ^ !0, 0xE306_9283);
        // Feeding in parts is the same as feeding at once.
        assert_eq!(crc32c(7, &[b"1234", b"56789"]), crc32c(7, &[b"123456789"]));
    }
}
