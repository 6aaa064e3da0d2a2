//! `node-os.toml`: what an operator says about their node OS (`image-tools os
//! build --config`), parsed against a fixed schema (unknown keys refused) and
//! resolved into [`NodeOsConfig`] with paths relative to the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::{DiskFormat, Filesystem, parse_bytes};

/// Debian packages every node OS gets, whatever the configuration says: the
/// kernel (Debian's generic one: bare metal needs its drivers), systemd as
/// init with networkd, resolved and timesyncd, D-Bus (the agent's bus), udev,
/// e2fsprogs (STATE's `e2fsck` and `resize2fs`), kmod, the CA roots and the
/// SSH server that reads the provisioned keys.
pub const BASE_PACKAGES: [&str; 11] = [
    "linux-image-amd64",
    "systemd-sysv",
    "systemd-resolved",
    "systemd-timesyncd",
    "dbus",
    "udev",
    "e2fsprogs",
    "kmod",
    "ca-certificates",
    "openssh-server",
    "util-linux",
];

/// Modules of the boot initramfs unless the configuration names others: the
/// disks of VMs, clouds and servers (virtio, NVMe, SATA/AHCI, SCSI, USB
/// storage), qemu's fw_cfg (credentials) and the watchdogs the boot selector
/// arms for a trial (Intel TCO, qemu's i6300esb).
pub const DEFAULT_INITRAMFS_MODULES: [&str; 13] = [
    "virtio_blk",
    "virtio_pci",
    "virtio_scsi",
    "virtio_net",
    "virtio_rng",
    "nvme",
    "ahci",
    "sd_mod",
    "usb_storage",
    "xhci_pci",
    "qemu_fw_cfg",
    "i6300esb",
    "iTCO_wdt",
];

/// Files and directories no slot needs (documentation, translations, apt's
/// caches); removed from every tree.
pub const TRIM: [&str; 6] = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
];

/// The configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not readable.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML of the schema (unknown key, wrong type).
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message (names the key and line).
        message: String,
    },
    /// A value that parses but is not usable.
    #[error("{}: key {key} = {value:?}: {why}", path.display())]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// Why.
        why: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    version: String,
    board: String,
    name: Option<String>,
    suite: Option<String>,
    mirror: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
    trusted_root: String,
    #[serde(default)]
    overlays: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    cmdline: Option<String>,
    initramfs_modules: Option<Vec<String>>,
    #[serde(default)]
    remove: Vec<String>,
    source_date_epoch: Option<i64>,
    #[serde(default)]
    image: RawImage,
    #[serde(default)]
    disk: RawDisk,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    fs: Option<String>,
    size: Option<String>,
    chunk_size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDisk {
    size: Option<String>,
    slot_size: Option<String>,
    esp_size: Option<String>,
    boot_cmdline: Option<String>,
    format: Option<String>,
}

/// The default Debian suite.
pub const DEFAULT_SUITE: &str = "bookworm";
/// The default mirror.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
/// The default epoch of every file (2024-01-01T00:00:00Z): the same for every
/// release, so that a file that did not change keeps identical bytes.
pub const DEFAULT_EPOCH: i64 = 1_704_067_200;

/// A resolved configuration.
#[derive(Debug, Clone)]
pub struct NodeOsConfig {
    /// Release version (semver; checked by `build`).
    pub version: String,
    /// Board.
    pub board: String,
    /// os-release `NAME`.
    pub name: String,
    /// Debian suite.
    pub suite: String,
    /// Debian mirror.
    pub mirror: String,
    /// Every package to install: [`BASE_PACKAGES`] and the configuration's,
    /// sorted, each once.
    pub packages: Vec<String>,
    /// The trusted TUF root (the repository's `1.root.json`).
    pub trusted_root: PathBuf,
    /// Directories copied over the tree, in order, after Moho's files.
    pub overlays: Vec<PathBuf>,
    /// Login accounts made in the image (their SSH keys come from provisioning).
    pub users: Vec<String>,
    /// The slot kernel's command line (`/boot/cmdline`), before `init=`.
    pub cmdline: String,
    /// Boot initramfs modules.
    pub initramfs_modules: Vec<String>,
    /// Extra paths (relative to the root) removed from the tree.
    pub remove: Vec<String>,
    /// Epoch of every file.
    pub source_date_epoch: Option<i64>,
    /// Slot image filesystem.
    pub fs: Filesystem,
    /// Slot image size (default: fitted).
    pub image_size: Option<u64>,
    /// Chunk size.
    pub chunk_size: u64,
    /// Disk size (default: twice the slot plus ESP and 256 MiB of STATE).
    pub disk_size: Option<u64>,
    /// Slot size on the disk (default: the image rounded up to 64 MiB, plus a quarter).
    pub slot_size: Option<u64>,
    /// ESP size.
    pub esp_size: u64,
    /// The boot selector's kernel command line (ESP loader entry).
    pub boot_cmdline: String,
    /// Disk format when `--disk` is given without one.
    pub disk_format: DiskFormat,
}

