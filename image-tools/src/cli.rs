//! The `image-tools` command line: one clap definition per command, and the
//! dispatch from a parsed command line to the module that implements it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::{
    build, disk_create, initramfs, keygen, os, publish, repo_add, repo_init, repo_list,
    repo_migrate, repo_promote, repo_refresh, repo_rotate, verify,
};

/// Build and publish Moho OS images.
#[derive(Debug, Parser)]
#[command(name = "image-tools", version, about, after_help = crate::exit::HELP)]
pub struct Cli {
    /// Logging flags (`--log-format`).
    #[command(flatten)]
    pub log: moho_cli::LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Whole-disk images in the Moho layout.
    #[command(subcommand)]
    Disk(DiskCommand),
    /// Generate ed25519 signing keys (PKCS#8 PEM, mode 0600) for the TUF roles.
    Keygen(KeygenArgs),
    /// Build a reproducible slot image, its chunk index and release manifest from a root filesystem tree.
    Build(BuildArgs),
    /// Create and change the signed TUF release repository.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Check a repository, a target or a local file exactly as a node would (exit 0 only if all holds).
    Verify(VerifyArgs),
    /// Upload a signed repository to an update server (accepted only if it verifies there).
    Publish(PublishArgs),
    /// Build the boot initramfs: boot-select as /init plus the kernel modules it needs.
    Initramfs(InitramfsArgs),
    /// The Moho node OS, built from Debian packages (docs/node-os.md).
    #[command(subcommand)]
    Os(OsCommand),
}

/// `image-tools os ...`
#[derive(Debug, Subcommand)]
pub enum OsCommand {
    /// Build a node OS release from Debian packages with debootstrap, as node-os.toml says:
    /// OUT/root.img (+ .chunks, .release.json) for `repo add`, and with --disk a bootable disk.
    Build(OsBuildArgs),
}

/// `image-tools os build`
#[derive(Debug, Args)]
pub struct OsBuildArgs {
    /// The node OS configuration (TOML; see docs/node-os.md). Relative paths in it are
    /// relative to the file.
    #[arg(long)]
    pub config: PathBuf,
    /// Output directory: root.img, root.img.chunks, root.img.release.json, vmlinuz,
    /// initrd.img, packages.txt (and disk.FORMAT with --disk).
    #[arg(long)]
    pub out: PathBuf,
    /// The release version, instead of the configuration's `version` (semver).
    #[arg(long)]
    pub version: Option<String>,
    /// One more overlay directory copied over the tree after the configuration's (repeat
    /// for several; the last wins).
    #[arg(long)]
    pub overlay: Vec<PathBuf>,
    /// Also write a bootable disk (ESP with systemd-boot and the boot selector, the image in
    /// ROOT-A, STATE) as OUT/disk.FORMAT.
    #[arg(long, value_enum)]
    pub disk: Option<DiskFormat>,
    /// Cache of Debian packages and roots (default: $MOHO_OS_CACHE, else /var/cache/moho-os).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// The update-agent binary to install (default: update-agent beside image-tools).
    #[arg(long)]
    pub agent: Option<PathBuf>,
    /// The static boot-select for the boot initramfs (default: boot-select beside image-tools).
    #[arg(long)]
    pub boot_select: Option<PathBuf>,
    /// Keep the root tree (OUT/tree) after the image is built.
    #[arg(long)]
    pub keep_tree: bool,
    /// The previous release's root.img: unchanged files keep their inode numbers and blocks,
    /// so nodes on that release download only what changed (docs/benchmarks.md).
    #[arg(long, value_name = "IMAGE")]
    pub previous: Option<PathBuf>,
    /// Replace an existing build in OUT.
    #[arg(long)]
    pub force: bool,
}

/// `image-tools initramfs`
#[derive(Debug, Args)]
pub struct InitramfsArgs {
    /// The kernel's modules directory, /lib/modules/<version> (with modules.dep: run
    /// `depmod -b ROOT VERSION` on a tree unpacked from a package).
    #[arg(long)]
    pub kernel_modules: PathBuf,
    /// Modules to include, comma-separated (e.g. virtio_blk,virtio_pci,erofs); their
    /// dependencies from modules.dep come along. Names built into the kernel are skipped.
    #[arg(long, value_delimiter = ',', required = true)]
    pub modules: Vec<String>,
    /// Output file (gzip-compressed newc cpio).
    #[arg(long)]
    pub out: PathBuf,
    /// The /init program: a static boot-select (default: boot-select beside image-tools).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Replace an existing output.
    #[arg(long)]
    pub force: bool,
}

