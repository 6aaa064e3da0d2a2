//! `build --previous IMAGE`: the new ext4 slot image is the previous release's
//! image, edited into the new tree, so that consecutive releases share what
//! did not change (issue 14, `docs/benchmarks.md`).
//!
//! `mke2fs -d` numbers inodes in traversal order and places files one after
//! the other, so one added package renumbers every later inode and shifts
//! every later file: every directory block, extent block and most data
//! chunks change. Editing the previous image instead keeps every unchanged
//! file's inode number, its data blocks, its extent tree and every unchanged
//! directory block exactly where they were; removed and changed files free
//! their inodes and blocks, and new or changed files take free ones.
//!
//! 1. [`check`] (before anything is written): the previous image is an ext4
//!    image made by this tool (block and inode size, features) for the same
//!    board (its manifest's board, and the board's filesystem UUID, which also
//!    seeds every checksum and directory hash).
//! 2. [`listing`] of the previous image (mounted read-only) and of the tree;
//!    [`plan`] (pure) says what is kept, removed and created.
//! 3. The previous image is copied, grown with `resize2fs` only if its free
//!    blocks or inodes do not cover what is created, and edited by `debugfs` ([`debugfs`]: libext2fs
//!    does the allocation, directory, bitmap and checksum work; no ext4
//!    writer of our own).
//! 4. Every inode's times are set to the epoch and freed inodes are zeroed
//!    (`build_ext4::set_inode_times`), then `e2fsck -fn` must pass.
//!
//! Deterministic: the same previous image and tree give the same bytes
//! (debugfs' clock is the epoch; the edit is in path order).

pub mod debugfs;
pub mod listing;
pub mod plan;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{self, BuildError, ImageManifest};
use crate::build_ext4::{self, Ext4Params};

/// The superblock features (compat, incompat, ro_compat) of the images
/// `build_ext4` makes: ext_attr, dir_index; filetype, extent, 64bit, flex_bg;
/// sparse_super, large_file, huge_file, dir_nlink, extra_isize, metadata_csum.
pub const FEATURES: (u32, u32, u32) = (0x28, 0x2c2, 0x46b);

/// A previous image that passed [`check`].
#[derive(Debug, Clone)]
pub struct PreviousImage {
    /// Where it is.
    pub path: PathBuf,
    /// Its length in bytes.
    pub len: u64,
    /// Its inode count.
    pub inodes: u64,
    /// Inodes per block group.
    pub inodes_per_group: u64,
    /// Blocks per block group.
    pub blocks_per_group: u64,
    /// Free blocks (superblock count).
    pub free_blocks: u64,
    /// Free inodes (superblock count).
    pub free_inodes: u64,
}

impl PreviousImage {
    /// The size of the new image: `requested` (`--size`) or the previous
    /// image's, never smaller than it (blocks stay where they are), grown
    /// only when the free blocks or inodes do not cover what the edit
    /// creates (then by at least a 32nd, in whole MiB, so the next releases
    /// do not grow each time), with enough block groups for the inodes.
    pub fn size_for(&self, requested: Option<u64>, need_blocks: u64, need_inodes: u64) -> u64 {
        const MIB: u64 = 1 << 20;
        let bs = build_ext4::BLOCK_SIZE;
        let mut size = requested.unwrap_or(self.len).max(self.len);
        let have = self.free_blocks + (size - self.len) / bs;
        if need_blocks > have {
            let grow = ((need_blocks - have) * bs).max(self.len / 32);
            size = (size + grow).div_ceil(MIB) * MIB;
        }
        if need_inodes > self.free_inodes {
            let inodes = self.inodes + need_inodes - self.free_inodes;
            let groups = inodes.div_ceil(self.inodes_per_group);
            size = size.max(groups * self.blocks_per_group * bs);
        }
        size
    }
}

/// Blocks and inodes the edit takes at most (what it frees is not counted):
/// each new file's data and one extent block, a block per new directory and
/// long symbolic link, and some for directories that grow.
pub fn needs(ops: &[plan::Op], tree: &BTreeMap<PathBuf, listing::Entry>) -> (u64, u64) {
    let bs = build_ext4::BLOCK_SIZE;
    let (mut blocks, mut inodes) = (64, 0);
    for op in ops {
        match op {
            plan::Op::Write(p) => {
                inodes += 1;
                if let Some(listing::Kind::File { size }) = tree.get(p).map(|e| &e.kind) {
                    blocks += size.div_ceil(bs) + 1;
                }
            }
            plan::Op::Mkdir(_) => {
                inodes += 1;
                blocks += 1;
            }
            plan::Op::Symlink(_, target) => {
                inodes += 1;
                blocks += u64::from(target.as_os_str().len() > 59);
            }
            plan::Op::Fifo(_) | plan::Op::Device(..) => inodes += 1,
            plan::Op::Link(..) => blocks += 1,
            _ => {}
        }
    }
    (blocks + inodes / 16, inodes)
}

