//! What the VMs boot: the initramfs (`image-tools initramfs` with the static
//! `boot-select`), test OS releases with the real `update-agent` (busybox
//! with a plain shell init for the boot-chain tests, or a Debian minbase
//! with systemd and dbus for `tests/vm_server_unit.rs`; the update story
//! boots the stock node OS, [`super::node_os`]), the disk
//! (`image-tools disk create`), and a read-only disk holding the signed
//! repository (`file:///mnt/repo/` in the guest). Each boot's scenario is a
//! shell script the test hands in through qemu's fw_cfg.

use std::ffi::OsStr;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::boot_select::static_boot_select;
use super::kernel::{Kernel, KernelPackage, debian_kernel};
use crate::fleet::ReleaseRepo;
use crate::{bin, ok};

/// Modules every test initramfs carries: the disk, the fw_cfg files the
/// tests hand scenarios through, the network, and entropy.
pub const MODULES: &str = "virtio_blk,virtio_pci,qemu_fw_cfg,virtio_net,virtio_rng";

/// Where the guest finds the scenario script qemu passes with `-fw_cfg`.
pub const SCENARIO_FW_CFG: &str = "opt/moho/run";

/// Builds the initramfs with `modules` (comma-separated) into `out`.
pub fn initramfs(kernel: &Kernel, modules: &str, out: &Path) -> PathBuf {
    ok(
        bin("image-tools"),
        [
            OsStr::new("initramfs"),
            OsStr::new("--kernel-modules"),
            kernel.modules.as_os_str(),
            OsStr::new("--modules"),
            OsStr::new(modules),
            OsStr::new("--init"),
            static_boot_select().as_os_str(),
            OsStr::new("--out"),
            out.as_os_str(),
            OsStr::new("--force"),
        ],
    );
    out.to_owned()
}

/// How a test release behaves when booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// The plain init (busybox): mount STATE, run the scenario script,
    /// power off; systemd: the scenario unit.
    Agent,
    /// busybox only: its `/sbin/init` exits at once, the kernel panics
    /// ("Attempted to kill init").
    Panic,
}

/// The plain init of the busybox test OS.
const AGENT_INIT: &str = r#"#!/bin/sh
# Moho busybox test OS: a plain init (no systemd) that runs update-agent.
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t ext4 "$(findfs LABEL=STATE)" /var || echo "moho-test: cannot mount STATE on /var"
mkdir -p /var/lib/moho
if [ -b /dev/vdb ]; then mount -t ext4 -o ro /dev/vdb /mnt/repo || echo "moho-test: no repository disk"; fi
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
fi
. /usr/lib/os-release
SLOT=$(sed -n 's/.*moho\.slot=\([AB]\).*/\1/p' /proc/cmdline)
export SLOT VERSION_ID
echo "moho-test: up version=$VERSION_ID slot=$SLOT"
if [ -r /sys/firmware/qemu_fw_cfg/by_name/opt/moho/run/raw ]; then
  cat /sys/firmware/qemu_fw_cfg/by_name/opt/moho/run/raw > /run/scenario.sh
  . /run/scenario.sh
fi
echo "moho-test: end of scenario"
sync
poweroff -f
"#;

/// systemd flavour: the unit that runs the scenario once the system is up.
const SCENARIO_UNIT: &str = "[Unit]
Description=Moho VM test scenario
After=multi-user.target
Wants=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/lib/moho-test/run-scenario
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
";

/// systemd flavour: what the unit runs.
const SCENARIO_RUNNER: &str = r#"#!/bin/sh
. /usr/lib/os-release
SLOT=$(sed -n 's/.*moho\.slot=\([AB]\).*/\1/p' /proc/cmdline)
export SLOT VERSION_ID
if [ -b /dev/vdb ] && ! mountpoint -q /mnt/repo; then mount -o ro /dev/vdb /mnt/repo || echo "moho-test: no repository disk"; fi
echo "moho-test: up version=$VERSION_ID slot=$SLOT init=$(cat /proc/1/comm)"
if [ -r /sys/firmware/qemu_fw_cfg/by_name/opt/moho/run/raw ]; then
  cat /sys/firmware/qemu_fw_cfg/by_name/opt/moho/run/raw > /run/scenario.sh
  . /run/scenario.sh