/// `image-tools publish`
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Update server base URL, e.g. https://updates.example.com
    #[arg(long)]
    pub server: String,
    /// Admin API token (`update-server token create --role admin`).
    #[arg(long, env = "MOHO_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Repository directory (metadata/ and targets/).
    #[arg(long)]
    pub repo: PathBuf,
}

/// `image-tools keygen`
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Directory for the key files (created with mode 0700 if missing). Writes root-N.pem,
    /// targets-N.pem, snapshot-1.pem and timestamp-1.pem; refuses to overwrite any key.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of root keys (for a root threshold above 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub root_keys: u32,
    /// Number of targets keys (for a targets threshold above 1).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub targets_keys: u32,
}

/// Filesystem of a slot image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Filesystem {
    /// ext4 without journal, every timestamp set to the build epoch.
    Ext4,
    /// erofs (read-only, compact), every timestamp set to the build epoch.
    Erofs,
}

impl Filesystem {
    /// The name used on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Filesystem::Ext4 => "ext4",
            Filesystem::Erofs => "erofs",
        }
    }
}

/// `image-tools build`
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Root filesystem tree of the slot; must hold its kernel in /boot (vmlinuz*, vmlinux*, bzImage*, Image*).
    #[arg(long)]
    pub rootfs: PathBuf,
    /// Release version, semver (e.g. 1.4.0).
    #[arg(long)]
    pub version: String,
    /// Board the image is for, e.g. amd64-generic (letters, digits, '.', '_', '+', '-').
    #[arg(long)]
    pub board: String,
    /// Output image; FILE.chunks (chunk index) and FILE.release.json (manifest) are written beside it.
    #[arg(long)]
    pub out: PathBuf,
    /// Filesystem of the image.
    #[arg(long, value_enum, default_value_t = Filesystem::Ext4)]
    pub fs: Filesystem,
    /// Image size limit, e.g. 1G: ext4 images are made exactly this size (default: fitted to the
    /// tree); erofs images are as small as they can be and refused if larger.
    #[arg(long, value_parser = parse_bytes)]
    pub size: Option<u64>,
    /// Chunk size of the chunk index: a power of two from 4KiB to 1GiB.
    #[arg(long, value_parser = parse_bytes, default_value = "4MiB")]
    pub chunk_size: u64,
    /// Timestamp given to every file and to the filesystem, seconds since 1970 (default: the
    /// newest modification time in the tree).
    #[arg(long, env = "SOURCE_DATE_EPOCH")]
    pub source_date_epoch: Option<i64>,
    /// The previous release's slot image (ext4, same board): unchanged files keep their inode
    /// numbers and blocks, so nodes on it download only what changed (needs root: it is
    /// mounted read-only to compare).
    #[arg(long, value_name = "IMAGE")]
    pub previous: Option<PathBuf>,
    /// Replace an existing output.
    #[arg(long)]
    pub force: bool,
}

/// `image-tools repo ...`
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create an empty signed repository (metadata/ and targets/) trusting the keys in --keys.
    Init(RepoInitArgs),
    /// Publish an image built by `build` (and its chunk index) for one or more channels.
    Add(RepoAddArgs),
    /// Sign an already published version for one more channel (e.g. beta to stable).
    Promote(RepoPromoteArgs),
    /// Re-sign snapshot and timestamp (online keys) so that they do not expire.
    Refresh(RepoRefreshArgs),
    /// List the published releases and when each role's metadata expires.
    List(RepoListArgs),
    /// Publish a new root trusting new keys, signed by the old and the new root keys.
    Rotate(RepoRotateArgs),
    /// Move a repository made by older image-tools (targets at HASH.board/version/file) to the
    /// TUF specification's layout (board/version/HASH.file), in place: atomic per file,
    /// resumable, no metadata change, no key needed.
    Migrate(RepoMigrateArgs),
}

