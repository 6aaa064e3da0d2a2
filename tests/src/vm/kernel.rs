//! Debian's cloud kernel (`linux-image-cloud-amd64`), fetched with
//! `apt-get download` and unpacked with `dpkg-deb -x`, with `modules.dep`
//! made by `depmod -b`. It is the boot selector's kernel and every test
//! slot's kernel.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::cache;

/// The unpacked kernel.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The bzImage.
    pub vmlinuz: PathBuf,
    /// `/lib/modules/<version>`.
    pub modules: PathBuf,
    /// `uname -r`.
    pub version: String,
}

/// The kernel, fetched once per cache.
pub fn debian_cloud_kernel() -> &'static Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    KERNEL.get_or_init(|| {
        let dir = cache::entry("debian-cloud-kernel", fetch);
        let modules_root = dir.join("root/lib/modules");
        let version = std::fs::read_dir(&modules_root)
            .expect("unpacked kernel modules")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .next()
            .expect("a kernel version directory");
        Kernel {
            vmlinuz: dir.join(format!("root/boot/vmlinuz-{version}")),
            modules: modules_root.join(&version),
            version,
        }
    })
}

fn sh(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fetch(dir: &Path) {
    // The meta package names the versioned image package.
    let depends = |update: bool| {
        if update {
            sh(
                Command::new("apt-get").args(["update", "-qq"]),
                "apt-get update",
            );
        }
        Command::new("apt-cache")
            .args(["depends", "linux-image-cloud-amd64"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .and_then(|s| {
                s.lines()
                    .filter_map(|l| l.trim().strip_prefix("Depends: "))
                    .find(|p| p.starts_with("linux-image-"))
                    .map(str::to_owned)
            })
    };
    let package = depends(false)
        .or_else(|| depends(true))
        .expect("apt-cache knows linux-image-cloud-amd64 (Debian mirror reachable?)");
    sh(
        Command::new("apt-get")
            .current_dir(dir)
            .args(["download", "-qq", &package]),
        "apt-get download of the cloud kernel",
    );
    let deb = std::fs::read_dir(dir)
        .expect("download directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("the downloaded .deb");
    let root = dir.join("root");
    sh(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
        "dpkg-deb -x",
    );
    std::fs::remove_file(&deb).expect("removing the .deb");
    let version = std::fs::read_dir(root.join("lib/modules"))
        .expect("modules in the package")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a kernel version directory");
    sh(
        Command::new("depmod").arg("-b").arg(&root).arg(&version),
        "depmod (Debian package kmod)",
    );
}