/// What the edit did, for the build report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The previous image.
    pub previous: PathBuf,
    /// Paths of the tree whose inode and blocks were kept.
    pub kept: usize,
    /// Paths of the tree.
    pub paths: usize,
    /// Paths of the previous image removed or replaced.
    pub removed: usize,
    /// Whether the image was grown.
    pub grown_from: Option<u64>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "built on {}: {} of {} paths kept their inode and blocks, {} created, {} removed or replaced",
            self.previous.display(),
            self.kept,
            self.paths,
            self.paths - self.kept,
            self.removed
        )?;
        if let Some(from) = self.grown_from {
            write!(f, ", grown from {from} bytes")?;
        }
        Ok(())
    }
}

fn refuse(path: &Path, detail: impl Into<String>) -> BuildError {
    BuildError::Previous {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// Checks that `path` is an ext4 slot image of `board` (filesystem UUID
/// `uuid`) made by this tool. Reads only.
pub fn check(path: &Path, board: &str, uuid: &str) -> Result<PreviousImage, BuildError> {
    let manifest = build::manifest_path(path);
    if let Ok(text) = fs::read(&manifest) {
        let m: ImageManifest = serde_json::from_slice(&text).map_err(|e| {
            refuse(
                path,
                format!("its manifest {} is unreadable: {e}", manifest.display()),
            )
        })?;
        if m.board != board {
            return Err(BuildError::PreviousBoard {
                path: path.to_owned(),
                detail: format!(
                    "its manifest says board {:?}, this build is for {board:?}",
                    m.board
                ),
            });
        }
        if m.filesystem != "ext4" {
            return Err(refuse(
                path,
                format!("it is {}; --previous needs an ext4 image", m.filesystem),
            ));
        }
    }
    let file = File::open(path).map_err(|source| BuildError::Io {
        path: path.to_owned(),
        op: "open previous image",
        source,
    })?;
    let len = file
        .metadata()
        .map_err(|source| BuildError::Io {
            path: path.to_owned(),
            op: "stat previous image",
            source,
        })?
        .len();
    let mut sb = [0u8; 1024];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut sb, 1024)
        .map_err(|_| refuse(path, format!("{len} bytes: too short for an ext4 image")))?;
    let u16_at = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    if u16_at(0x38) != 0xEF53 {
        return Err(refuse(path, "not an ext4 filesystem (no superblock magic)"));
    }
    let features = (u32_at(0x5C), u32_at(0x60), u32_at(0x64));
    let block_size = 1024u64 << u32_at(0x18).min(16);
    let inode_size = u16_at(0x58);
    if features != FEATURES
        || block_size != build_ext4::BLOCK_SIZE
        || u64::from(inode_size) != build_ext4::INODE_SIZE
    {
        return Err(refuse(
            path,
            format!(
                "another ext4 layout (features {:#x}/{:#x}/{:#x}, {block_size}-byte blocks, {inode_size}-byte inodes; \
                 image-tools makes {:#x}/{:#x}/{:#x}, {}, {}): build the previous release with image-tools build",
                features.0,
                features.1,
                features.2,
                FEATURES.0,
                FEATURES.1,
                FEATURES.2,
                build_ext4::BLOCK_SIZE,
                build_ext4::INODE_SIZE
            ),
        ));
    }
    let found = format_uuid(&sb[0x68..0x78]);
    if found != uuid {
        return Err(BuildError::PreviousBoard {
            path: path.to_owned(),
            detail: format!("its filesystem UUID is {found}, board {board:?}'s is {uuid}"),
        });
    }
    let blocks = u64::from(u32_at(0x04)) | (u64::from(u32_at(0x150)) << 32);
    if blocks * block_size > len {
        return Err(refuse(
            path,
            format!("truncated: {len} bytes, its filesystem has {blocks} blocks"),
        ));
    }
    Ok(PreviousImage {
        path: path.to_owned(),
        len,
        inodes: u64::from(u32_at(0x00)),
        inodes_per_group: u64::from(u32_at(0x28)).max(1),
        blocks_per_group: u64::from(u32_at(0x20)).max(1),
        free_blocks: u64::from(u32_at(0x0C)) | (u64::from(u32_at(0x158)) << 32),
        free_inodes: u64::from(u32_at(0x10)),
    })
}

fn format_uuid(b: &[u8]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The previous image mounted read-only; unmounted when dropped.
struct Mounted {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl Mounted {
    fn new(image: &Path) -> Result<Self, BuildError> {
        let dir = tempfile::Builder::new()
            .prefix(".moho-previous-")
            .tempdir()
            .map_err(|source| BuildError::Io {
                path: std::env::temp_dir(),
                op: "create mount point",
                source,
            })?;
        let mut cmd = Command::new("mount");
        cmd.args(["-t", "ext4", "-o", "ro,loop,noatime"])
            .arg(image)
            .arg(dir.path());
        build::run_tool(cmd, "mount", "mount")?;
        Ok(Self { dir, mounted: true })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn unmount(mut self) -> Result<(), BuildError> {
        self.mounted = false;
        let mut cmd = Command::new("umount");
        cmd.arg(self.dir.path());
        build::run_tool(cmd, "umount", "mount")
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.dir.path()).output();
        }
    }
}

struct Compare<'a> {
    old: &'a Path,
    new: &'a Path,
}

impl plan::SameContent for Compare<'_> {
    fn same(&self, path: &Path) -> std::io::Result<bool> {
        listing::same_bytes(&self.old.join(path), &self.new.join(path))
    }
}

