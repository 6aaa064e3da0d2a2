//! The one place the VM tests choose their kernel: Debian's kernels,
//! fetched with `apt-get download` and unpacked with `dpkg-deb -x`, with
//! `modules.dep` made by `depmod -b`. Each is both the boot selector's
//! kernel and the slot kernel of the releases booted with it.
//!
//! - [`KernelPackage::Generic`] (`linux-image-amd64`), the default for
//!   bare metal and the node OS: it has drivers for the hardware watchdogs
//!   qemu emulates (`i6300esb`), so the systemd OS's trial boots run under
//!   a real hardware watchdog. Its `ext4` is a module
//!   ([`KernelPackage::boot_modules`]). Its image is xz-compressed, which
//!   costs about 6 s of decompression per kernel start under `-accel tcg`
//!   (measured: 9.8 s from reset to the root-mount panic against 5.2 s for
//!   the cloud kernel's lz4 image), twice per boot (selector, then slot).
//! - [`KernelPackage::Cloud`] (`linux-image-cloud-amd64`): no hardware
//!   watchdog drivers, `ext4` built in; the busybox test OS (whose plain
//!   init feeds no watchdog) boots with it, many times per test, so it
//!   keeps the faster kernel.
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
    /// The package it came from.
    pub package: KernelPackage,
}

/// Which Debian kernel package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelPackage {
    /// `linux-image-amd64`.
    Generic,
    /// `linux-image-cloud-amd64`.
    Cloud,
}

impl KernelPackage {
    /// The meta package that names the versioned image package.
    pub fn meta_package(self) -> &'static str {
        match self {
            Self::Generic => "linux-image-amd64",
            Self::Cloud => "linux-image-cloud-amd64",
        }
    }

    fn cache_entry(self) -> &'static str {
        match self {
            Self::Generic => "debian-generic-kernel",
            Self::Cloud => "debian-cloud-kernel",
        }
    }

    /// Modules an initramfs for this kernel loads, beyond the virtual
    /// hardware's drivers, to mount a slot: what the kernel does not have
    /// built in. (`crc32c` first: ext4 asks for it by name at mount time,
    /// and nothing in an initramfs would load it on request.)
    pub fn boot_modules(self) -> &'static str {
        match self {
            Self::Generic => "crc32c_generic,ext4",
            Self::Cloud => "",
        }
    }
}

/// The kernel of `package`, fetched once per cache.
pub fn debian_kernel(package: KernelPackage) -> &'static Kernel {
    static GENERIC: OnceLock<Kernel> = OnceLock::new();
    static CLOUD: OnceLock<Kernel> = OnceLock::new();
    let cell = match package {
        KernelPackage::Generic => &GENERIC,
        KernelPackage::Cloud => &CLOUD,
    };
    cell.get_or_init(|| {
        let dir = cache::entry(package.cache_entry(), |d| fetch(d, package));
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
            package,
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

fn fetch(dir: &Path, package: KernelPackage) {
    // The meta package names the versioned image package.
    let depends = |update: bool| {
        if update {
            sh(
                Command::new("apt-get").args(["update", "-qq"]),
                "apt-get update",
            );
        }
        Command::new("apt-cache")
            .args(["depends", package.meta_package()])
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
    let package = depends(false).or_else(|| depends(true)).unwrap_or_else(|| {
        panic!(
            "apt-cache knows {} (Debian mirror reachable?)",
            package.meta_package()
        )
    });
    sh(
        Command::new("apt-get")
            .current_dir(dir)
            .args(["download", "-qq", &package]),
        "apt-get download of the kernel",
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