fi
echo "moho-test: end of scenario"
systemctl --no-block poweroff
"#;

/// systemd flavour: filesystems of a read-only root. (A repository disk,
/// if any, is mounted by the scenario runner: an fstab entry for a disk
/// that is absent holds the boot for its device timeout.)
const SYSTEMD_FSTAB: &str = "LABEL=STATE /var ext4 defaults 0 2
tmpfs /tmp tmpfs mode=1777,nosuid,nodev 0 0
";

const PANIC_INIT: &str = "#!/bin/sh\necho \"moho-test: this release's init exits\"\nexit 1\n";

/// What the test OS is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// busybox and a plain shell init.
    Busybox,
    /// Debian minbase with systemd as init and dbus.
    Systemd,
}

/// One release of the test OS.
#[derive(Debug, Clone)]
pub struct TestRelease {
    /// Semver.
    pub version: String,
    /// What it does.
    pub behaviour: Behaviour,
    /// What it is made of.
    pub flavour: Flavour,
    /// MiB of incompressible data only this release has (`/payload.bin`),
    /// so that installing it downloads that much rather than reusing the
    /// booted slot's chunks.
    pub payload_mib: usize,
}

/// Builds everything the VM tests share: kernel, initramfs, repository.
#[derive(Debug)]
pub struct TestOs {
    /// Working directory.
    pub dir: PathBuf,
    /// The kernel.
    pub kernel: &'static Kernel,
    /// The initramfs (selector and slots alike).
    pub initramfs: PathBuf,
    /// The signed repository.
    pub repo: ReleaseRepo,
    /// Size of each root slot of [`TestOs::disk`], MiB.
    pub slot_mib: u64,
    /// Files every release carries on top (path in the root, content): an
    /// image's own configuration, e.g. the update server it talks to.
    pub extra_files: Vec<(String, String)>,
}

impl TestOs {
    /// Fetches the cloud kernel (cached) and makes the initramfs (with
    /// [`MODULES`]) and an empty repository under `dir`.
    pub fn new(dir: &Path) -> Self {
        Self::with_kernel(dir, KernelPackage::Cloud, "")
    }

    /// [`TestOs::new`] with the kernel of `package`, its initramfs
    /// carrying [`MODULES`], what that kernel needs to mount a slot
    /// ([`KernelPackage::boot_modules`]) and `extra` (comma-separated).
    pub fn with_kernel(dir: &Path, package: KernelPackage, extra: &str) -> Self {
        let kernel = debian_kernel(package);
        let modules: Vec<&str> = [MODULES, package.boot_modules(), extra]
            .into_iter()
            .filter(|m| !m.is_empty())
            .collect();
        let initramfs = initramfs(kernel, &modules.join(","), &dir.join("initrd.img"));
        let repo = ReleaseRepo::new(&dir.join("releases"), "amd64-vm");
        Self {
            dir: dir.to_owned(),
            kernel,
            initramfs,
            repo,
            slot_mib: 144,
            extra_files: Vec::new(),
        }
    }

