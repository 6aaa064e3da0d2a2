//! The real [`BootSystem`]: sysfs, `mount(2)`, `kexec_file_load(2)`,
//! `reboot(2)`, a `switch_root` like util-linux's, and the Linux watchdog
//! API on `/dev/watchdog` (`WDIOC_SETTIMEOUT`, `WDIOC_KEEPALIVE`, magic close).

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::reboot::{RebootMode, reboot};
use nix::unistd::{chdir, chroot, execv, sync};

use moho_disk::{DiskError, GptSlotDisk, SlotDisk};

use crate::boot::slot_init::is_root;
use crate::boot::sys::{BootError, BootSystem, WDIOF_CARDRESET, WatchdogInfo};

/// Block devices that never hold the slots.
const NOT_DISKS: [&str; 6] = ["loop", "ram", "zram", "sr", "fd", "dm-"];
/// Filesystems tried first when mounting a slot.
const PREFERRED_FS: [&str; 2] = ["ext4", "erofs"];
/// Mounts carried over to the new root by `switch_root`.
const MOVED_MOUNTS: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];

/// The watchdog device.
const WATCHDOG: &str = "/dev/watchdog";
/// Its sysfs directory (`/dev/watchdog` is always `watchdog0`).
const WATCHDOG_SYSFS: &str = "/sys/class/watchdog/watchdog0";

nix::ioctl_read!(wdioc_keepalive, b'W', 5, nix::libc::c_int);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, nix::libc::c_int);

fn watchdog_err(op: &'static str) -> impl Fn(io::Error) -> BootError {
    move |source| BootError::Watchdog {
        device: PathBuf::from(WATCHDOG),
        op,
        source,
    }
}

/// The running machine.
#[derive(Debug, Default)]
pub struct LiveBoot {
    /// Arguments the kernel gave `/init`, passed on to the slot's init.
    pub init_args: Vec<String>,
}