/// Expiry of root metadata.
#[derive(Debug, Args)]
pub struct RootExpiry {
    /// How long the new root metadata stays valid, e.g. 365d.
    #[arg(long, value_parser = parse_duration, default_value = "365d")]
    pub root_expires: Duration,
}

/// Expiry of targets metadata.
#[derive(Debug, Args)]
pub struct TargetsExpiry {
    /// How long the new targets metadata stays valid, e.g. 90d.
    #[arg(long, value_parser = parse_duration, default_value = "90d")]
    pub targets_expires: Duration,
}

/// Expiry of the online roles' metadata.
#[derive(Debug, Args)]
pub struct OnlineExpiry {
    /// How long the new snapshot metadata stays valid, e.g. 7d.
    #[arg(long, value_parser = parse_duration, default_value = "7d")]
    pub snapshot_expires: Duration,
    /// How long the new timestamp metadata stays valid, e.g. 1d (run `repo refresh` more often).
    #[arg(long, value_parser = parse_duration, default_value = "1d")]
    pub timestamp_expires: Duration,
}

/// `image-tools repo init`
#[derive(Debug, Args)]
pub struct RepoInitArgs {
    /// Repository directory (created; must not hold a repository yet).
    #[arg(long)]
    pub repo: PathBuf,
    /// Keys directory (from `keygen`): every root-*.pem, targets-*.pem, snapshot-*.pem and
    /// timestamp-*.pem becomes a key of that role.
    #[arg(long)]
    pub keys: PathBuf,
    /// Root signatures required (at most the number of root keys).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub root_threshold: u64,
    /// Targets signatures required (at most the number of targets keys).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub targets_threshold: u64,
    #[command(flatten)]
    pub root_expiry: RootExpiry,
    #[command(flatten)]
    pub targets_expiry: TargetsExpiry,
    #[command(flatten)]
    pub online_expiry: OnlineExpiry,
}

/// `image-tools repo add`
#[derive(Debug, Args)]
pub struct RepoAddArgs {
    /// Repository directory.
    #[arg(long)]
    pub repo: PathBuf,
    /// Keys directory holding enough targets keys and the snapshot and timestamp keys.
    #[arg(long)]
    pub keys: PathBuf,
    /// Image built by `build` (its FILE.release.json and FILE.chunks are read too).
    #[arg(long)]
    pub image: PathBuf,
    /// Channel the release is signed for; repeat for several (e.g. --channel alpha --channel beta).
    #[arg(long = "channel", required = true)]
    pub channels: Vec<String>,
    /// Oldest running version this image may be applied from (semver).
    #[arg(long)]
    pub min_version: Option<String>,
    /// Sign permission for nodes on a newer version to install this one
    /// when asked for it by name (a deliberate rollback release).
    #[arg(long)]
    pub allow_downgrade: bool,
    #[command(flatten)]
    pub targets_expiry: TargetsExpiry,
    #[command(flatten)]
    pub online_expiry: OnlineExpiry,
}

/// `image-tools repo promote`
#[derive(Debug, Args)]
pub struct RepoPromoteArgs {
    /// Repository directory.
    #[arg(long)]
    pub repo: PathBuf,
    /// Keys directory holding enough targets keys and the snapshot and timestamp keys.
    #[arg(long)]
    pub keys: PathBuf,
    /// The published version to promote.
    #[arg(long)]
    pub version: String,
    /// The channel to add.
    #[arg(long)]
    pub channel: String,
    /// Only this board's image (default: every board that has the version).
    #[arg(long)]
    pub board: Option<String>,
    #[command(flatten)]
    pub targets_expiry: TargetsExpiry,
    #[command(flatten)]
    pub online_expiry: OnlineExpiry,
}

/// `image-tools repo refresh`
#[derive(Debug, Args)]
pub struct RepoRefreshArgs {
    /// Repository directory.
    #[arg(long)]
    pub repo: PathBuf,
    /// Keys directory holding the snapshot and timestamp keys (no offline key is needed).
    #[arg(long)]
    pub keys: PathBuf,
    #[command(flatten)]
    pub online_expiry: OnlineExpiry,
}