/// Reads and resolves `path`.
pub fn load(path: &Path) -> Result<NodeOsConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Parses `text` (read from `path`, against which relative paths resolve).
pub fn parse(path: &Path, text: &str) -> Result<NodeOsConfig, ConfigError> {
    let raw: Raw = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &str| base.join(p);
    let bad = |key: &'static str, value: &str, why: &str| ConfigError::BadValue {
        path: path.to_owned(),
        key,
        value: value.to_owned(),
        why: why.to_owned(),
    };
    let size = |key: &'static str, v: &Option<String>| -> Result<Option<u64>, ConfigError> {
        v.as_deref()
            .map(|s| parse_bytes(s).map_err(|why| bad(key, s, &why)))
            .transpose()
    };
    for p in &raw.packages {
        let ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.:=".contains(c));
        if !ok {
            return Err(bad("packages", p, "not a Debian package name"));
        }
    }
    for u in &raw.users {
        let ok = !u.is_empty()
            && u.len() <= 32
            && u.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && u.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c));
        if !ok || u == "root" {
            return Err(bad(
                "users",
                u,
                "not a user name to create (lower-case letters, digits, '-', '_'; not root)",
            ));
        }
    }
    for r in &raw.remove {
        if r.starts_with('/') || r.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(bad(
                "remove",
                r,
                "must be a path inside the root, without a leading '/' or '..'",
            ));
        }
    }
    let mut packages: Vec<String> = BASE_PACKAGES
        .iter()
        .map(|p| (*p).to_owned())
        .chain(raw.packages.iter().cloned())
        .collect();
    packages.sort();
    packages.dedup();
    let fs = match raw.image.fs.as_deref() {
        None | Some("ext4") => Filesystem::Ext4,
        Some("erofs") => Filesystem::Erofs,
        Some(other) => return Err(bad("image.fs", other, "ext4 or erofs")),
    };
    let disk_format = match raw.disk.format.as_deref() {
        None | Some("raw") => DiskFormat::Raw,
        Some("qcow2") => DiskFormat::Qcow2,
        Some("vhd") => DiskFormat::Vhd,
        Some("vmdk") => DiskFormat::Vmdk,
        Some(other) => return Err(bad("disk.format", other, "raw, qcow2, vhd or vmdk")),
    };
    let mirror = raw.mirror.unwrap_or_else(|| DEFAULT_MIRROR.to_owned());
    if !(mirror.starts_with("http://") || mirror.starts_with("https://")) {
        return Err(bad("mirror", &mirror, "an http:// or https:// URL"));
    }
    Ok(NodeOsConfig {
        version: raw.version,
        board: raw.board,
        name: raw.name.unwrap_or_else(|| "Moho node OS".to_owned()),
        suite: raw.suite.unwrap_or_else(|| DEFAULT_SUITE.to_owned()),
        mirror,
        packages,
        trusted_root: resolve(&raw.trusted_root),
        overlays: raw.overlays.iter().map(|o| resolve(o)).collect(),
        users: raw.users,
        cmdline: raw
            .cmdline
            .unwrap_or_else(|| "console=tty0 console=ttyS0,115200 panic=10".to_owned()),
        initramfs_modules: raw.initramfs_modules.unwrap_or_else(|| {
            DEFAULT_INITRAMFS_MODULES
                .iter()
                .map(|m| (*m).to_owned())
                .collect()
        }),
        remove: raw.remove,
        source_date_epoch: raw.source_date_epoch,
        fs,
        image_size: size("image.size", &raw.image.size)?,
        chunk_size: size("image.chunk_size", &raw.image.chunk_size)?.unwrap_or(4 << 20),
        disk_size: size("disk.size", &raw.disk.size)?,
        slot_size: size("disk.slot_size", &raw.disk.slot_size)?,
        esp_size: size("disk.esp_size", &raw.disk.esp_size)?.unwrap_or(64 << 20),
        boot_cmdline: raw
            .disk
            .boot_cmdline
            .unwrap_or_else(|| "console=tty0 console=ttyS0,115200".to_owned()),
        disk_format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "version = \"1.0.0\"\nboard = \"amd64-generic\"\n\
        trusted_root = \"keys/1.root.json\"\n";

    #[test]
    fn a_minimal_file_gets_the_base_packages_and_paths_relative_to_it() {
        let c = parse(Path::new("/etc/os/node-os.toml"), MINIMAL).unwrap();
        assert_eq!(c.trusted_root, Path::new("/etc/os/keys/1.root.json"));
        assert_eq!(c.suite, "bookworm");
        assert!(c.packages.contains(&"linux-image-amd64".to_owned()));
        assert!(c.packages.contains(&"openssh-server".to_owned()));
        assert!(c.packages.windows(2).all(|w| w[0] < w[1]), "sorted, once");
        assert_eq!(c.chunk_size, 4 << 20);
        assert_eq!(c.disk_format, DiskFormat::Raw);
    }

    #[test]
    fn packages_are_merged_with_the_base_set_once() {
        let text = format!("{MINIMAL}packages = [\"podman\", \"dbus\"]\n");
        let c = parse(Path::new("n.toml"), &text).unwrap();
        assert_eq!(c.packages.iter().filter(|p| *p == "dbus").count(), 1);
        assert!(c.packages.contains(&"podman".to_owned()));
    }

    #[test]
    fn unknown_keys_wrong_types_and_bad_values_are_named() {
        let e = parse(Path::new("n.toml"), &format!("{MINIMAL}pakages = []\n")).unwrap_err();
        assert!(e.to_string().contains("pakages"), "{e}");
        let e = parse(Path::new("n.toml"), &format!("{MINIMAL}users = \"core\"\n")).unwrap_err();
        assert!(e.to_string().contains("users"), "{e}");
        let e = parse(
            Path::new("n.toml"),
            &format!("{MINIMAL}packages = [\"Bad Name\"]\n"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "n.toml: key packages = \"Bad Name\": not a Debian package name"
        );
        let e = parse(
            Path::new("n.toml"),
            &format!("{MINIMAL}remove = [\"../x\"]\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("key remove = \"../x\""), "{e}");
        let e = parse(
            Path::new("n.toml"),
            &format!("{MINIMAL}[image]\nchunk_size = \"lots\"\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("image.chunk_size"), "{e}");
        let e = parse(
            Path::new("n.toml"),
            &format!("{MINIMAL}users = [\"root\"]\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not root"), "{e}");
    }
}
