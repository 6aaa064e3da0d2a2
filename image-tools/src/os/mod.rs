//! `image-tools os build`: a release of the Moho node OS from Debian packages
//! (DESIGN §8), in one command driven by `node-os.toml` (`docs/node-os.md`).
//!
//! 1. [`config`]: the file, checked against its schema.
//! 2. [`bootstrap`]: the Debian root by `debootstrap`, cached per package set.
//! 3. [`tree`]: a copy of it made into a Moho slot root (the agent and its
//!    units, the boot initramfs, STATE on `/var`, machine id and SSH host
//!    keys on STATE, os-release, the trusted root, the operator's overlays).
//! 4. `build` makes the slot image (`root.img`, `.chunks`, `.release.json`)
//!    for `repo add`; with `--disk`, `disk create` makes a bootable disk.

pub mod bootstrap;
pub mod config;
pub mod tree;

use std::fmt;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::build::{self, BuildError, BuildReport};
use crate::cli::{BuildArgs, DiskCreateArgs, DiskFormat, OsBuildArgs};
use crate::disk_create::{self, DiskCreateError};
use crate::initramfs::InitramfsError;

/// Why no node OS was built.
#[derive(Debug, thiserror::Error)]
pub enum OsBuildError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Not root: debootstrap and the file owners of a root tree need it.
    #[error(
        "os build must run as root (debootstrap, file owners in the tree); running as uid {uid}"
    )]
    NotRoot {
        /// The uid.
        uid: u32,
    },
    /// A path the build needs is missing.
    #[error("{what} {}: {source}", path.display())]
    Missing {
        /// What it is.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A tool could not be started.
    #[error("cannot run {tool}: {source}")]
    Spawn {
        /// The tool.
        tool: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A tool failed.
    #[error("{tool} failed ({status}):\n{output}")]
    Tool {
        /// The tool.
        tool: &'static str,
        /// Its exit status.
        status: String,
        /// The end of its output.
        output: String,
    },
    /// The tree does not hold exactly one kernel.
    #[error("{}: expected one kernel in lib/modules, found {found:?}", tree.display())]
    Kernel {
        /// The tree.
        tree: PathBuf,
        /// The versions found.
        found: Vec<String>,
    },
    /// The output directory holds a build and `--force` was not given.
    #[error("{} exists (give --force to replace it)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The boot initramfs.
    #[error("boot initramfs: {0}")]
    Initramfs(#[from] InitramfsError),
    /// The slot image.
    #[error("slot image: {0}")]
    Build(#[from] BuildError),
    /// The disk.
    #[error("disk: {0}")]
    Disk(#[from] DiskCreateError),
}

impl OsBuildError {
    /// Whether the input was refused (exit 3) rather than the build failing.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Config(_) | Self::Exists { .. } | Self::Missing { .. } => true,
            Self::Build(e) => e.is_bad_input(),
            Self::Initramfs(e) => e.is_bad_input(),
            Self::Disk(e) => e.is_bad_input(),
            _ => false,
        }
    }
}

/// What `os build` made.
#[derive(Debug)]
pub struct OsBuildReport {
    /// The slot image's report.
    pub image: BuildReport,
    /// The Debian root's cache directory, and whether it was made now.
    pub root: (PathBuf, bool),
    /// Packages in the release (`packages.txt`).
    pub packages: usize,
    /// The kernel version.
    pub kernel: String,
    /// The output directory.
    pub out: PathBuf,
    /// The disk, if asked for.
    pub disk: Option<disk_create::DiskCreateReport>,
}

impl fmt::Display for OsBuildReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Debian root {} ({})",
            self.root.0.display(),
            if self.root.1 { "made now" } else { "cached" }
        )?;
        writeln!(
            f,
            "{} packages (packages.txt), kernel {} with the boot initramfs (vmlinuz, initrd.img)",
            self.packages, self.kernel
        )?;
        write!(f, "{}", self.image)?;
        if let Some(d) = &self.disk {
            write!(f, "\n{d}")?;
        }
        write!(
            f,
            "\npublish it: image-tools repo add --repo REPO --keys KEYS --image {} --channel CHANNEL",
            self.image.out.display()
        )
    }
}

/// The name of the slot image in the output directory.
pub const IMAGE_NAME: &str = "root.img";