/// `image-tools repo list`
#[derive(Debug, Args)]
pub struct RepoListArgs {
    /// Repository directory.
    #[arg(long)]
    pub repo: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `image-tools repo rotate`
#[derive(Debug, Args)]
pub struct RepoRotateArgs {
    /// Repository directory.
    #[arg(long)]
    pub repo: PathBuf,
    /// Keys directory with the current root keys (a threshold of them).
    #[arg(long)]
    pub keys: PathBuf,
    /// Keys directory with the new keys: each role that has <role>-*.pem files there gets
    /// exactly those keys; other roles keep theirs (their keys must then be in --keys).
    #[arg(long)]
    pub new_keys: PathBuf,
    /// Root signatures required from now on (default: unchanged).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub root_threshold: Option<u64>,
    /// Targets signatures required from now on (default: unchanged).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub targets_threshold: Option<u64>,
    #[command(flatten)]
    pub root_expiry: RootExpiry,
    #[command(flatten)]
    pub targets_expiry: TargetsExpiry,
    #[command(flatten)]
    pub online_expiry: OnlineExpiry,
}

/// `image-tools repo migrate`
#[derive(Debug, Args)]
pub struct RepoMigrateArgs {
    /// Repository directory.
    #[arg(long)]
    pub repo: PathBuf,
    /// Also remove the legacy layout once every target is at its new path. Only when every
    /// node runs an agent that reads the new layout: older agents read only the legacy one.
    #[arg(long)]
    pub drop_legacy: bool,
}

/// `image-tools verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Repository: a directory, a file:// URL or an http(s):// URL (holding metadata/ and targets/).
    #[arg(long)]
    pub repo: String,
    /// The root metadata the node trusts (e.g. the repository's 1.root.json, shipped with the OS).
    #[arg(long)]
    pub root: PathBuf,
    /// Target to check, e.g. amd64-generic/1.4.0/root.img (an image is checked chunk by chunk).
    #[arg(long)]
    pub target: Option<String>,
    /// Local file to check instead of downloading the target; alone, it must be some signed target.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Without --target or --file, check only the metadata, not every target's bytes.
    #[arg(long, conflicts_with_all = ["target", "file"])]
    pub metadata_only: bool,
    /// The node's board: the target must be built for it (needs --channel).
    #[arg(long, requires = "channel")]
    pub board: Option<String>,
    /// The node's channel: the target must be signed for it (needs --board).
    #[arg(long, requires = "board")]
    pub channel: Option<String>,
    /// The node's running version: the target must be newer and applicable from it.
    #[arg(long, requires = "board")]
    pub current_version: Option<String>,
    /// Rollback state file as a node keeps it: read if present, and written (with the newest
    /// trusted root beside it as FILE.root.json) only when everything verified.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Judge expiry at this time (RFC 3339, e.g. 2030-01-01T00:00:00Z) instead of now.
    #[arg(long)]
    pub now: Option<jiff::Timestamp>,
}

/// Parses `365d`, `12h`, `1d 12h` (humantime).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration ({e}); use e.g. 7d, 12h, 365d"))
}

/// `image-tools disk ...`
#[derive(Debug, Subcommand)]
pub enum DiskCommand {
    /// Write a GPT disk image in the Moho layout (ESP, ROOT-A, ROOT-B, STATE).
    Create(DiskCreateArgs),
}

