//! A recording [`BootSystem`] for tests of the boot flows: it holds one
//! Moho disk (`/dev/vda`, partitions `/dev/vdaN`) whose slots each have a
//! kernel, an initramfs and a command line, and fails the steps a test asks
//! it to fail.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use moho_core::slot_attrs::SlotAttributes;
use moho_core::slot_table::{SlotEntry, SlotTable};
use moho_disk::{DiskError, FakeSlotDisk, SlotDisk};
use uuid::Uuid;

use crate::boot::sys::{BootError, BootSystem, WatchdogInfo};

/// One call made to a [`FakeBoot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeCall {
    /// `mount_ro`.
    Mount {
        /// The device.
        device: PathBuf,
        /// The mount point.
        target: PathBuf,
    },
    /// `unmount`.
    Unmount,
    /// `kexec_load`.
    KexecLoad {
        /// Kernel path inside the slot.
        kernel: String,
        /// Initramfs path inside the slot.
        initrd: Option<String>,
        /// The command line.
        cmdline: String,
    },
    /// `kexec_unload`.
    KexecUnload,
    /// `kexec_reboot`.
    KexecReboot,
    /// `switch_root`.
    SwitchRoot {
        /// The new root.
        root: PathBuf,
        /// The init program.
        init: String,
    },
    /// `arm_watchdog`.
    ArmWatchdog(u32),
    /// `disarm_watchdog`.
    DisarmWatchdog,
    /// `sleep`.
    Sleep(Duration),
}

/// The fake machine.
#[derive(Debug, Default)]
pub struct FakeBoot {
    /// Every call, in order.
    pub calls: Vec<FakeCall>,
    /// Every console line.
    pub console: Vec<String>,
    /// The slot table of `/dev/vda`, if the machine has that disk.
    pub table: Option<SlotTable>,
    /// `disks()` returns nothing until it has been asked this many times.
    pub disk_appears_after: u32,
    /// Devices whose mount fails.
    pub bad_mount: BTreeSet<PathBuf>,
    /// `/boot` listing per device (default: vmlinuz, initrd.img, cmdline).
    pub boot_dirs: BTreeMap<PathBuf, Vec<String>>,
    /// Every `kexec_reboot` fails.
    pub bad_kexec_reboot: bool,
    /// `switch_root` fails.
    pub bad_switch_root: bool,
    /// The machine has no hardware watchdog.
    pub no_watchdog: bool,
    /// The watchdog says it reset the machine (its boot status).
    pub watchdog_reset_it: bool,
    /// What is mounted: mount point → device.
    pub mounted: BTreeMap<PathBuf, PathBuf>,
    disk_asks: u32,
}

impl FakeBoot {
    /// A machine with one disk made by `image-tools disk create`, slot A
    /// good, B empty.
    pub fn with_slots() -> Self {
        let entry = |partition: u32, label: &str, attrs: SlotAttributes| SlotEntry {
            partition,
            label: label.into(),
            partuuid: Uuid::from_u128(u128::from(partition)),
            attrs,
        };
        Self {
            table: Some(SlotTable {
                a: entry(2, "ROOT-A", SlotAttributes::default().with_successful(true)),
                b: entry(3, "ROOT-B", SlotAttributes::default()),
            }),
            ..Self::default()
        }
    }

    /// The watchdog calls, in order.
    pub fn watchdog_calls(&self) -> Vec<&FakeCall> {
        self.calls
            .iter()
            .filter(|c| matches!(c, FakeCall::ArmWatchdog(_) | FakeCall::DisarmWatchdog))
            .collect()
    }

    /// Whether some console line starts with `prefix`.
    pub fn said(&self, prefix: &str) -> bool {
        self.console.iter().any(|l| l.starts_with(prefix))
    }

    /// The `kexec_load` calls.
    pub fn kexec_loads(&self) -> Vec<&FakeCall> {
        self.calls
            .iter()
            .filter(|c| matches!(c, FakeCall::KexecLoad { .. }))
            .collect()
    }

    fn device_at(&self, root: &Path) -> Result<PathBuf, BootError> {
        self.mounted
            .get(root)
            .cloned()
            .ok_or_else(|| BootError::Io {
                path: root.to_owned(),
                op: "reading",
                source: io::Error::new(io::ErrorKind::NotFound, "nothing mounted there"),
            })
    }
}

impl BootSystem for FakeBoot {
    fn say(&mut self, line: &str) {
        self.console.push(line.to_owned());
    }

