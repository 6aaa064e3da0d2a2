//! `image-tools build`: a root filesystem tree (with its kernel in `/boot`)
//! becomes a slot image, reproducibly, with its chunk index and a release
//! manifest alongside.
//!
//! Outputs, all written under temporary names and renamed when complete:
//! - `FILE`: the slot image (ext4 or erofs);
//! - `FILE.chunks`: its chunk index (`moho-chunk-index-v1`, see `moho_release::chunk_index`);
//! - `FILE.release.json`: version, board, filesystem, epoch, length and
//!   SHA-256, which `repo add` reads.
//!
//! Reproducibility: every timestamp in the image is the build epoch
//! (`--source-date-epoch`, env `SOURCE_DATE_EPOCH`, else the newest mtime in
//! the tree) and the filesystem UUID (and ext4's directory hash seed) is
//! derived from the board alone; so the same tree and epoch give the same
//! bytes, and consecutive releases of a board keep every block whose content
//! did not change where it was: releases share what did not change, so an
//! install copies those chunks from the booted slot (`docs/benchmarks.md`,
//! "consecutive node-OS releases").

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use moho_release::chunk_index::{ChunkIndex, chunk_size_is_valid};
use moho_release::target_name::{TargetNameError, validate_component};
use moho_release::{Sha256Digest, digest::Sha256Hasher};
use serde::{Deserialize, Serialize};

use crate::build_erofs;
use crate::build_ext4::{self, Ext4Params};
use crate::cli::{BuildArgs, Filesystem};
use crate::ext4_previous;
use crate::rootfs;

/// The `format` of a release manifest.
pub const MANIFEST_FORMAT: &str = "moho-image-v1";

/// Why a slot image was not built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `--rootfs` is not a directory.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// No kernel in `/boot`.
    #[error("{}: no kernel in /boot (expected a file named vmlinuz*, vmlinux*, bzImage* or Image*): a slot carries its own kernel", rootfs.display())]
    NoKernel {
        /// The tree.
        rootfs: PathBuf,
    },
    /// `--version` is not semver.
    #[error("version {version:?} is not a semantic version (e.g. 1.4.0): {reason}")]
    BadVersion {
        /// The version given.
        version: String,
        /// Why.
        reason: String,
    },
    /// `--board` is not a plain name.
    #[error("board {board:?}: {source}")]
    BadBoard {
        /// The board given.
        board: String,
        /// Why.
        source: TargetNameError,
    },
    /// A chunk size that is not a power of two within bounds.
    #[error("chunk size {0} is not a power of two between 4 KiB and 1 GiB")]
    ChunkSize(u64),
    /// Board and version that nodes would refuse to install (e.g. target
    /// names over the length limit): refused before building anything.
    #[error("{0}; nothing was built")]
    Release(moho_repo::RepoError),
    /// The epoch is outside what the filesystems store.
    #[error("source date epoch {0} is outside 0..=2147483647")]
    BadEpoch(i64),
    /// The output exists.
    #[error("{}: already exists (use --force to replace it)", path.display())]
    Exists {
        /// The output.
        path: PathBuf,
    },
    /// The image does not fit `--size`.
    #[error("the image would not fit --size: {detail}")]
    TooSmall {
        /// Numbers.
        detail: String,
    },
    /// A formatting tool is not installed.
    #[error("{tool} not found: install the Debian package {package}")]
    MissingTool {
        /// The program.
        tool: &'static str,
        /// Its package.
        package: &'static str,
    },
    /// A formatting tool failed.
    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed {
        /// The program.
        tool: &'static str,
        /// Its exit status.
        status: String,
        /// What it said.
        stderr: String,
    },
    /// `--previous` names an image this build cannot be based on.
    #[error("previous image {}: {detail}; nothing was built", path.display())]
    Previous {
        /// The previous image.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// `--previous` names an image of another board.
    #[error("previous image {} is for another board ({detail}); nothing was built", path.display())]
    PreviousBoard {
        /// The previous image.
        path: PathBuf,
        /// What says so.
        detail: String,
    },
    /// Reading or writing failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
}

impl BuildError {
    /// Whether the input was refused (as opposed to a failure of the system).
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            BuildError::MissingTool { .. } | BuildError::ToolFailed { .. } | BuildError::Io { .. }
        )
    }
}

/// Runs a formatting tool, mapping "not installed" and failures to errors.
pub(crate) fn run_tool(
    mut cmd: Command,
    tool: &'static str,
    package: &'static str,
) -> Result<(), BuildError> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            BuildError::MissingTool { tool, package }
        } else {
            BuildError::Io {
                path: PathBuf::from(tool),
                op: "run",
                source: e,
            }
        }
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BuildError::ToolFailed {
            tool,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// The release manifest written next to an image (`FILE.release.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageManifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Release version (semver).
    pub version: String,
    /// Board.
    pub board: String,
    /// `ext4` or `erofs`.
    pub filesystem: String,
    /// Every timestamp in the image.
    pub source_date_epoch: i64,
    /// Chunk size of `FILE.chunks`.
    pub chunk_size: u64,
    /// Image length, bytes.
    pub image_length: u64,
    /// Image SHA-256.
    pub image_sha256: Sha256Digest,
}

