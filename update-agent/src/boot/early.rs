//! The first things `/init` does: mount `/proc`, `/sys` and `/dev`, and load
//! the kernel modules the initramfs carries (in the order `image-tools
//! initramfs` wrote to [`INITRAMFS_MODULES_LIST`]).

use std::ffi::CString;
use std::fs::{self, File};
use std::path::Path;

use moho_core::boot_files::INITRAMFS_MODULES_LIST;
use nix::errno::Errno;
use nix::kmod::{ModuleInitFlags, finit_module};
use nix::mount::{MsFlags, mount};

use crate::boot::sys::BootSystem;

/// Mounts the pseudo filesystems; a failure is said and otherwise ignored
/// (the next steps report what they miss).
pub fn mount_pseudo_filesystems(sys: &mut dyn BootSystem) {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    for (fstype, at, flags) in [
        ("proc", "/proc", nosuid),
        ("sysfs", "/sys", nosuid),
        ("devtmpfs", "/dev", MsFlags::MS_NOSUID),
    ] {
        if let Err(e) = fs::create_dir_all(at) {
            sys.say(&format!("WARNING: {at}: {e}"));
        }
        match mount(Some(fstype), at, Some(fstype), flags, None::<&str>) {
            Ok(()) | Err(Errno::EBUSY) => {}
            Err(e) => sys.say(&format!("WARNING: mounting {fstype} on {at}: {}", e.desc())),
        }
    }
}

/// Loads every module named in the initramfs' list; returns how many were
/// loaded now. Modules already present (built in, or loaded) are skipped;
/// others that fail are said and skipped, since the disk may not need them.
pub fn load_modules(sys: &mut dyn BootSystem) -> usize {
    let list = match fs::read_to_string(INITRAMFS_MODULES_LIST) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            sys.say(&format!("WARNING: {INITRAMFS_MODULES_LIST}: {e}"));
            return 0;
        }
    };
    let mut loaded = 0;
    let no_params = CString::default();
    for line in list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let path = Path::new(line);
        let failure = match File::open(path) {
            Err(e) => Some(e.to_string()),
            Ok(f) => match finit_module(&f, &no_params, ModuleInitFlags::empty()) {
                Ok(()) => {
                    loaded += 1;
                    None
                }
                // Built in, or already loaded: nothing to do.
                Err(Errno::EEXIST) => None,
                Err(e) => Some(e.desc().to_owned()),
            },
        };
        if let Some(why) = failure {
            sys.say(&format!(
                "WARNING: loading module {}: {why}",
                path.display()
            ));
        }
    }
    loaded
}
