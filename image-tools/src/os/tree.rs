//! A copy of the cached Debian root made into a Moho slot root: what Moho
//! puts in every node OS (units from `systemd/`, files from
//! `image-tools/node-os/`, both compiled into `image-tools`), the boot
//! initramfs, and last the operator's overlays, which may replace anything.
//!
//! The writable-`/etc` strategy is "factory defaults": `/etc` is the
//! release's, read-only, and replaced whole by every update; what is the
//! node's lives on STATE (`/var`) and survives updates (machine id, SSH host
//! keys, the provision document, the agent's state, containers, the journal),
//! and what provisioning derives is rebuilt in `/run` at every boot.

use std::fs;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::OsBuildError;
use super::bootstrap::tail;
use super::config::{NodeOsConfig, TRIM};
use crate::cli::InitramfsArgs;

/// Units Moho ships, installed in `/usr/lib/systemd/system` and enabled.
const UNITS: [(&str, &str); 5] = [
    (
        "moho-agent.service",
        include_str!("../../../systemd/moho-agent.service"),
    ),
    (
        "moho-mark-good.service",
        include_str!("../../../systemd/moho-mark-good.service"),
    ),
    (
        "moho-provision.service",
        include_str!("../../../systemd/moho-provision.service"),
    ),
    (
        "moho-grow-state.service",
        include_str!("../../../systemd/moho-grow-state.service"),
    ),
    (
        "moho-ssh-host-keys.service",
        include_str!("../../../systemd/moho-ssh-host-keys.service"),
    ),
];

/// Other files Moho puts in every node OS: (path in the root, mode, content).
const FILES: [(&str, u32, &str); 9] = [
    (
        "usr/share/dbus-1/system.d/org.moho.Agent1.conf",
        0o644,
        include_str!("../../../systemd/org.moho.Agent1.conf"),
    ),
    (
        "usr/lib/tmpfiles.d/moho.conf",
        0o644,
        include_str!("../../../systemd/moho.tmpfiles"),
    ),
    (
        "usr/lib/moho/agent.d/50-defaults.toml",
        0o644,
        include_str!("../../../systemd/agent.d/50-defaults.toml"),
    ),
    (
        "usr/lib/systemd/system.conf.d/50-moho-watchdog.conf",
        0o644,
        include_str!("../../../systemd/system.conf.d/50-moho-watchdog.conf"),
    ),
    (INIT, 0o755, include_str!("../../node-os/moho-init")),
    (
        "etc/ssh/sshd_config.d/50-moho.conf",
        0o644,
        include_str!("../../node-os/50-moho.conf"),
    ),
    (
        "usr/lib/systemd/network/80-moho-dhcp.network",
        0o644,
        include_str!("../../node-os/80-moho-dhcp.network"),
    ),
    (
        "etc/containers/containers.conf.d/50-moho.conf",
        0o644,
        include_str!("../../node-os/containers.conf"),
    ),
    (
        "etc/systemd/system/systemd-networkd-wait-online.service.d/50-moho.conf",
        0o644,
        include_str!("../../node-os/wait-online.conf"),
    ),
];

/// The slot's first program (`init=`): STATE on `/var`, the machine id, then systemd.
pub const INIT: &str = "usr/lib/moho/init";

/// Enabled with `systemctl --root`: Moho's units and Debian's network stack.
const ENABLE: [&str; 8] = [
    "moho-agent.service",
    "moho-mark-good.service",
    "moho-provision.service",
    "moho-grow-state.service",
    "moho-ssh-host-keys.service",
    "systemd-networkd.service",
    "systemd-resolved.service",
    "systemd-timesyncd.service",
];