/// `image-tools disk create`
#[derive(Debug, Args)]
pub struct DiskCreateArgs {
    /// Output: a disk image file (created) or a block device (overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Whole disk size, e.g. `4G`, `2GiB`. Ignored for block devices, which
    /// keep their own size.
    #[arg(long, value_parser = parse_bytes)]
    pub size: Option<u64>,
    /// Size of each root slot, a multiple of 1 MiB.
    #[arg(long, value_parser = parse_bytes)]
    pub slot_size: u64,
    /// Size of the EFI system partition, a multiple of 1 MiB.
    #[arg(long, value_parser = parse_bytes, default_value = "64MiB")]
    pub esp_size: u64,
    /// Slot image to copy into ROOT-A (which is then marked priority 1, successful).
    #[arg(long)]
    pub slot_a: Option<PathBuf>,
    /// Boot selector kernel to put on the ESP (with systemd-boot and its loader entry);
    /// without it the ESP stays empty.
    #[arg(long, requires = "boot_initramfs")]
    pub boot_kernel: Option<PathBuf>,
    /// Boot selector initramfs (`image-tools initramfs`) for the ESP.
    #[arg(long, requires = "boot_kernel")]
    pub boot_initramfs: Option<PathBuf>,
    /// Kernel command line of the boot selector's loader entry.
    #[arg(long, default_value = "console=tty0 console=ttyS0,115200")]
    pub boot_cmdline: String,
    /// systemd-boot EFI binary installed as EFI/BOOT/BOOTX64.EFI.
    #[arg(long, default_value = crate::esp::DEFAULT_SYSTEMD_BOOT)]
    pub systemd_boot: PathBuf,
    /// Output format: raw, or qcow2, vhd (Azure, Hyper-V) or vmdk (VMware, AWS import) for clouds
    /// and VMs (files only; converted with qemu-img).
    #[arg(long, value_enum, default_value_t = DiskFormat::Raw)]
    pub format: DiskFormat,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// Format of a disk image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiskFormat {
    /// Plain bytes, as on the disk.
    Raw,
    /// QEMU copy-on-write v2 (converted with qemu-img).
    Qcow2,
    /// Fixed-size VHD (`qemu-img -O vpc -o subformat=fixed,force_size`), as Azure wants it.
    Vhd,
    /// Stream-optimised VMDK (`qemu-img -O vmdk -o subformat=streamOptimized`), for VMware and
    /// cloud image imports.
    Vmdk,
}

impl DiskFormat {
    /// The name on the command line, also the file extension of its images.
    pub fn name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vhd => "vhd",
            DiskFormat::Vmdk => "vmdk",
        }
    }

    /// `qemu-img convert` arguments making this format (none for raw).
    pub fn qemu_img_args(self) -> &'static [&'static str] {
        match self {
            DiskFormat::Raw => &[],
            DiskFormat::Qcow2 => &["-O", "qcow2"],
            DiskFormat::Vhd => &["-O", "vpc", "-o", "subformat=fixed,force_size"],
            DiskFormat::Vmdk => &["-O", "vmdk", "-o", "subformat=streamOptimized"],
        }
    }
}

/// Parses `4G`, `512MiB`, `1048576` into bytes (binary units either way).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(s)
        .map_err(|e| format!("{s:?} is not a size ({e}); use e.g. 512M, 4G, 2GiB"))
}

/// Runs one parsed command line and prints its report (a closed stdout is
/// [`moho_cli::StdoutError::Closed`], which `main` ends on quietly).
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let report = match cli.command {
        Command::Disk(DiskCommand::Create(args)) => disk_create::run(&args)?.to_string(),
        Command::Keygen(args) => keygen::run(&args)?.to_string(),
        Command::Build(args) => build::run(&args)?.to_string(),
        Command::Repo(RepoCommand::Init(args)) => repo_init::run(&args)?.to_string(),
        Command::Repo(RepoCommand::Add(args)) => repo_add::run(&args)?.to_string(),
        Command::Repo(RepoCommand::Promote(args)) => repo_promote::run(&args)?.to_string(),
        Command::Repo(RepoCommand::Refresh(args)) => repo_refresh::run(&args)?.to_string(),
        Command::Repo(RepoCommand::List(args)) => repo_list::run(&args)?.to_string(),
        Command::Repo(RepoCommand::Rotate(args)) => repo_rotate::run(&args)?.to_string(),
        Command::Repo(RepoCommand::Migrate(args)) => repo_migrate::run(&args)?.to_string(),
        Command::Initramfs(args) => initramfs::run(&args)?.to_string(),
        Command::Publish(args) => publish::run(&args)?.to_string(),
        Command::Verify(args) => verify::run(&args)?.to_string(),
        Command::Os(OsCommand::Build(args)) => os::run(&args)?.to_string(),
    };
    moho_cli::outln!("{report}")?;
    Ok(())
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory as _;

    #[test]
    fn help_explains_every_command_and_argument() {
        moho_cli::help::assert_complete(super::Cli::command());
    }
}
