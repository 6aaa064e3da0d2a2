//! The machine as `boot-select` sees it: block devices, mounts, `kexec`,
//! `switch_root`, the console. Behind [`BootSystem`] so that the selector's
//! flow can be tested with a fake; [`crate::boot::live::LiveBoot`] makes
//! the real system calls.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use moho_core::boot_files::{BootFilesError, CmdlineTooLong};
use moho_disk::{DiskError, SlotDisk};

/// A watchdog device as its driver describes it (sysfs
/// `/sys/class/watchdog/watchdog0/{identity,bootstatus}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogInfo {
    /// The driver's name for it (`i6300ESB timer`, `Software Watchdog`).
    pub identity: String,
    /// The driver found that this device reset the machine
    /// (`WDIOF_CARDRESET` in its boot status): the last boot hung.
    pub reset_the_machine: bool,
}

/// `WDIOF_CARDRESET` (linux/watchdog.h): the last reboot was the watchdog's.
pub const WDIOF_CARDRESET: u32 = 0x0020;

/// Why one step of booting failed.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A file or device could not be used.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file or device.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The disk's partition does not show up as a device.
    #[error("{}: partition {number} has no device node (is the kernel's partition list stale?)", disk.display())]
    NoPartitionDevice {
        /// The disk.
        disk: PathBuf,
        /// The partition number.
        number: u32,
    },
    /// No filesystem the kernel knows could mount the device.
    #[error("{}: cannot mount read-only on {}: {}", device.display(), target.display(), tried.join(", "))]
    Mount {
        /// The device.
        device: PathBuf,
        /// The mount point.
        target: PathBuf,
        /// Each filesystem type tried and its error.
        tried: Vec<String>,
    },
    /// The slot's `/boot` names no kernel.
    #[error("{}: {source}", root.display())]
    BootFiles {
        /// The slot's mount point.
        root: PathBuf,
        /// Why.
        source: BootFilesError,
    },
    /// The command line does not fit.
    #[error(transparent)]
    Cmdline(#[from] CmdlineTooLong),
    /// The kernel refused to load the slot's kernel.
    #[error("kexec_file_load of {}{}: {source}", kernel.display(), initrd.as_ref().map(|i| format!(" with {}", i.display())).unwrap_or_default())]
    KexecLoad {
        /// The kernel file.
        kernel: PathBuf,
        /// The initramfs file.
        initrd: Option<PathBuf>,
        /// Why.
        source: nix::Error,
    },
    /// The reboot into the loaded kernel did not happen.
    #[error("reboot into the loaded kernel: {0}")]
    KexecReboot(nix::Error),
    /// The slot's init program is missing.
    #[error("{}: no init program {init} on the new root", root.display())]
    NoInit {
        /// The new root.
        root: PathBuf,
        /// `init=`.
        init: String,
    },
    /// Switching to the new root failed.
    #[error("switch_root to {}: {op}: {source}", root.display())]
    SwitchRoot {
        /// The new root.
        root: PathBuf,
        /// The step.
        op: &'static str,
        /// Why.
        source: nix::Error,
    },
    /// The GPT could not be read or written.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// The hardware watchdog could not be armed or disarmed.
    #[error("{}: {op}: {source}", device.display())]
    Watchdog {
        /// The device (`/dev/watchdog`).
        device: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
}

impl BootError {
    /// An [`BootError::Io`] maker for `map_err`.
    pub fn io(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Io { path, op, source }
    }
}

/// What the boot flows ask of the machine.
pub trait BootSystem {
    /// Prints one line on the console.
    fn say(&mut self, line: &str);
    /// Whole-disk block devices that may hold slots (`/dev/vda`, ...).
    fn disks(&mut self) -> Vec<PathBuf>;
    /// Opens `disk` for reading and writing its slot table; fails if it
    /// holds no Moho slot pair.
    fn open_slot_disk(&mut self, disk: &Path) -> Result<Box<dyn SlotDisk>, DiskError>;
    /// The device node of partition `number` of `disk`.
    fn partition_device(&mut self, disk: &Path, number: u32) -> Result<PathBuf, BootError>;
    /// Mounts `device` read-only on `target` as `fstype`, or as each
    /// filesystem the kernel knows until one works; returns the type used.
    fn mount_ro(
        &mut self,
        device: &Path,
        target: &Path,
        fstype: Option<&str>,
    ) -> Result<String, BootError>;
    /// Unmounts `target`.
    fn unmount(&mut self, target: &Path) -> Result<(), BootError>;
    /// The names in directory `rel` of the tree mounted at `root`.
    fn list_dir(&mut self, root: &Path, rel: &str) -> Result<Vec<String>, BootError>;
    /// File `rel` of the tree at `root` (symbolic links resolved inside that
    /// tree), or `None` if it does not exist.
    fn read_file(&mut self, root: &Path, rel: &str) -> Result<Option<Vec<u8>>, BootError>;
    /// Loads kernel `kernel` (and `initrd`), files of the tree at `root`,
    /// for a `kexec` reboot with `cmdline`.
    fn kexec_load(
        &mut self,
        root: &Path,
        kernel: &str,
        initrd: Option<&str>,
        cmdline: &str,
    ) -> Result<(), BootError>;
    /// Forgets a loaded kernel.
    fn kexec_unload(&mut self);
    /// Reboots into the loaded kernel. Returns only if that failed (a fake
    /// returns `Ok` to stand for a machine that went away).
    fn kexec_reboot(&mut self) -> Result<(), BootError>;
    /// Makes the tree at `root` the root filesystem and executes `init` as
    /// process 1. Returns only if that failed (or from a fake).
    fn switch_root(&mut self, root: &Path, init: &str) -> Result<(), BootError>;
    /// Arms the hardware watchdog (`/dev/watchdog`) to reset the machine
    /// unless fed within `timeout_secs`, and lets go of it without the magic
    /// close, so that it keeps counting until the next system feeds it.
    fn arm_watchdog(&mut self, timeout_secs: u32) -> Result<(), BootError>;
    /// Stops the hardware watchdog (magic close).
    fn disarm_watchdog(&mut self) -> Result<(), BootError>;
    /// The watchdog behind `/dev/watchdog` (the kernel's `watchdog0`), as
    /// its driver describes it, or `None` if there is none.
    fn watchdog_info(&mut self) -> Option<WatchdogInfo>;
    /// Waits.
    fn sleep(&mut self, time: Duration);
}

/// The name of the armed watchdog for the console: its driver's identity,
/// else the device.
pub fn watchdog_name(sys: &mut dyn BootSystem) -> String {
    sys.watchdog_info()
        .map_or_else(|| "/dev/watchdog".to_owned(), |w| w.identity)
}