/// Debian's units that make no sense on an image-based node, masked: apt
/// and dpkg maintenance (nothing on a node runs apt); `systemd-repart`
/// (`moho-grow-state` grows STATE; repart's wants load the loop and
/// device-mapper modules at every boot), `e2scrub` (it checks LVM
/// snapshots, a node has no LVM), `modprobe@drm` (logind's wish for a
/// graphical seat: a node is headless, and a GPU's driver still loads with
/// its hardware). Measured under software emulation, where each of them
/// cost seconds of a boot (`docs/node-os.md`).
const MASK: [&str; 7] = [
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "systemd-repart.service",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "modprobe@drm.service",
];

/// Packages' own enablements that a node does not start at boot, removed
/// where present: podman's API service (its socket, `podman.socket`, stays
/// enabled and starts it on the first request).
const NOT_AT_BOOT: [&str; 1] = ["default.target.wants/podman.service"];

/// `/etc/fstab`: STATE on `/var` (mounted by [`INIT`] before systemd, so no
/// fsck pass here: it ran there), `/tmp` in memory.
const FSTAB: &str = "# Moho node OS: the root is a read-only slot; STATE is the node's.\n\
LABEL=STATE /var ext4 rw,nosuid,nodev 0 0\n\
tmpfs /tmp tmpfs mode=1777,nosuid,nodev 0 0\n";

/// What the tree is made from.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The configuration.
    pub cfg: &'a NodeOsConfig,
    /// The cached Debian root (read only).
    pub base: &'a Path,
    /// The `update-agent` binary.
    pub agent: &'a Path,
    /// The static `boot-select` (the initramfs's `/init`).
    pub boot_select: &'a Path,
}