impl BootSystem for LiveBoot {
    fn say(&mut self, line: &str) {
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "moho-boot: {line}");
        let _ = err.flush();
    }

    fn disks(&mut self) -> Vec<PathBuf> {
        let mut names: Vec<String> = fs::read_dir("/sys/block")
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !NOT_DISKS.iter().any(|p| n.starts_with(p)))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .into_iter()
            .map(|n| PathBuf::from("/dev").join(n))
            .collect()
    }

    fn open_slot_disk(&mut self, disk: &Path) -> Result<Box<dyn SlotDisk>, DiskError> {
        Ok(Box::new(GptSlotDisk::open(disk, true)?))
    }

    fn partition_device(&mut self, disk: &Path, number: u32) -> Result<PathBuf, BootError> {
        let missing = || BootError::NoPartitionDevice {
            disk: disk.to_owned(),
            number,
        };
        let name = disk.file_name().ok_or_else(missing)?;
        let sys = Path::new("/sys/block").join(name);
        let entries = fs::read_dir(&sys).map_err(BootError::io(&sys, "listing partitions"))?;
        for e in entries.filter_map(Result::ok) {
            let n = fs::read_to_string(e.path().join("partition")).unwrap_or_default();
            if n.trim().parse::<u32>().ok() == Some(number) {
                let dev = Path::new("/dev").join(e.file_name());
                if dev.exists() {
                    return Ok(dev);
                }
            }
        }
        Err(missing())
    }

    fn mount_ro(
        &mut self,
        device: &Path,
        target: &Path,
        fstype: Option<&str>,
    ) -> Result<String, BootError> {
        fs::create_dir_all(target).map_err(BootError::io(target, "creating the mount point"))?;
        let types = match fstype {
            Some(t) => vec![t.to_owned()],
            None => block_filesystems(),
        };
        let mut tried = Vec::new();
        for t in types {
            match mount(
                Some(device),
                target,
                Some(t.as_str()),
                MsFlags::MS_RDONLY,
                None::<&str>,
            ) {
                Ok(()) => return Ok(t),
                Err(e) => tried.push(format!("{t}: {}", e.desc())),
            }
        }
        if tried.is_empty() {
            tried.push("the kernel knows no block filesystem".into());
        }
        Err(BootError::Mount {
            device: device.to_owned(),
            target: target.to_owned(),
            tried,
        })
    }

    fn unmount(&mut self, target: &Path) -> Result<(), BootError> {
        umount2(target, MntFlags::empty())
            .or_else(|_| umount2(target, MntFlags::MNT_DETACH))
            .map_err(|e| BootError::Io {
                path: target.to_owned(),
                op: "unmounting",
                source: e.into(),
            })
    }

    fn list_dir(&mut self, root: &Path, rel: &str) -> Result<Vec<String>, BootError> {
        let dir = root.join(rel);
        let mut names: Vec<String> = fs::read_dir(&dir)
            .map_err(BootError::io(&dir, "listing"))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    fn read_file(&mut self, root: &Path, rel: &str) -> Result<Option<Vec<u8>>, BootError> {
        let path = root.join(rel);
        match open_in_root(root, rel, OFlag::O_RDONLY) {
            Ok(fd) => {
                let mut bytes = Vec::new();
                File::from(fd)
                    .read_to_end(&mut bytes)
                    .map_err(BootError::io(&path, "reading"))?;
                Ok(Some(bytes))
            }
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(BootError::Io {
                path,
                op: "opening",
                source: e.into(),
            }),
        }
    }

    fn kexec_load(
        &mut self,
        root: &Path,
        kernel: &str,
        initrd: Option<&str>,
        cmdline: &str,
    ) -> Result<(), BootError> {
        let err = |source| BootError::KexecLoad {
            kernel: root.join(kernel),
            initrd: initrd.map(|i| root.join(i)),
            source,
        };
        let kernel_fd = open_in_root(root, kernel, OFlag::O_RDONLY).map_err(err)?;
        let initrd_fd = match initrd {
            Some(i) => Some(open_in_root(root, i, OFlag::O_RDONLY).map_err(err)?),
            None => None,
        };
        let cmdline = CString::new(cmdline).map_err(|_| err(Errno::EINVAL))?;
        kexec_file_load(&kernel_fd, initrd_fd.as_ref(), &cmdline).map_err(err)
    }

    fn kexec_unload(&mut self) {
        if let Err(e) = kexec_file_unload() {
            self.say(&format!(
                "WARNING: unloading the kexec kernel: {}",
                e.desc()
            ));
        }
    }

    fn kexec_reboot(&mut self) -> Result<(), BootError> {
        sync();
        match reboot(RebootMode::RB_KEXEC) {
            Ok(never) => match never {},
            Err(e) => Err(BootError::KexecReboot(e)),
        }
    }

    fn switch_root(&mut self, root: &Path, init: &str) -> Result<(), BootError> {
        let fail = |op, source| BootError::SwitchRoot {
            root: root.to_owned(),
            op,
            source,
        };
        if is_root(root) {
            return Err(fail(
                "refusing to switch to the current root",
                Errno::EINVAL,
            ));
        }
        if open_in_root(root, init, OFlag::O_PATH).is_err() {
            return Err(BootError::NoInit {
                root: root.to_owned(),
                init: init.to_owned(),
            });
        }
        let argv: Vec<CString> = std::iter::once(init)
            .chain(self.init_args.iter().map(String::as_str))
            .map(|a| CString::new(a).map_err(|_| fail("init argument with a NUL", Errno::EINVAL)))
            .collect::<Result<_, _>>()?;
        for m in MOVED_MOUNTS {
            let to = root.join(m.trim_start_matches('/'));
            if !is_mount_point(Path::new(m)) {
                continue;
            }
            if to.is_dir() {
                mount(Some(m), &to, None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                    .map_err(|e| fail("moving a mount to the new root", e))?;
            } else {
                let _ = umount2(m, MntFlags::MNT_DETACH);
            }
        }
        chdir(root).map_err(|e| fail("chdir", e))?;
        // Free the initramfs' memory: everything on the old root's device.
        if let Ok(meta) = fs::symlink_metadata("/") {
            remove_on_device(Path::new("/"), meta.dev());
        }
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(|e| fail("moving the new root to /", e))?;
        chroot(".").map_err(|e| fail("chroot", e))?;
        chdir("/").map_err(|e| fail("chdir", e))?;
        let Some(path) = argv.first() else {
            return Err(fail("no init", Errno::EINVAL));
        };
        match execv(path, &argv) {
            Ok(never) => match never {},
            Err(e) => Err(fail("execv", e)),
        }
    }

    fn arm_watchdog(&mut self, timeout_secs: u32) -> Result<(), BootError> {
        let dev = fs::OpenOptions::new()
            .write(true)
            .open(WATCHDOG)
            .map_err(watchdog_err("open"))?;
        let mut t = nix::libc::c_int::try_from(timeout_secs).unwrap_or(nix::libc::c_int::MAX);
        // SAFETY: WDIOC_SETTIMEOUT reads and writes one int through the
        // pointer, which points to a live, aligned c_int on this stack frame;
        // the fd is open for the call's duration.
        #[allow(unsafe_code)]
        let set = unsafe { wdioc_settimeout(dev.as_raw_fd(), &raw mut t) };
        set.map_err(|e| watchdog_err("WDIOC_SETTIMEOUT")(e.into()))?;
        let mut dummy: nix::libc::c_int = 0;
        // SAFETY: WDIOC_KEEPALIVE writes at most one int, as above.
        #[allow(unsafe_code)]
        let fed = unsafe { wdioc_keepalive(dev.as_raw_fd(), &raw mut dummy) };
        fed.map_err(|e| watchdog_err("WDIOC_KEEPALIVE")(e.into()))?;
        // Closed without the magic 'V': the driver keeps the timer running.
        drop(dev);
        Ok(())
    }

    fn disarm_watchdog(&mut self) -> Result<(), BootError> {
        let mut dev = fs::OpenOptions::new()
            .write(true)
            .open(WATCHDOG)
            .map_err(watchdog_err("open"))?;
        dev.write_all(b"V").map_err(watchdog_err("magic close"))?;
        drop(dev);
        Ok(())
    }

    fn watchdog_info(&mut self) -> Option<WatchdogInfo> {
        let sysfs = Path::new(WATCHDOG_SYSFS);
        let identity = fs::read_to_string(sysfs.join("identity")).ok()?;
        let status = fs::read_to_string(sysfs.join("bootstatus"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(0);
        Some(WatchdogInfo {
            identity: identity.trim().to_owned(),
            reset_the_machine: status & WDIOF_CARDRESET != 0,
        })
    }

    fn sleep(&mut self, time: Duration) {
        std::thread::sleep(time);
    }
}

/// Block (not `nodev`) filesystems the kernel knows, ext4 and erofs first.
fn block_filesystems() -> Vec<String> {
    let known = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let mut types: Vec<String> = known
        .lines()
        .filter(|l| !l.starts_with("nodev"))
        .map(|l| l.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    types.sort_by_key(|t| {
        PREFERRED_FS
            .iter()
            .position(|p| p == t)
            .unwrap_or(usize::MAX)
    });
    types
}

fn open_in_root(root: &Path, rel: &str, flags: OFlag) -> Result<OwnedFd, Errno> {
    let dir = File::open(root).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    openat2(
        &dir,
        rel,
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT),
    )
}

fn is_mount_point(path: &Path) -> bool {
    match (fs::metadata(path), path.parent().map(fs::metadata)) {
        (Ok(me), Some(Ok(parent))) => me.dev() != parent.dev(),
        _ => false,
    }
}

/// Removes everything under `dir` that lives on device `dev`, not crossing
/// into other mounts; best effort.
fn remove_on_device(dir: &Path, dev: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != dev {
            continue;
        }
        if meta.is_dir() {
            remove_on_device(&path, dev);
            let _ = fs::remove_dir(&path);
        } else {
            let _ = fs::remove_file(&path);
        }
    }
}

fn kexec_file_load(
    kernel: &OwnedFd,
    initrd: Option<&OwnedFd>,
    cmdline: &CString,
) -> Result<(), Errno> {
    let bytes = cmdline.as_bytes_with_nul();
    let flags = if initrd.is_some() {
        0
    } else {
        nix::libc::KEXEC_FILE_NO_INITRAMFS
    };
    let initrd_fd = initrd.map_or(-1, AsRawFd::as_raw_fd);
    // SAFETY: kexec_file_load(2) takes two file descriptors, which are open
    // for the call's duration (borrowed `OwnedFd`s), and a NUL-terminated
    // command line with its length including the NUL, which lives on this
    // stack frame for the call; the kernel only reads it.
    #[allow(unsafe_code)]
    let rc = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            initrd_fd,
            bytes.len(),
            bytes.as_ptr(),
            flags,
        )
    };
    Errno::result(rc).map(drop)
}

fn kexec_file_unload() -> Result<(), Errno> {
    // SAFETY: with KEXEC_FILE_UNLOAD the kernel ignores the descriptors and
    // the command line; nothing is passed by pointer.
    #[allow(unsafe_code)]
    let rc = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_kexec_file_load,
            -1,
            -1,
            0usize,
            std::ptr::null::<u8>(),
            nix::libc::KEXEC_FILE_UNLOAD,
        )
    };
    Errno::result(rc).map(drop)
}