    fn disks(&mut self) -> Vec<PathBuf> {
        self.disk_asks += 1;
        if self.disk_asks >= self.disk_appears_after && self.table.is_some() {
            vec![PathBuf::from("/dev/vda")]
        } else {
            Vec::new()
        }
    }

    fn open_slot_disk(&mut self, disk: &Path) -> Result<Box<dyn SlotDisk>, DiskError> {
        match (&self.table, disk == Path::new("/dev/vda")) {
            (Some(t), true) => Ok(Box::new(FakeSlotDisk::new(t.clone()))),
            _ => Err(DiskError::Open {
                path: disk.to_owned(),
                source: io::Error::new(io::ErrorKind::NotFound, "no such device"),
            }),
        }
    }

    fn partition_device(&mut self, _disk: &Path, number: u32) -> Result<PathBuf, BootError> {
        Ok(PathBuf::from(format!("/dev/vda{number}")))
    }

    fn mount_ro(
        &mut self,
        device: &Path,
        target: &Path,
        fstype: Option<&str>,
    ) -> Result<String, BootError> {
        self.calls.push(FakeCall::Mount {
            device: device.to_owned(),
            target: target.to_owned(),
        });
        if self.bad_mount.contains(device) {
            return Err(BootError::Mount {
                device: device.to_owned(),
                target: target.to_owned(),
                tried: vec!["ext4: EINVAL".into()],
            });
        }
        self.mounted.insert(target.to_owned(), device.to_owned());
        Ok(fstype.unwrap_or("ext4").to_owned())
    }

    fn unmount(&mut self, target: &Path) -> Result<(), BootError> {
        self.calls.push(FakeCall::Unmount);
        self.mounted.remove(target);
        Ok(())
    }

    fn list_dir(&mut self, root: &Path, _rel: &str) -> Result<Vec<String>, BootError> {
        let dev = self.device_at(root)?;
        Ok(self
            .boot_dirs
            .get(&dev)
            .cloned()
            .unwrap_or_else(|| vec!["vmlinuz".into(), "initrd.img".into(), "cmdline".into()]))
    }

    fn read_file(&mut self, root: &Path, rel: &str) -> Result<Option<Vec<u8>>, BootError> {
        let listed = self.list_dir(root, "boot")?;
        let name = rel.strip_prefix("boot/").unwrap_or(rel);
        Ok((name == "cmdline" && listed.iter().any(|n| n == "cmdline"))
            .then(|| b"# serial\nconsole=ttyS0\n".to_vec()))
    }

    fn kexec_load(
        &mut self,
        _root: &Path,
        kernel: &str,
        initrd: Option<&str>,
        cmdline: &str,
    ) -> Result<(), BootError> {
        self.calls.push(FakeCall::KexecLoad {
            kernel: kernel.to_owned(),
            initrd: initrd.map(str::to_owned),
            cmdline: cmdline.to_owned(),
        });
        Ok(())
    }

    fn kexec_unload(&mut self) {
        self.calls.push(FakeCall::KexecUnload);
    }

    fn kexec_reboot(&mut self) -> Result<(), BootError> {
        self.calls.push(FakeCall::KexecReboot);
        if self.bad_kexec_reboot {
            return Err(BootError::KexecReboot(nix::Error::EINVAL));
        }
        Ok(())
    }

    fn switch_root(&mut self, root: &Path, init: &str) -> Result<(), BootError> {
        self.calls.push(FakeCall::SwitchRoot {
            root: root.to_owned(),
            init: init.to_owned(),
        });
        if self.bad_switch_root {
            return Err(BootError::SwitchRoot {
                root: root.to_owned(),
                op: "execv",
                source: nix::Error::ENOENT,
            });
        }
        Ok(())
    }

    fn arm_watchdog(&mut self, timeout_secs: u32) -> Result<(), BootError> {
        if self.no_watchdog {
            return Err(BootError::Watchdog {
                device: PathBuf::from("/dev/watchdog"),
                op: "open",
                source: io::Error::new(io::ErrorKind::NotFound, "no such device"),
            });
        }
        self.calls.push(FakeCall::ArmWatchdog(timeout_secs));
        Ok(())
    }

    fn disarm_watchdog(&mut self) -> Result<(), BootError> {
        self.calls.push(FakeCall::DisarmWatchdog);
        Ok(())
    }

    fn watchdog_info(&mut self) -> Option<WatchdogInfo> {
        (!self.no_watchdog).then(|| WatchdogInfo {
            identity: "i6300ESB timer".into(),
            reset_the_machine: self.watchdog_reset_it,
        })
    }

    fn sleep(&mut self, time: Duration) {
        self.calls.push(FakeCall::Sleep(time));
    }
}