/// Makes `image` (a file that may be replaced) from `previous` edited into
/// `tree`, `requested` bytes or as [`PreviousImage::size_for`] says.
pub fn make(
    previous: &PreviousImage,
    tree: &Path,
    image: &Path,
    params: &Ext4Params,
    requested: Option<u64>,
) -> Result<Summary, BuildError> {
    let io = |path: &Path, op: &'static str| {
        let path = path.to_owned();
        move |source| BuildError::Io { path, op, source }
    };
    let new = listing::list(tree).map_err(io(tree, "list tree"))?;
    let mounted = Mounted::new(&previous.path)?;
    let old = listing::list(mounted.path()).map_err(io(&previous.path, "list previous image"))?;
    let plan = plan::plan(
        &old,
        &new,
        &Compare {
            old: mounted.path(),
            new: tree,
        },
    )
    .map_err(|e| match e {
        plan::PlanError::Compare { path, source } => BuildError::Io {
            path,
            op: "compare with the previous image",
            source,
        },
        e @ plan::PlanError::Socket(_) => refuse(tree, e.to_string()),
    })?;
    mounted.unmount()?;

    fs::copy(&previous.path, image).map_err(io(image, "copy previous image"))?;
    let (need_blocks, need_inodes) = needs(&plan.ops, &new);
    let size = previous.size_for(requested, need_blocks, need_inodes);
    let grown_from = (size > previous.len).then_some(previous.len);
    if grown_from.is_some() {
        OpenOptions::new()
            .write(true)
            .open(image)
            .and_then(|f| f.set_len(size))
            .map_err(io(image, "grow"))?;
        let mut cmd = Command::new("resize2fs");
        cmd.env("E2FSPROGS_FAKE_TIME", params.epoch.to_string())
            .arg("-f")
            .arg(image);
        build::run_tool(cmd, "resize2fs", "e2fsprogs")?;
    }
    let values = tempfile::Builder::new()
        .prefix(".moho-xattrs-")
        .tempdir_in(build::parent_dir(image))
        .map_err(io(image, "create temporary directory"))?;
    let (script, files) = debugfs::script(&plan.ops, tree, values.path(), params.epoch)
        .map_err(|e| refuse(&previous.path, e.to_string()))?;
    debugfs::run(image, &script, &files)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .map_err(io(image, "open"))?;
    build_ext4::set_inode_times(&file, params.epoch).map_err(io(image, "normalize inode times"))?;
    drop(file);
    fsck(image)?;
    Ok(Summary {
        previous: previous.path.clone(),
        kept: plan.kept.len(),
        paths: new.len(),
        removed: plan
            .ops
            .iter()
            .filter(|op| matches!(op, plan::Op::Remove(_) | plan::Op::RemoveDir(_)))
            .count(),
        grown_from,
    })
}

/// `e2fsck -fn`: the edited image must be clean.
fn fsck(image: &Path) -> Result<(), BuildError> {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .map_err(|source| BuildError::Io {
            path: PathBuf::from("e2fsck"),
            op: "run",
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(BuildError::ToolFailed {
        tool: "e2fsck",
        status: out.status.to_string(),
        stderr: format!(
            "the edited image is not clean:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn previous() -> PreviousImage {
        PreviousImage {
            path: PathBuf::from("p.img"),
            len: 700 << 20,
            inodes: 6 * 4096,
            inodes_per_group: 4096,
            blocks_per_group: 32768,
            free_blocks: 5000,
            free_inodes: 1000,
        }
    }

    #[test]
    fn the_image_keeps_its_size_while_free_blocks_and_inodes_cover_the_edit() {
        let p = previous();
        assert_eq!(p.size_for(None, 5000, 1000), p.len);
        // --size larger than the previous image is honoured; smaller never shrinks.
        assert_eq!(p.size_for(Some(800 << 20), 5000, 10), 800 << 20);
        assert_eq!(p.size_for(Some(1 << 20), 10, 10), p.len);
    }

    #[test]
    fn the_image_grows_by_at_least_a_32nd_and_by_whole_groups_for_inodes() {
        let p = previous();
        // One block short: a 32nd more (21.875 MiB → 22 MiB).
        assert_eq!(p.size_for(None, 5001, 0), p.len + (22 << 20));
        // Far short: by what is missing, in whole MiB.
        let grown = p.size_for(None, 5000 + 25_600, 0);
        assert_eq!(grown, p.len + (100 << 20));
        // 1001 new inodes, 1000 free: a seventh group (7 × 128 MiB).
        assert_eq!(p.size_for(None, 0, 1001), 7 * (128 << 20));
    }
}