/// `FILE.release.json`.
pub fn manifest_path(image: &Path) -> PathBuf {
    sidecar(image, "release.json")
}

/// `FILE.chunks`.
pub fn chunks_path(image: &Path) -> PathBuf {
    sidecar(image, "chunks")
}

fn sidecar(image: &Path, ext: &str) -> PathBuf {
    let mut s = image.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// What `build` produced.
#[derive(Debug)]
pub struct BuildReport {
    /// The image.
    pub out: PathBuf,
    /// Its manifest.
    pub manifest: ImageManifest,
    /// Number of chunks.
    pub chunks: u64,
    /// What `--previous` kept.
    pub previous: Option<ext4_previous::Summary>,
}

impl fmt::Display for BuildReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        write!(
            f,
            "{}: {} {} for {}, {} bytes, sha256 {}, {} chunks of {} bytes, epoch {}",
            self.out.display(),
            m.filesystem,
            m.version,
            m.board,
            m.image_length,
            m.image_sha256,
            self.chunks,
            m.chunk_size,
            m.source_date_epoch
        )?;
        if let Some(p) = &self.previous {
            write!(f, "\n{p}")?;
        }
        Ok(())
    }
}

/// Runs `build`.
pub fn run(args: &BuildArgs) -> Result<BuildReport, BuildError> {
    // Everything that can be refused is checked before anything is written.
    let version = semver::Version::parse(&args.version).map_err(|e| BuildError::BadVersion {
        version: args.version.clone(),
        reason: e.to_string(),
    })?;
    validate_component(&args.board).map_err(|source| BuildError::BadBoard {
        board: args.board.clone(),
        source,
    })?;
    if !chunk_size_is_valid(args.chunk_size) {
        return Err(BuildError::ChunkSize(args.chunk_size));
    }
    // Every rule a node applies to the release's names, before mkfs runs.
    moho_repo::add::check_identity(&args.board, &version.to_string())
        .map_err(BuildError::Release)?;
    if !args.rootfs.is_dir() {
        return Err(BuildError::NotADirectory {
            path: args.rootfs.clone(),
        });
    }
    if rootfs::kernels(&args.rootfs).is_empty() {
        return Err(BuildError::NoKernel {
            rootfs: args.rootfs.clone(),
        });
    }
    if !args.force && args.out.symlink_metadata().is_ok() {
        return Err(BuildError::Exists {
            path: args.out.clone(),
        });
    }
    let stats = rootfs::scan(&args.rootfs).map_err(|source| BuildError::Io {
        path: args.rootfs.clone(),
        op: "scan tree",
        source,
    })?;
    let epoch = args.source_date_epoch.unwrap_or(stats.newest_mtime);
    let epoch32 = u32::try_from(epoch)
        .ok()
        .filter(|e| i32::try_from(*e).is_ok())
        .ok_or(BuildError::BadEpoch(epoch))?;
    // Headroom for the inodes of the next releases' new files when they are
    // built on this one (`--previous`), which keeps the inode count.
    // A quarter more plus 256 costs 64 bytes of inode table per file.
    let ext4_inodes = stats.inodes + stats.inodes / 4 + 256;
    let ext4_estimate = ext4_estimate(&stats);
    if let (Filesystem::Ext4, Some(size)) = (args.fs, args.size)
        && ext4_estimate > size
    {
        return Err(BuildError::TooSmall {
            detail: format!(
                "{} needs about {ext4_estimate} bytes as ext4, --size is {size}",
                args.rootfs.display()
            ),
        });
    }
    let uuid = derive_uuid(&args.board);
    let previous = match (&args.previous, args.fs) {
        (None, _) => None,
        (Some(p), Filesystem::Erofs) => {
            return Err(BuildError::Previous {
                path: p.clone(),
                detail: "--previous works with ext4 images only (--fs ext4)".to_owned(),
            });
        }
        (Some(p), Filesystem::Ext4) => {
            let uid = fs::metadata("/proc/self")
                .map_or(u32::MAX, |m| std::os::unix::fs::MetadataExt::uid(&m));
            if uid != 0 {
                return Err(BuildError::Previous {
                    path: p.clone(),
                    detail: format!(
                        "--previous needs root (the previous image is mounted read-only to compare); running as uid {uid}"
                    ),
                });
            }
            let prev = ext4_previous::check(p, &args.board, &uuid)?;
            if let Some(size) = args.size
                && size < prev.len
            {
                return Err(BuildError::Previous {
                    path: p.clone(),
                    detail: format!(
                        "it is {} bytes and --size is {size}: a release built on a previous one keeps its blocks, so it cannot be smaller",
                        prev.len
                    ),
                });
            }
            Some(prev)
        }
    };

    let dir = parent_dir(&args.out);
    let io_err = |path: &Path, op: &'static str| {
        let path = path.to_owned();
        move |source| BuildError::Io { path, op, source }
    };
    let staged = tempfile::Builder::new()
        .prefix(".moho-build-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(&dir)
        .map_err(io_err(&dir, "create temporary file"))?;
    let mut summary = None;
    match args.fs {
        Filesystem::Ext4 => {
            let size = args.size.unwrap_or(ext4_estimate);
            staged
                .as_file()
                .set_len(size)
                .map_err(io_err(staged.path(), "size"))?;
            let params = Ext4Params {
                uuid: uuid.clone(),
                epoch: epoch32,
                inodes: ext4_inodes,
            };
            match &previous {
                None => build_ext4::make(&args.rootfs, staged.path(), &params)?,
                Some(prev) => {
                    summary = Some(ext4_previous::make(
                        prev,
                        &args.rootfs,
                        staged.path(),
                        &params,
                        args.size,
                    )?);
                }
            }
        }
        Filesystem::Erofs => {
            build_erofs::make(&args.rootfs, staged.path(), &uuid, epoch32)?;
            let len = fs::metadata(staged.path())
                .map_err(io_err(staged.path(), "stat"))?
                .len();
            if let Some(size) = args.size
                && len > size
            {
                return Err(BuildError::TooSmall {
                    detail: format!("the erofs image is {len} bytes, --size is {size}"),
                });
            }
        }
    }

    let image = File::open(staged.path()).map_err(io_err(staged.path(), "open"))?;
    let index = ChunkIndex::build(&image, args.chunk_size).map_err(|e| BuildError::Io {
        path: staged.path().to_owned(),
        op: "index chunks",
        source: io::Error::other(e.to_string()),
    })?;
    let manifest = ImageManifest {
        format: MANIFEST_FORMAT.to_owned(),
        version: version.to_string(),
        board: args.board.clone(),
        filesystem: args.fs.name().to_owned(),
        source_date_epoch: epoch,
        chunk_size: args.chunk_size,
        image_length: index.image_length(),
        image_sha256: index.image_sha256(),
    };
    let mut manifest_json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    manifest_json.push(b'\n');
    let chunks = stage_file(&dir, &index.to_bytes())?;
    let manifest_file = stage_file(&dir, &manifest_json)?;
    staged.persist(&args.out).map_err(|e| BuildError::Io {
        path: args.out.clone(),
        op: "rename into place",
        source: e.error,
    })?;
    for (tmp, dest) in [
        (chunks, chunks_path(&args.out)),
        (manifest_file, manifest_path(&args.out)),
    ] {
        tmp.persist(&dest).map_err(|e| BuildError::Io {
            path: dest.clone(),
            op: "rename into place",
            source: e.error,
        })?;
    }
    Ok(BuildReport {
        out: args.out.clone(),
        chunks: index.chunk_count(),
        manifest,
        previous: summary,
    })
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn stage_file(dir: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile, BuildError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".moho-build-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|source| BuildError::Io {
            path: dir.to_owned(),
            op: "create temporary file",
            source,
        })?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|source| BuildError::Io {
            path: tmp.path().to_owned(),
            op: "write",
            source,
        })?;
    Ok(tmp)
}

