//! The running system as the agent sees it: the kernel command line and the
//! device mounted at `/`. Behind [`SystemView`] so that tests can describe
//! any machine; [`LiveSystem`] reads `/proc` and `/sys`.

use std::fs;
use std::io;
use std::path::PathBuf;

use uuid::Uuid;

/// The block device the root filesystem is mounted from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootDevice {
    /// `major:minor`.
    pub devno: (u32, u32),
    /// Its PARTUUID, if the kernel knows it.
    pub partuuid: Option<Uuid>,
    /// Its partition number, if it is a partition.
    pub partition: Option<u32>,
    /// The whole disk it is a partition of (`/dev/<name>`).
    pub disk: Option<PathBuf>,
}

/// What the agent may ask about the running system.
pub trait SystemView {
    /// `/proc/cmdline`.
    fn kernel_cmdline(&self) -> io::Result<String>;
    /// The device mounted at `/`, if it is a block device.
    fn root_device(&self) -> io::Result<Option<RootDevice>>;
}

/// The real system.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveSystem;

impl SystemView for LiveSystem {
    fn kernel_cmdline(&self) -> io::Result<String> {
        fs::read_to_string("/proc/cmdline")
    }

    fn root_device(&self) -> io::Result<Option<RootDevice>> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
        let Some(devno) = root_devno(&mountinfo) else {
            return Ok(None);
        };
        if devno.0 == 0 {
            return Ok(None); // tmpfs, overlay, initramfs: not a block device
        }
        let sys = PathBuf::from(format!("/sys/dev/block/{}:{}", devno.0, devno.1));
        let uevent = fs::read_to_string(sys.join("uevent")).unwrap_or_default();
        let mut dev = RootDevice {
            devno,
            ..RootDevice::default()
        };
        for line in uevent.lines() {
            if let Some(v) = line.strip_prefix("PARTUUID=") {
                dev.partuuid = Uuid::parse_str(v).ok();
            } else if let Some(v) = line.strip_prefix("PARTN=") {
                dev.partition = v.parse().ok();
            }
        }
        if dev.partition.is_some()
            && let Ok(real) = fs::canonicalize(&sys)
            && let Some(parent) = real.parent().and_then(|p| p.file_name())
        {
            dev.disk = Some(PathBuf::from("/dev").join(parent));
        }
        Ok(Some(dev))
    }
}

/// The `major:minor` of the last mount at `/` in a mountinfo table.
pub fn root_devno(mountinfo: &str) -> Option<(u32, u32)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            let devno = f.nth(2)?;
            let mount_point = f.nth(1)?;
            (mount_point == "/").then_some(devno)
        })
        .next_back()
        .and_then(|devno| {
            let (maj, min) = devno.split_once(':')?;
            Some((maj.parse().ok()?, min.parse().ok()?))
        })
}

/// A described system, for tests.
#[derive(Debug, Clone, Default)]
pub struct FakeSystem {
    /// What `/proc/cmdline` says.
    pub cmdline: String,
    /// What is mounted at `/`.
    pub root: Option<RootDevice>,
}

impl SystemView for FakeSystem {
    fn kernel_cmdline(&self) -> io::Result<String> {
        Ok(self.cmdline.clone())
    }

    fn root_device(&self) -> io::Result<Option<RootDevice>> {
        Ok(self.root.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_root_mount_in_mountinfo() {
        let mi = "22 1 0:21 / / rw - rootfs rootfs rw\n\
                  25 22 259:2 / / ro,relatime shared:1 - erofs /dev/vda2 ro\n\
                  26 25 259:4 / /var rw - ext4 /dev/vda4 rw\n";
        assert_eq!(root_devno(mi), Some((259, 2)));
        assert_eq!(
            root_devno("26 25 259:4 / /var rw - ext4 /dev/vda4 rw\n"),
            None
        );
    }
}
