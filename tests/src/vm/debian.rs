//! A Debian root with systemd and dbus for the test OS (`debootstrap
//! --variant=minbase`), made once per cache and trimmed of what a
//! read-only slot never uses (apt caches and lists, documentation,
//! translations).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::cache;

/// Packages on top of minbase: systemd as init, dbus, udev (for
/// `/dev/disk/by-*` and `systemd-networkd`'s links).
pub const PACKAGES: &str = "systemd-sysv,dbus,udev";

/// The trimmed root tree (read it, copy it; never change it).
pub fn debian_systemd_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        crate::require_root("debootstrap");
        cache::entry("debian-bookworm-systemd", bootstrap).join("root")
    })
}

fn bootstrap(dir: &Path) {
    let root = dir.join("root");
    let out = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={PACKAGES}"),
            "bookworm",
        ])
        .arg(&root)
        .arg("http://deb.debian.org/debian")
        .output()
        .expect("debootstrap (Debian package debootstrap)");
    assert!(
        out.status.success(),
        "debootstrap failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for junk in [
        "var/cache/apt",
        "var/lib/apt/lists",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "var/log",
    ] {
        let p = root.join(junk);
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
    }
    // An image has no machine id of its own: systemd makes a transient
    // one on a read-only root.
    std::fs::write(root.join("etc/machine-id"), b"").unwrap();
    let _ = std::fs::remove_file(root.join("var/lib/dbus/machine-id"));
}