/// Runs `os build`.
pub fn run(args: &OsBuildArgs) -> Result<OsBuildReport, OsBuildError> {
    let mut cfg = config::load(&args.config)?;
    if let Some(v) = &args.version {
        cfg.version.clone_from(v);
    }
    cfg.overlays.extend(args.overlay.iter().cloned());
    let present = |what: &'static str, path: &Path| {
        std::fs::metadata(path)
            .map(|_| ())
            .map_err(|source| OsBuildError::Missing {
                what,
                path: path.to_owned(),
                source,
            })
    };
    present("trusted_root", &cfg.trusted_root)?;
    for o in &cfg.overlays {
        present("overlay", o)?;
    }
    let agent = args
        .agent
        .clone()
        .unwrap_or_else(|| beside_me("update-agent"));
    present("update-agent (--agent)", &agent)?;
    let boot_select = args
        .boot_select
        .clone()
        .unwrap_or_else(crate::initramfs::default_init);
    present("boot-select (--boot-select)", &boot_select)?;
    let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
    if uid != 0 {
        return Err(OsBuildError::NotRoot { uid });
    }
    std::fs::create_dir_all(&args.out).map_err(|source| OsBuildError::Io {
        path: args.out.clone(),
        source,
    })?;
    // Absolute: `useradd --root` and `systemctl --root` want one.
    let out = &args.out.canonicalize().map_err(|source| OsBuildError::Io {
        path: args.out.clone(),
        source,
    })?;
    let image = out.join(IMAGE_NAME);
    if image.exists() && !args.force {
        return Err(OsBuildError::Exists { path: image });
    }
    let cache = args
        .cache
        .clone()
        .or_else(|| std::env::var_os("MOHO_OS_CACHE").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(bootstrap::DEFAULT_CACHE));
    let root = bootstrap::debian_root(&cfg, &cache)?;

    let work = out.join("tree");
    let made = tree::make(
        &tree::Inputs {
            cfg: &cfg,
            base: &root.0,
            agent: &agent,
            boot_select: &boot_select,
        },
        &work,
        out,
    )?;
    let epoch = cfg
        .source_date_epoch
        .or_else(|| {
            std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|s| s.parse().ok())
        })
        .unwrap_or(config::DEFAULT_EPOCH);
    let built = build::run(&BuildArgs {
        rootfs: work.clone(),
        version: cfg.version.clone(),
        board: cfg.board.clone(),
        out: image.clone(),
        fs: cfg.fs,
        size: cfg.image_size,
        chunk_size: cfg.chunk_size,
        source_date_epoch: Some(epoch),
        previous: args.previous.clone(),
        force: true,
    });
    if !args.keep_tree {
        let _ = std::fs::remove_dir_all(&work);
    }
    let built = built?;
    let disk = match args.disk {
        None => None,
        Some(format) => Some(make_disk(&cfg, out, &built, format, args.force)?),
    };
    Ok(OsBuildReport {
        image: built,
        root,
        packages: made.packages,
        kernel: made.kernel,
        out: out.to_owned(),
        disk,
    })
}

/// The disk's file name for `format`.
pub fn disk_name(format: DiskFormat) -> String {
    format!("disk.{}", format.name())
}

fn make_disk(
    cfg: &config::NodeOsConfig,
    out: &Path,
    built: &BuildReport,
    format: DiskFormat,
    force: bool,
) -> Result<disk_create::DiskCreateReport, OsBuildError> {
    const MIB: u64 = 1 << 20;
    let image = built.manifest.image_length;
    // Room for the next releases to grow: a quarter more, in 64 MiB steps.
    let slot = cfg
        .slot_size
        .unwrap_or_else(|| (image + image / 4).div_ceil(64 * MIB) * 64 * MIB);
    let size = cfg
        .disk_size
        .unwrap_or(2 * slot + cfg.esp_size + 256 * MIB + 2 * MIB);
    Ok(disk_create::run(&DiskCreateArgs {
        out: out.join(disk_name(format)),
        size: Some(size),
        slot_size: slot,
        esp_size: cfg.esp_size,
        slot_a: Some(built.out.clone()),
        boot_kernel: Some(out.join("vmlinuz")),
        boot_initramfs: Some(out.join("initrd.img")),
        boot_cmdline: cfg.boot_cmdline.clone(),
        systemd_boot: PathBuf::from(crate::esp::DEFAULT_SYSTEMD_BOOT),
        format,
        force,
    })?)
}

/// A program installed beside the running `image-tools`.
fn beside_me(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .unwrap_or_else(|| PathBuf::from(name))
}