/// A generous ext4 size for a tree: content, inode tables, metadata, slack;
/// rounded up to 1 MiB.
fn ext4_estimate(stats: &rootfs::TreeStats) -> u64 {
    let inodes = stats.inodes + stats.inodes / 4 + 256;
    let bytes = stats.blocks * build_ext4::BLOCK_SIZE
        + inodes * build_ext4::INODE_SIZE
        + stats.blocks * build_ext4::BLOCK_SIZE / 32
        + (8 << 20);
    bytes.div_ceil(1 << 20) * (1 << 20)
}

/// The filesystem UUID of a board's slot images (RFC 9562 version 8): the
/// same for every release, because the UUID seeds every inode checksum and
/// ext4's directory hashes, and a per-release UUID would change every
/// metadata block between releases. (Slots are found by partition GUID,
/// never by filesystem UUID.)
fn derive_uuid(board: &str) -> String {
    let mut h = Sha256Hasher::new();
    h.update(format!("moho-slot-image\0{board}").as_bytes());
    let d = h.finish();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_bytes()[..16]);
    b[6] = (b[6] & 0x0F) | 0x80;
    b[8] = (b[8] & 0x3F) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_stable_and_well_formed() {
        let a = derive_uuid("amd64-generic");
        assert_eq!(a, derive_uuid("amd64-generic"));
        assert_ne!(a, derive_uuid("amd64-vm"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
    }

    #[test]
    fn sidecars_sit_next_to_the_image() {
        assert_eq!(
            chunks_path(Path::new("out/root.img")),
            Path::new("out/root.img.chunks")
        );
        assert_eq!(
            manifest_path(Path::new("root.img")),
            Path::new("root.img.release.json")
        );
    }
}
