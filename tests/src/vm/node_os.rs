//! The stock node OS as the VM tests boot it: built by the product's own
//! command, `image-tools os build` (the real binary), from the example
//! configuration `image-tools/node-os/node-os.toml`, varying only what a test
//! must: the trusted root (the tests' signing keys), the version, and a test
//! overlay (`--overlay`) with the test-only files — the unit that runs the
//! scenario qemu hands in through fw_cfg, the static address of the metadata
//! card (standing in for a cloud's DHCP there), no login prompts on the
//! console.
//!
//! Builds are slow (a copy of the ~900 MB Debian root, an ext4 image of
//! ~700 MB), so each release is built once per content and kept in the VM
//! cache ([`super::cache`]): the entry `node-os-<version>-<hash>` is keyed by
//! everything that goes in — the configuration text, the overlay, the
//! `image-tools`, `update-agent` and static `boot-select` binaries (the
//! first carries Moho's units and node-OS files), the trusted root. The
//! signing keys and the repository's initial root are themselves a cache
//! entry (`node-os-keys-*`, one per 90 days), so that a warm cache hits. The Debian
//! root under it is `os build`'s own cache (`/var/cache/moho-os`).

use std::ffi::OsStr;
use std::io::Read as _;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::boot_select::static_boot_select;
use super::cache;
use crate::fleet::ReleaseRepo;
use crate::{bin, ok};

/// The example configuration every VM test's node OS is built from.
pub fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../image-tools/node-os/node-os.toml")
}

/// The board of the example configuration (what nodes report).
pub const BOARD: &str = "amd64-generic";

/// A directory of test-only files given to `os build --overlay`: files
/// (path in the root, mode, content) and symbolic links (path, target).
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// Regular files.
    pub files: Vec<(String, u32, String)>,
    /// Symbolic links.
    pub links: Vec<(String, String)>,
}

/// The scenario unit of the test overlay: runs what qemu hands in through
/// fw_cfg ([`super::image::SCENARIO_FW_CFG`]) once the system is up.
const SCENARIO_UNIT: &str = "[Unit]
Description=Moho VM test scenario (the script qemu passes through fw_cfg)
After=multi-user.target
Wants=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/lib/moho-test/run-scenario
StandardOutput=journal+console
StandardError=journal+console
";

/// What the scenario unit runs: the release and slot, then the scenario.
const SCENARIO_RUNNER: &str = r#"#!/bin/sh
. /usr/lib/os-release
SLOT=$(sed -n 's/.*moho\.slot=\([AB]\).*/\1/p' /proc/cmdline)
export SLOT VERSION_ID
echo "moho-test: up version=$VERSION_ID slot=$SLOT init=$(cat /proc/1/comm) id=$ID"
if [ -r /sys/firmware/qemu_fw_cfg/by_name/opt/moho/run/raw ]; then
  cat /sys/firmware/qemu_fw_cfg/by_name/opt/moho/run/raw > /run/scenario.sh
  . /run/scenario.sh
fi
echo "moho-test: end of scenario"
"#;

impl Overlay {
    /// The files every test's node OS gets: the scenario unit (enabled)
    /// and its runner, the gettys masked (the console is the test's).
    pub fn scenario() -> Self {
        let unit = "etc/systemd/system/moho-test-scenario.service";
        Self {
            files: vec![
                (unit.into(), 0o644, SCENARIO_UNIT.into()),
                (
                    "usr/lib/moho-test/run-scenario".into(),
                    0o755,
                    SCENARIO_RUNNER.into(),
                ),
            ],
            links: vec![
                (
                    "etc/systemd/system/multi-user.target.wants/moho-test-scenario.service".into(),
                    format!("/{unit}"),
                ),
                (
                    "etc/systemd/system/serial-getty@ttyS0.service".into(),
                    "/dev/null".into(),
                ),
                (
                    "etc/systemd/system/getty@tty1.service".into(),
                    "/dev/null".into(),
                ),
            ],
        }
    }

    /// Adds a file.
    pub fn file(mut self, path: &str, mode: u32, content: &str) -> Self {
        self.files.push((path.into(), mode, content.into()));
        self
    }

