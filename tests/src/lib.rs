//! Shared helpers for Moho's end-to-end tests: finding (and building) the
//! Moho binaries, running commands with readable failures, disk images,
//! loop devices that clean up after themselves, qemu VMs ([`vm`]), a
//! private D-Bus with a fake logind for daemon tests ([`dbus_env`]), and the
//! real update server on loopback HTTP ([`local_server`]), nginx over a
//! directory ([`static_server`]) and python-tuf as an independent TUF client
//! ([`python_tuf`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod dbus_env;
pub mod fleet;
pub mod https_server;
pub mod local_server;
pub mod python_tuf;
pub mod static_server;
pub mod vm;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The directory holding this profile's binaries (`target/debug`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // A test is target/<profile>/deps/<test>-<hash>; a program of this
    // crate (the demo) is target/<profile>/<name>.
    let dir = exe.parent().expect("target/<profile>");
    if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>").to_owned()
    } else {
        dir.to_owned()
    }
}

/// The path of a workspace binary, built (once per test process) so that
/// the test never runs a stale one.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = bin_dir().ends_with("release");
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "update-agent",
            "-p",
            "image-tools",
            "-p",
            "update-server",
            "-p",
            "moho-loadgen",
            "-p",
            "moho-admin",
            "--bins",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .expect("running cargo build for the Moho binaries");
        assert!(status.success(), "cargo build of the Moho binaries failed");
    });
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// Runs `program args...` and returns its output, whatever its status.
pub fn run<I, S>(program: impl AsRef<OsStr>, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref();
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    Command::new(program)
        .args(&args)
        .env_remove("MOHO_BOOTED_SLOT")
        .env_remove("MOHO_DISK")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.to_string_lossy()))
}

/// Runs `cmd` with a stdout whose reader has already gone away, as after
/// `| head -1` once `head` has its line: the first write fails with EPIPE.
pub fn with_closed_stdout(cmd: &mut Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    cmd.stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Asserts that a command run by [`with_closed_stdout`] ended quietly:
/// success, no panic, no complaint about the pipe.
pub fn assert_quiet_end(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{what} | head -1: {} with stderr:\n{stderr}",
        out.status
    );
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok<I, S>(program: impl AsRef<OsStr>, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = program.as_ref().to_owned();
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = run(&program, &args);
    assert!(
        out.status.success(),
        "{} {:?} failed ({}):\nstdout: {}\nstderr: {}",
        program.to_string_lossy(),
        args,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Panics unless running as root (loop devices and BLKPG need it).
pub fn require_root(what: &str) {
    assert!(
        nix_geteuid() == 0,
        "{what} needs root (loop devices, BLKPG); run the suite as root (scripts/test.sh)"
    );
}

fn nix_geteuid() -> u32 {
    // `id -u` keeps this crate free of unsafe and of a libc dependency.
    ok("id", ["-u"]).trim().parse().unwrap()
}

/// `image-tools disk create` into `dir/name`, with a small random slot image.
pub fn make_disk(dir: &Path, name: &str, size: &str, slot_size: &str) -> PathBuf {
    let image = dir.join(format!("{name}.slot-a"));
    std::fs::write(&image, random_bytes(3 * 1024 * 1024 + 17)).unwrap();
    let disk = dir.join(name);
    ok(
        bin("image-tools"),
        [
            OsStr::new("disk"),
            OsStr::new("create"),
            OsStr::new("--out"),
            disk.as_os_str(),
            OsStr::new("--size"),
            OsStr::new(size),
            OsStr::new("--slot-size"),
            OsStr::new(slot_size),
            OsStr::new("--slot-a"),
            image.as_os_str(),
        ],
    );
    disk
}

/// Pseudo-random bytes (xorshift; no need for a crypto RNG here).
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24).to_le_bytes()[0]
        })
        .collect()
}

/// A loop device over a file, detached on drop.
#[derive(Debug)]
pub struct LoopDevice {
    /// `/dev/loopN`.
    pub path: PathBuf,
}

impl LoopDevice {
    /// Attaches `file` (with partition scanning requested, which this
    /// machine's kernel may ignore for GPT).
    pub fn attach(file: &Path) -> Self {
        let out = ok(
            "losetup",
            [
                OsStr::new("--find"),
                OsStr::new("--show"),
                OsStr::new("--partscan"),
                file.as_os_str(),
            ],
        );
        Self {
            path: PathBuf::from(out.trim()),
        }
    }

    /// `/dev/loopNpM`.
    pub fn partition(&self, m: u32) -> PathBuf {
        PathBuf::from(format!("{}p{m}", self.path.display()))
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = run("losetup", [OsStr::new("-d"), self.path.as_os_str()]);
    }
}

/// The agent's `slots --json` for `disk`.
pub fn slots_json(disk: &Path, booted: Option<&str>) -> serde_json::Value {
    let mut args: Vec<&OsStr> = Vec::new();
    if let Some(b) = booted {
        args.extend([OsStr::new("--booted"), OsStr::new(b)]);
    }
    args.extend([
        OsStr::new("slots"),
        OsStr::new("--disk"),
        disk.as_os_str(),
        OsStr::new("--json"),
    ]);
    serde_json::from_str(&ok(bin("update-agent"), args)).unwrap()
}

/// `(priority, tries, successful)` of slot `name` in a `slots --json` value.
pub fn slot_fields(json: &serde_json::Value, name: &str) -> (u64, u64, bool) {
    let s = json["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no slot {name} in {json}"));
    (
        s["priority"].as_u64().unwrap(),
        s["tries"].as_u64().unwrap(),
        s["successful"].as_bool().unwrap(),
    )
}