    /// The root tree of `release`.
    pub fn tree(&self, release: &TestRelease) -> PathBuf {
        let tree = self.dir.join(format!("tree-{}", release.version));
        let _ = std::fs::remove_dir_all(&tree);
        if release.flavour == Flavour::Systemd {
            let out = Command::new("cp")
                .arg("-a")
                .arg(super::debian::debian_systemd_root())
                .arg(&tree)
                .output()
                .expect("cp");
            assert!(
                out.status.success(),
                "cp: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for d in [
            "bin",
            "sbin",
            "usr/bin",
            "usr/sbin",
            "usr/lib/moho",
            "etc/moho/agent.d",
            "boot",
            "proc",
            "sys",
            "dev",
            "run",
            "tmp",
            "var",
            "mnt/repo",
            "root",
        ] {
            std::fs::create_dir_all(tree.join(d)).unwrap();
        }
        // The systemd flavour uses Debian's own C library (the same release
        // the host has); busybox brings none.
        let busybox = release.flavour == Flavour::Busybox;
        if busybox {
            install_busybox(&tree);
        }
        install_program(&bin("update-agent"), &tree, "usr/bin/update-agent", busybox);
        std::fs::copy(&self.kernel.vmlinuz, tree.join("boot/vmlinuz")).unwrap();
        std::fs::copy(&self.initramfs, tree.join("boot/initrd.img")).unwrap();
        // systemd's status lines (without `quiet`) say which job a slow
        // boot waits for.
        let quiet = if busybox { "quiet " } else { "" };
        std::fs::write(
            tree.join("boot/cmdline"),
            format!("# the test OS: serial console, quick reset after a panic\nconsole=ttyS0 {quiet}panic=1 moho.retry=2\n"),
        )
        .unwrap();
        std::fs::write(
            tree.join("usr/lib/os-release"),
            format!(
                "NAME=\"Moho test OS\"\nID=moho-test\nVERSION_ID={}\n",
                release.version
            ),
        )
        .unwrap();
        let _ = std::fs::remove_file(tree.join("etc/os-release"));
        symlink("../usr/lib/os-release", tree.join("etc/os-release")).unwrap();
        if release.payload_mib > 0 {
            let seed = release
                .version
                .bytes()
                .fold(7u64, |h, b| h * 31 + u64::from(b));
            std::fs::write(
                tree.join("payload.bin"),
                crate::fleet::payload(release.payload_mib << 20, seed),
            )
            .unwrap();
        }
        std::fs::copy(self.repo.root(), tree.join("usr/lib/moho/root.json")).unwrap();
        std::fs::create_dir_all(tree.join("etc/ssl/certs")).unwrap();
        std::fs::copy(
            "/etc/ssl/certs/ca-certificates.crt",
            tree.join("etc/ssl/certs/ca-certificates.crt"),
        )
        .expect("the CA bundle (Debian package ca-certificates)");
        std::fs::write(
            tree.join("etc/moho/agent.d/10-vm.toml"),
            format!(
                "[repository]\nurl = \"file:///mnt/repo/\"\nroot = \"/usr/lib/moho/root.json\"\n\
                 [node]\nboard = \"{}\"\nchannel = \"stable\"\n\
                 [update]\ndownload_attempts = 3\ndownload_backoff = \"100ms\"\n",
                self.repo.board
            ),
        )
        .unwrap();
        for (path, content) in &self.extra_files {
            let at = tree.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::write(at, content).unwrap();
        }
        match (release.flavour, release.behaviour) {
            (Flavour::Busybox, Behaviour::Agent) => write_exec(&tree.join("sbin/init"), AGENT_INIT),
            (Flavour::Busybox, Behaviour::Panic) => {
                write_exec(&tree.join("sbin/init"), PANIC_INIT);
            }
            (Flavour::Systemd, Behaviour::Agent) => systemd_extras(&tree),
            (Flavour::Systemd, Behaviour::Panic) => {
                panic!(
                    "Behaviour::Panic is the busybox flavour's (the story's releases are node OS builds)"
                )
            }
        }
        tree
    }

    /// Builds `release` as a slot image with 1 MiB chunks and publishes it
    /// on `stable`; returns the image.
    pub fn publish(&self, release: &TestRelease) -> PathBuf {
        let image = self.build(release);
        self.repo.add(&image, &["stable"]);
        image
    }

    /// Builds `release` as a slot image (not published).
    pub fn build(&self, release: &TestRelease) -> PathBuf {
        let tree = self.tree(release);
        self.build_tree(&tree, release)
    }

    /// Builds the slot image of `release` from `tree` (made by
    /// [`TestOs::tree`], perhaps changed since), then removes the tree.
    pub fn build_tree(&self, tree: &Path, release: &TestRelease) -> PathBuf {
        let out = self.dir.join(format!("release-{}.img", release.version));
        ok(
            bin("image-tools"),
            [
                OsStr::new("build"),
                OsStr::new("--rootfs"),
                tree.as_os_str(),
                OsStr::new("--version"),
                OsStr::new(&release.version),
                OsStr::new("--board"),
                OsStr::new(&self.repo.board),
                OsStr::new("--out"),
                out.as_os_str(),
                OsStr::new("--chunk-size"),
                OsStr::new("1MiB"),
                OsStr::new("--source-date-epoch"),
                OsStr::new("1700000000"),
                OsStr::new("--force"),
            ],
        );
        let _ = std::fs::remove_dir_all(tree);
        out
    }

    /// A read-only ext4 image of the repository, for `/dev/vdb`.
    pub fn repo_disk(&self) -> PathBuf {
        let out = self.dir.join("repo-disk.img");
        let _ = std::fs::remove_file(&out);
        let bytes = dir_size(&self.repo.repo);
        let kib = bytes / 1024 * 5 / 4 + 16 * 1024;
        ok(
            "mke2fs",
            [
                OsStr::new("-q"),
                OsStr::new("-t"),
                OsStr::new("ext4"),
                OsStr::new("-O"),
                OsStr::new("^has_journal"),
                OsStr::new("-d"),
                self.repo.repo.as_os_str(),
                out.as_os_str(),
                OsStr::new(&format!("{kib}k")),
            ],
        );
        out
    }

    /// A disk with `slot_a` in ROOT-A (and, with `esp`, the boot chain on
    /// the ESP).
    pub fn disk(&self, name: &str, slot_a: &Path, esp: bool, format: &str) -> PathBuf {
        let out = self.dir.join(name);
        let slot = format!("{}M", self.slot_mib);
        let size = format!("{}M", 2 * self.slot_mib + 40 + 96);
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("disk"),
            OsStr::new("create"),
            OsStr::new("--out"),
            out.as_os_str(),
            OsStr::new("--size"),
            OsStr::new(&size),
            OsStr::new("--slot-size"),
            OsStr::new(&slot),
            OsStr::new("--esp-size"),
            OsStr::new("40M"),
            OsStr::new("--slot-a"),
            slot_a.as_os_str(),
            OsStr::new("--format"),
            OsStr::new(format),
            OsStr::new("--force"),
        ];
        if esp {
            args.extend([
                OsStr::new("--boot-kernel"),
                self.kernel.vmlinuz.as_os_str(),
                OsStr::new("--boot-initramfs"),
                self.initramfs.as_os_str(),
                OsStr::new("--boot-cmdline"),
                OsStr::new("console=ttyS0 moho.wait=20 moho.retry=2"),
            ]);
        }
        ok(bin("image-tools"), args);
        out
    }
}