    fn digest(&self, h: &mut Sha256) {
        for (path, mode, content) in &self.files {
            h.update(format!("file {path} {mode:o} {}\n", content.len()));
            h.update(content.as_bytes());
        }
        for (path, target) in &self.links {
            h.update(format!("link {path} {target}\n"));
        }
    }

    fn write(&self, dir: &Path) {
        let _ = std::fs::remove_dir_all(dir);
        for (path, mode, content) in &self.files {
            let at = dir.join(path);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::write(&at, content).unwrap();
            std::fs::set_permissions(&at, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        for (path, target) in &self.links {
            let at = dir.join(path);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            symlink(target, &at).unwrap();
        }
    }
}

/// The tests' signing keys and the repository they initialised (its
/// `metadata/1.root.json` is every test image's trusted root): made once
/// per cache and 90 days (the root expires after 365).
fn keys_entry() -> PathBuf {
    let days = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    cache::entry(&format!("node-os-keys-{}", days / 90), |dir| {
        let made = ReleaseRepo::new(dir, BOARD);
        assert!(made.root().exists());
    })
}

/// A fresh signed repository under `dir` with the cached test keys, ready
/// for [`Release`] images (their trusted root is its root).
pub fn repository(dir: &Path) -> ReleaseRepo {
    let template = keys_entry();
    std::fs::create_dir_all(dir).unwrap();
    for sub in ["keys", "repo"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
        ok(
            "cp",
            [
                OsStr::new("-a"),
                template.join(sub).as_os_str(),
                dir.join(sub).as_os_str(),
            ],
        );
    }
    ReleaseRepo {
        dir: dir.to_owned(),
        keys: dir.join("keys"),
        repo: dir.join("repo"),
        board: BOARD.to_owned(),
    }
}

/// One release of the node OS, as `os build` made it (in the cache: read
/// it, copy it, never change it).
#[derive(Debug, Clone)]
pub struct Release {
    /// The output directory of `os build`.
    pub dir: PathBuf,
    /// Its version.
    pub version: String,
}

impl Release {
    /// The slot image (`image-tools repo add --image`).
    pub fn image(&self) -> PathBuf {
        self.dir.join("root.img")
    }
    /// The release's kernel (the boot selector's, for qemu's `-kernel`).
    pub fn vmlinuz(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }
    /// Its boot initramfs (`boot-select` as `/init`; qemu's `-initrd`).
    pub fn initrd(&self) -> PathBuf {
        self.dir.join("initrd.img")
    }
    /// The bootable raw disk (`os build --disk raw`), if built with one.
    pub fn disk(&self) -> PathBuf {
        let disk = self.dir.join("disk.raw");
        assert!(disk.exists(), "{} was built without --disk", self.version);
        disk
    }

    /// A copy of the stock disk at `to` as `format` (`raw`: a sparse copy;
    /// `qcow2`: `qemu-img convert`, which is what `os build --disk qcow2`
    /// does with the same raw disk).
    pub fn disk_copy(&self, to: &Path, format: &str) -> PathBuf {
        let _ = std::fs::remove_file(to);
        match format {
            "raw" => ok(
                "cp",
                [
                    OsStr::new("--sparse=always"),
                    self.disk().as_os_str(),
                    to.as_os_str(),
                ],
            ),
            other => ok(
                "qemu-img",
                [
                    OsStr::new("convert"),
                    OsStr::new("-f"),
                    OsStr::new("raw"),
                    OsStr::new("-O"),
                    OsStr::new(other),
                    self.disk().as_os_str(),
                    to.as_os_str(),
                ],
            ),
        };
        to.to_owned()
    }

    /// A fresh copy of the stock disk at `to` ([`Release::disk_copy`]),
    /// grown to four times its size with `qemu-img resize` (a bigger disk
    /// or a grown cloud volume); returns it and the stock disk's size.
    pub fn grown_disk(&self, to: &Path, format: &str) -> (PathBuf, u64) {
        let disk = self.disk_copy(to, format);
        let bytes = std::fs::metadata(self.disk()).unwrap().len();
        ok(
            "qemu-img",
            [
                OsStr::new("resize"),
                OsStr::new("-f"),
                OsStr::new(format),
                disk.as_os_str(),
                OsStr::new(&(4 * bytes).to_string()),
            ],
        );
        (disk, bytes)
    }
}

fn file_digest(h: &mut Sha256, path: &Path) {
    let mut f =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.update(b"\n");
}

/// How long an unused cached build is kept once a newer one of the same
/// version is made (another test process may still be copying it).
const STALE: Duration = Duration::from_secs(6 * 3600);

/// Release `version` of the node OS with `overlay` (and, with `disk`, its
/// raw disk), from the cache or built now by `image-tools os build`.
pub fn build(version: &str, overlay: &Overlay, disk: bool) -> Release {
    build_with(version, overlay, "", disk)
}

/// Replaces the example configuration's line for top-level `key` with
/// `key = value` (`value` as TOML).
fn set_key(config: &str, key: &str, value: &str) -> String {
    let line = config
        .lines()
        .find(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .unwrap_or_else(|| panic!("{key} in the example configuration"))
        .to_owned();
    config.replace(&line, &format!("{key} = {value}"))
}

/// [`build`] with `cmdline_extra` appended to the example configuration's
/// slot kernel command line (`cmdline`): how a test release starts a
/// different first program (`init=/bin/false` panics its kernel).
pub fn build_with(version: &str, overlay: &Overlay, cmdline_extra: &str, disk: bool) -> Release {
    crate::require_root("image-tools os build");
    let keys = keys_entry();
    let root = keys.join("repo/metadata/1.root.json");
    let config = std::fs::read_to_string(example_config()).unwrap();
    let mut config = set_key(&config, "trusted_root", &format!("\"{}\"", root.display()));
    if !cmdline_extra.is_empty() {
        let words = config
            .lines()
            .find_map(|l| l.strip_prefix("cmdline = \""))
            .and_then(|l| l.strip_suffix('"'))
            .expect("cmdline = \"...\" in the example configuration")
            .to_owned();
        config = set_key(&config, "cmdline", &format!("\"{words} {cmdline_extra}\""));
    }
    let image_tools = bin("image-tools");
    let boot_select = static_boot_select();
    let mut h = Sha256::new();
    h.update(format!("os build {version} disk={disk}\n"));
    h.update(config.as_bytes());
    overlay.digest(&mut h);
    for p in [
        image_tools.as_path(),
        bin("update-agent").as_path(),
        boot_select,
        root.as_path(),
    ] {
        file_digest(&mut h, p);
    }
    let key = hex::encode(&h.finalize()[..8]);
    let prefix = format!("node-os-{version}-");
    let name = format!("{prefix}{key}");
    let dir = cache::entry(&name, |dir| {
        let started = std::time::Instant::now();
        let cfg = dir.join("node-os.toml");
        std::fs::write(&cfg, &config).unwrap();
        let ov = dir.join("overlay");
        overlay.write(&ov);
        let out = dir.join("out");
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("os"),
            OsStr::new("build"),
            OsStr::new("--config"),
            cfg.as_os_str(),
            OsStr::new("--out"),
            out.as_os_str(),
            OsStr::new("--version"),
            OsStr::new(version),
            OsStr::new("--overlay"),
            ov.as_os_str(),
            OsStr::new("--boot-select"),
            boot_select.as_os_str(),
            OsStr::new("--force"),
        ];
        if disk {
            args.extend([OsStr::new("--disk"), OsStr::new("raw")]);
        }
        let said = ok(&image_tools, args);
        println!(
            "node OS {version}: image-tools os build took {:.0?}\n{said}",
            started.elapsed()
        );
        forget_stale(&prefix, &name);
    });
    // Used now: not stale.
    let _ = std::fs::File::options()
        .append(true)
        .open(cache::cache_dir().join(format!("{name}.done")))
        .and_then(|f| f.set_modified(SystemTime::now()));
    Release {
        dir: dir.join("out"),
        version: version.to_owned(),
    }
}

/// Removes other builds of the same version not used for [`STALE`]: each
/// is ~1.5 GB, and a changed binary makes a new one.
fn forget_stale(prefix: &str, keep: &str) {
    let root = cache::cache_dir();
    let Ok(entries) = std::fs::read_dir(&root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(entry) = name.strip_suffix(".done") else {
            continue;
        };
        if !entry.starts_with(prefix) || entry == keep {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if old {
            let _ = std::fs::remove_file(e.path());
            let _ = std::fs::remove_dir_all(root.join(entry));
            let _ = std::fs::remove_file(root.join(format!("{entry}.lock")));
        }
    }
}