/// What was made besides the tree.
#[derive(Debug)]
pub struct Made {
    /// Number of packages.
    pub packages: usize,
    /// Kernel version.
    pub kernel: String,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OsBuildError {
    let path = path.to_owned();
    move |source| OsBuildError::Io { path, source }
}

fn run(tool: &'static str, cmd: &mut Command) -> Result<String, OsBuildError> {
    let out = cmd
        .output()
        .map_err(|source| OsBuildError::Spawn { tool, source })?;
    if !out.status.success() {
        return Err(OsBuildError::Tool {
            tool,
            status: out.status.to_string(),
            output: tail(&format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn write(path: &Path, mode: u32, text: &str) -> Result<(), OsBuildError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    // Never write through a file of the cached root: replace it.
    let _ = fs::remove_file(path);
    fs::write(path, text).map_err(io(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io(path))
}

fn remove(path: &Path) -> Result<(), OsBuildError> {
    match fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io(path)),
        Ok(_) => fs::remove_file(path).map_err(io(path)),
    }
}

fn link(target: &str, at: &Path) -> Result<(), OsBuildError> {
    remove(at)?;
    symlink(target, at).map_err(io(at))
}

/// Makes `work` from the inputs and puts `vmlinuz`, `initrd.img` and
/// `packages.txt` in `out`.
pub fn make(inputs: &Inputs<'_>, work: &Path, out: &Path) -> Result<Made, OsBuildError> {
    let cfg = inputs.cfg;
    remove(work)?;
    run(
        "cp",
        Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(inputs.base)
            .arg(work),
    )?;

    // What the release is made of, before /var (dpkg's database) goes.
    let packages = run(
        "dpkg-query",
        Command::new("dpkg-query")
            .arg(format!(
                "--admindir={}",
                work.join("var/lib/dpkg").display()
            ))
            .args(["-W", "-f", "${Package} ${Version}\\n"]),
    )?;
    let mut lines: Vec<&str> = packages.lines().filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    let list = lines.join("\n") + "\n";
    write(&work.join("usr/share/moho/packages.txt"), 0o644, &list)?;
    write(&out.join("packages.txt"), 0o644, &list)?;

    // STATE is mounted over /var: the image's own /var is never seen.
    let var = work.join("var");
    remove(&var)?;
    fs::create_dir_all(&var).map_err(io(&var))?;
    for t in TRIM
        .iter()
        .copied()
        .chain(cfg.remove.iter().map(String::as_str))
    {
        let p = work.join(t);
        remove(&p)?;
    }
    for t in ["usr/share/doc", "usr/share/man", "usr/share/locale"] {
        fs::create_dir_all(work.join(t)).map_err(io(&work.join(t)))?;
    }

    // /etc: nothing of the build machine, nothing one node must not share.
    remove(&work.join("etc/hostname"))?;
    write(
        &work.join("etc/hosts"),
        0o644,
        "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
    )?;
    link(
        "../run/systemd/resolve/stub-resolv.conf",
        &work.join("etc/resolv.conf"),
    )?;
    write(&work.join("etc/machine-id"), 0o444, "")?;
    let ssh = work.join("etc/ssh");
    if let Ok(entries) = fs::read_dir(&ssh) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("ssh_host_") {
                remove(&e.path())?;
            }
        }
    }
    write(&work.join("etc/fstab"), 0o644, FSTAB)?;
    write(
        &work.join("usr/lib/os-release"),
        0o644,
        &format!(
            "NAME=\"{name}\"\nPRETTY_NAME=\"{name} {v}\"\nID=moho\nID_LIKE=debian\n\
             VERSION=\"{v}\"\nVERSION_ID={v}\nVARIANT_ID={board}\n",
            name = cfg.name.replace('"', ""),
            v = cfg.version,
            board = cfg.board
        ),
    )?;
    link("../usr/lib/os-release", &work.join("etc/os-release"))?;

    // The agent and everything it needs.
    let agent_at = work.join("usr/bin/update-agent");
    remove(&agent_at)?;
    fs::copy(inputs.agent, &agent_at).map_err(io(inputs.agent))?;
    fs::set_permissions(&agent_at, fs::Permissions::from_mode(0o755)).map_err(io(&agent_at))?;
    for (name, text) in UNITS {
        write(&work.join("usr/lib/systemd/system").join(name), 0o644, text)?;
    }
    for (at, mode, text) in FILES {
        write(&work.join(at), mode, text)?;
    }
    let root_at = work.join("usr/lib/moho/root.json");
    remove(&root_at)?;
    fs::copy(&cfg.trusted_root, &root_at).map_err(io(&cfg.trusted_root))?;
    write(
        &work.join("usr/lib/moho/agent.d/60-image.toml"),
        0o644,
        &format!(
            "# Written by image-tools os build: this image's board and trusted root.\n\
             [node]\nboard = \"{}\"\n\n[repository]\nroot = \"/usr/lib/moho/root.json\"\n",
            cfg.board
        ),
    )?;
    run(
        "systemctl --root",
        Command::new("systemctl")
            .arg(format!("--root={}", work.display()))
            .arg("enable")
            .args(ENABLE),
    )?;
    for unit in MASK {
        link("/dev/null", &work.join("etc/systemd/system").join(unit))?;
    }
    for wants in NOT_AT_BOOT {
        remove(&work.join("etc/systemd/system").join(wants))?;
    }
    for user in &cfg.users {
        run(
            "useradd",
            Command::new("useradd")
                .arg("--root")
                .arg(work)
                .args(["--create-home", "--user-group", "--shell", "/bin/bash"])
                .arg(user),
        )?;
    }

    let kernel = boot(inputs, work, out)?;

    // The operator's overlays come last and may replace anything.
    for o in &cfg.overlays {
        let mut from = o.clone().into_os_string();
        from.push("/.");
        run(
            "cp (overlay)",
            Command::new("cp").arg("-a").arg(&from).arg(work),
        )?;
    }
    overlay_users_and_dirs(cfg, work)?;
    Ok(Made {
        packages: lines.len(),
        kernel,
    })
}

/// What the overlays' `sysusers.d` and `tmpfiles.d` files ask for in the
/// read-only part of a node: their system users (`/etc/passwd`, `/etc/group`)
/// and their directories under `/etc`, made now in the image, since a node
/// cannot write `/etc` (`systemd-sysusers --root`, `systemd-tmpfiles --root
/// --create --prefix=/etc`, on exactly those files). What they name under
/// `/var` is made at boot on STATE, as usual.
fn overlay_users_and_dirs(cfg: &NodeOsConfig, work: &Path) -> Result<(), OsBuildError> {
    let mut sysusers = Vec::new();
    let mut tmpfiles = Vec::new();
    for o in &cfg.overlays {
        for (dir, users) in [
            ("usr/lib/sysusers.d", true),
            ("etc/sysusers.d", true),
            ("usr/lib/tmpfiles.d", false),
            ("etc/tmpfiles.d", false),
        ] {
            let into = if users { &mut sysusers } else { &mut tmpfiles };
            let Ok(entries) = fs::read_dir(o.join(dir)) else {
                continue;
            };
            let mut names: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .filter(|n| n.to_string_lossy().ends_with(".conf"))
                .collect();
            names.sort();
            into.extend(names.into_iter().map(|n| work.join(dir).join(n)));
        }
    }
    let root = format!("--root={}", work.display());
    if !sysusers.is_empty() {
        run(
            "systemd-sysusers --root",
            Command::new("systemd-sysusers").arg(&root).args(&sysusers),
        )?;
    }
    if !tmpfiles.is_empty() {
        run(
            "systemd-tmpfiles --root",
            Command::new("systemd-tmpfiles")
                .arg(&root)
                .args(["--create", "--prefix=/etc"])
                .args(&tmpfiles),
        )?;
    }
    Ok(())
}

/// The configuration's initramfs modules and what the slot's own filesystem
/// needs: Debian's generic kernel has ext4 and erofs as modules, and ext4's
/// metadata checksums need a crc32c implementation it does not depend on.
pub fn initramfs_modules(cfg: &NodeOsConfig) -> Vec<String> {
    let fs = match cfg.fs {
        crate::cli::Filesystem::Ext4 => "ext4",
        crate::cli::Filesystem::Erofs => "erofs",
    };
    let mut modules = cfg.initramfs_modules.clone();
    for m in [fs, "crc32c_generic"] {
        if !modules.iter().any(|x| x == m) {
            modules.push(m.to_owned());
        }
    }
    modules
}

/// `/boot`: Debian's kernel, Moho's initramfs for it (initramfs-tools' own
/// is dropped), the slot's command line; copies of both in `out`.
fn boot(inputs: &Inputs<'_>, work: &Path, out: &Path) -> Result<String, OsBuildError> {
    let modules = work.join("lib/modules");
    let mut found: Vec<String> = fs::read_dir(&modules)
        .map_err(io(&modules))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let [version] = found.as_slice() else {
        return Err(OsBuildError::Kernel {
            tree: work.to_owned(),
            found,
        });
    };
    let version = version.clone();
    let bootdir = work.join("boot");
    for e in fs::read_dir(&bootdir).map_err(io(&bootdir))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("initrd.img") || name.starts_with("System.map") {
            remove(&e.path())?;
        }
    }
    for l in ["vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"] {
        remove(&work.join(l))?;
    }
    let initrd: PathBuf = bootdir.join(format!("initrd.img-{version}"));
    crate::initramfs::run(&InitramfsArgs {
        kernel_modules: modules.join(&version),
        modules: initramfs_modules(inputs.cfg),
        out: initrd.clone(),
        init: Some(inputs.boot_select.to_owned()),
        force: true,
    })?;
    write(
        &bootdir.join("cmdline"),
        0o644,
        &format!(
            "# Moho node OS: the slot kernel's own words (the selector adds root= and moho.slot=)\n\
             init=/{INIT} {}\n",
            inputs.cfg.cmdline
        ),
    )?;
    let vmlinuz = bootdir.join(format!("vmlinuz-{version}"));
    for (from, to) in [(&vmlinuz, "vmlinuz"), (&initrd, "initrd.img")] {
        let to = out.join(to);
        remove(&to)?;
        fs::copy(from, &to).map_err(io(from))?;
    }
    Ok(version)
}