fn write_exec(path: &Path, text: &str) {
    let _ = std::fs::remove_file(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// systemd flavour: the wired network of qemu's user mode, by
/// systemd-networkd (the address the busybox init sets by hand).
const NETWORK: &str = "[Match]
Name=e*

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
LinkLocalAddressing=no
IPv6AcceptRA=no
";

/// systemd flavour: network-online.target waits for any link, at most 30 s
/// (a VM without a network card must not hold the agent back for long).
const WAIT_ONLINE_DROPIN: &str = "[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30
";

/// systemd flavour (what `tests/vm_server_unit.rs` boots): fstab, the
/// network, the scenario unit, no login prompts, and the agent as a product
/// ships it: the units, D-Bus policy, tmpfiles, default drop-in and watchdog
/// configuration from `systemd/` (enabled).
fn systemd_extras(tree: &Path) {
    std::fs::write(tree.join("etc/fstab"), SYSTEMD_FSTAB).unwrap();
    write_exec(
        &tree.join("usr/lib/moho-test/run-scenario"),
        SCENARIO_RUNNER,
    );
    let units = tree.join("etc/systemd/system");
    std::fs::write(units.join("moho-test-scenario.service"), SCENARIO_UNIT).unwrap();
    let wants = units.join("multi-user.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    symlink(
        "/etc/systemd/system/moho-test-scenario.service",
        wants.join("moho-test-scenario.service"),
    )
    .unwrap();
    for masked in ["serial-getty@ttyS0.service", "getty@tty1.service"] {
        let _ = std::fs::remove_file(units.join(masked));
        symlink("/dev/null", units.join(masked)).unwrap();
    }
    let _ = std::fs::remove_file(units.join("getty.target.wants/getty@tty1.service"));

    std::fs::create_dir_all(tree.join("etc/systemd/network")).unwrap();
    std::fs::write(tree.join("etc/systemd/network/10-qemu.network"), NETWORK).unwrap();
    let wait_online = units.join("systemd-networkd-wait-online.service.d");
    std::fs::create_dir_all(&wait_online).unwrap();
    std::fs::write(wait_online.join("moho-test.conf"), WAIT_ONLINE_DROPIN).unwrap();
    for (target, unit) in [
        ("multi-user.target.wants", "systemd-networkd.service"),
        ("sockets.target.wants", "systemd-networkd.socket"),
        (
            "network-online.target.wants",
            "systemd-networkd-wait-online.service",
        ),
    ] {
        let dir = units.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join(unit);
        let _ = std::fs::remove_file(&link);
        symlink(format!("/lib/systemd/system/{unit}"), link).unwrap();
    }

    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd");
    let lib_units = tree.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&lib_units).unwrap();
    for unit in [
        "moho-agent.service",
        "moho-mark-good.service",
        "moho-provision.service",
    ] {
        std::fs::copy(shipped.join(unit), lib_units.join(unit)).unwrap();
        symlink(format!("/usr/lib/systemd/system/{unit}"), wants.join(unit)).unwrap();
    }
    let grow = "moho-grow-state.service";
    std::fs::copy(shipped.join(grow), lib_units.join(grow)).unwrap();
    let local_fs = units.join("local-fs.target.wants");
    std::fs::create_dir_all(&local_fs).unwrap();
    symlink(
        format!("/usr/lib/systemd/system/{grow}"),
        local_fs.join(grow),
    )
    .unwrap();
    for (from, to) in [
        (
            "org.moho.Agent1.conf",
            "usr/share/dbus-1/system.d/org.moho.Agent1.conf",
        ),
        ("moho.tmpfiles", "usr/lib/tmpfiles.d/moho.conf"),
        (
            "agent.d/50-defaults.toml",
            "usr/lib/moho/agent.d/50-defaults.toml",
        ),
        (
            "system.conf.d/50-moho-watchdog.conf",
            "usr/lib/systemd/system.conf.d/50-moho-watchdog.conf",
        ),
    ] {
        std::fs::create_dir_all(tree.join(to).parent().unwrap()).unwrap();
        std::fs::copy(shipped.join(from), tree.join(to)).unwrap();
    }
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                dir_size(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}

/// busybox (Debian's static build) and a link per applet.
fn install_busybox(tree: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox missing: install the Debian package busybox-static"
    );
    std::fs::copy(busybox, tree.join("bin/busybox")).unwrap();
    let list = ok(busybox, ["--list-full"]);
    for applet in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let link = tree.join(applet);
        // The test OS brings its own init.
        if link.exists() || ["bin/busybox", "sbin/init", "linuxrc"].contains(&applet) {
            continue;
        }
        let depth = applet.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(target, &link).unwrap();
    }
}

/// Copies a dynamically linked program without its debug information, and
/// (with `libs`) the shared libraries `ldd` names at the same paths.
pub fn install_program(program: &Path, tree: &Path, at: &str, libs: bool) {
    let dest = tree.join(at);
    let out = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(program)
        .arg(&dest)
        .output()
        .expect("objcopy (Debian package binutils)");
    assert!(
        out.status.success(),
        "objcopy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if !libs {
        return;
    }
    let ldd = ok("ldd", [program.as_os_str()]);
    for line in ldd.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let in_tree = tree.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(in_tree.parent().unwrap()).unwrap();
        std::fs::copy(path, &in_tree).unwrap();
    }
}
