//! What a tree holds, path by path, as far as an ext4 inode records it: kind,
//! permission bits, owner, size, device number, symbolic link target,
//! extended attributes, and which paths share an inode (hard links).
//!
//! Used for both sides of a `--previous` build: the new root tree and the
//! previous image mounted read-only (where `ino` is the ext4 inode number).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

/// The kind of an entry, with what identifies its content beyond the bytes of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file of this many bytes.
    File {
        /// Length in bytes.
        size: u64,
    },
    /// A symbolic link to this target.
    Symlink(PathBuf),
    /// A named pipe.
    Fifo,
    /// A character device.
    Char(u64),
    /// A block device.
    Block(u64),
    /// A socket (not representable by the build: refused).
    Socket,
}

/// One path of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Kind and content identity.
    pub kind: Kind,
    /// Permission bits (`0o7777`).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Extended attributes, name → value.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// (device, inode): paths with the same value are hard links of one file.
    pub inode: (u64, u64),
}

impl Entry {
    /// The `i_mode` of this entry's inode (type bits and permissions).
    pub fn mode(&self) -> u32 {
        let ty = match self.kind {
            Kind::Dir => 0o040_000,
            Kind::File { .. } => 0o100_000,
            Kind::Symlink(_) => 0o120_000,
            Kind::Fifo => 0o010_000,
            Kind::Char(_) => 0o020_000,
            Kind::Block(_) => 0o060_000,
            Kind::Socket => 0o140_000,
        };
        ty | self.perm
    }
}

/// Every path under `root` (relative; the root itself is the empty path),
/// without following symbolic links.
pub fn list(root: &Path) -> io::Result<BTreeMap<PathBuf, Entry>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = root.join(&rel);
        let meta = fs::symlink_metadata(&abs)?;
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            for entry in fs::read_dir(&abs)? {
                stack.push(rel.join(entry?.file_name()));
            }
            Kind::Dir
        } else if ft.is_file() {
            Kind::File { size: meta.len() }
        } else if ft.is_symlink() {
            Kind::Symlink(fs::read_link(&abs)?)
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_char_device() {
            Kind::Char(meta.rdev())
        } else if ft.is_block_device() {
            Kind::Block(meta.rdev())
        } else {
            Kind::Socket
        };
        let entry = Entry {
            kind,
            perm: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            xattrs: xattrs(&abs)?,
            inode: (meta.dev(), meta.ino()),
        };
        out.insert(rel, entry);
    }
    Ok(out)
}

/// The extended attributes of `path` itself (not of a link's target).
fn xattrs(path: &Path) -> io::Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let len = match rustix::fs::llistxattr_query(path) {
        Ok(n) => n,
        Err(rustix::io::Errno::OPNOTSUPP) => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    if len == 0 {
        return Ok(out);
    }
    let mut names = vec![0u8; len];
    let len = rustix::fs::llistxattr(path, &mut names[..])?;
    names.truncate(len);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let c_name = OsString::from_vec(name.to_vec());
        let vlen = rustix::fs::lgetxattr_query(path, c_name.as_os_str())?;
        let mut value = vec![0u8; vlen];
        let vlen = rustix::fs::lgetxattr(path, c_name.as_os_str(), &mut value[..])?;
        value.truncate(vlen);
        out.insert(name.to_vec(), value);
    }
    Ok(out)
}

/// Whether two regular files hold the same bytes (lengths already compared).
pub fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    use std::io::Read as _;
    let mut fa = fs::File::open(a)?;
    let mut fb = fs::File::open(b)?;
    let mut ba = vec![0u8; 1 << 16];
    let mut bb = vec![0u8; 1 << 16];
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }

    fn read_full(f: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    }
}
