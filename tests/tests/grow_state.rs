//! `update-agent grow-state` on a loop device (DESIGN §2, issue 14): a disk
//! image written to a disk four times its size gets `STATE` grown to the end
//! (partition, then its mounted ext4 online), the slots untouched, stock
//! tools find the table valid, data on `STATE` survives, and a growth cut
//! between the GPT and the filesystem, or halfway through the filesystem, is
//! finished by the next run (the next boot). The online ext4 growth needs
//! CAP_SYS_RESOURCE, which some containers drop; without it this test checks
//! the GPT half and the refusal, and the qemu boot (`tests/vm.rs`) the rest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use moho_e2e::{LoopDevice, bin, make_disk, ok, require_root, run, slots_json};

const MIB: u64 = 1024 * 1024;

fn size_of(dev: &Path) -> u64 {
    ok("blockdev", [OsStr::new("--getsize64"), dev.as_os_str()])
        .trim()
        .parse()
        .unwrap()
}

/// The filesystem's size in bytes (block count × block size), from its
/// superblock.
fn fs_bytes(dev: &Path) -> u64 {
    let out = ok("dumpe2fs", [OsStr::new("-h"), dev.as_os_str()]);
    let field = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .trim()
            .parse()
            .unwrap()
    };
    field("Block count:") * field("Block size:")
}

/// Unmounts, checks the filesystem read-only (a clean, consistent ext4 is
/// what the next boot mounts), and mounts it again.
fn fsck_between_boots(dev: &Path, mnt: &Path) {
    ok("umount", [mnt.as_os_str()]);
    let out = run("e2fsck", [OsStr::new("-fn"), dev.as_os_str()]);
    assert!(
        out.status.success(),
        "e2fsck after the cut: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ok("mount", [dev.as_os_str(), mnt.as_os_str()]);
}

fn grow_state(disk: &Path, path_env: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(bin("update-agent"));
    cmd.args([
        OsStr::new("grow-state"),
        OsStr::new("--disk"),
        disk.as_os_str(),
    ]);
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    cmd.output().unwrap()
}

fn table_is_valid(disk: &Path) {
    let verify = ok("sgdisk", [OsStr::new("--verify"), disk.as_os_str()]);
    assert!(verify.contains("No problems found"), "{verify}");
    let cgpt = run(
        "cgpt",
        [OsStr::new("show"), OsStr::new("-v"), disk.as_os_str()],
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&cgpt.stdout),
        String::from_utf8_lossy(&cgpt.stderr)
    );
    assert!(
        cgpt.status.success() && !all.contains("INVALID") && !all.contains("WARNING"),
        "{all}"
    );
}

/// STATE's size once it ends at the last usable LBA of a `disk`-byte disk
/// (the backup array and header take the last 33 sectors).
fn expected_state_bytes(state: &Path, disk: u64) -> u64 {
    let name = state.file_name().unwrap().to_str().unwrap();
    let start: u64 = std::fs::read_to_string(format!("/sys/class/block/{name}/start"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (disk / 512 - 34 + 1 - start) * 512
}

/// Attaches `file`, adds its partitions (this kernel does not parse GPT
/// itself) and mounts STATE on `mnt`.
fn attach_and_mount(file: &Path, mnt: &Path) -> LoopDevice {
    let lo = LoopDevice::attach(file);
    let _ = run("partx", [OsStr::new("-a"), lo.path.as_os_str()]);
    let state = lo.partition(4);
    assert!(state.exists(), "{} missing after partx -a", state.display());
    std::fs::create_dir_all(mnt).unwrap();
    ok("mount", [state.as_os_str(), mnt.as_os_str()]);
    lo
}

fn grow_file(file: &Path, to: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .unwrap()
        .set_len(to)
        .unwrap();
}

struct Mounted<'a> {
    mnt: &'a Path,
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = run("umount", [self.mnt.as_os_str()]);
    }
}

/// Whether this process may resize a mounted ext4 (the kernel asks for
/// CAP_SYS_RESOURCE; some containers drop it, a booted node has it).
fn may_resize_online() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(eff, 16).unwrap() & (1 << 24) != 0
}

#[test]
fn state_grows_to_fill_a_grown_disk_and_a_cut_growth_is_finished_by_the_next_run() {
    require_root("growing STATE on a loop device");
    let dir = tempfile::tempdir().unwrap();
    let file = make_disk(dir.path(), "disk.img", "256M", "64M");
    let slots_before = slots_json(&file, Some("A"))["slots"].clone();
    grow_file(&file, 1024 * MIB);
    // An image file has no mounted STATE: refused before anything is written.
    let refused = grow_state(&file, None);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not a block device"),
        "{refused:?}"
    );
    let untouched = ok("sgdisk", [OsStr::new("--verify"), file.as_os_str()]);
    assert!(!untouched.contains("No problems found"), "{untouched}");

    let mnt = dir.path().join("var");
    let lo = attach_and_mount(&file, &mnt);
    let _mounted = Mounted { mnt: &mnt };
    let state = lo.partition(4);
    let old_size = size_of(&state);
    assert!(old_size < 128 * MIB, "{old_size}");
    let old_fs = fs_bytes(&state);
    let payload = moho_e2e::random_bytes(5 * 1024 * 1024 + 3);
    std::fs::write(mnt.join("kept"), &payload).unwrap();

    // A cut between the two steps: the GPT commit done (the mounted
    // partition resized in place in the kernel), the filesystem step never
    // ran (here resize2fs is missing; a power cut at that moment looks the
    // same): a valid table, a consistent filesystem of the old size, data kept.
    let cut = grow_state(&lo.path, Some("/nonexistent"));
    assert!(!cut.status.success(), "{cut:?}");
    let err = String::from_utf8_lossy(&cut.stderr);
    assert!(err.contains("cannot run resize2fs"), "{err}");
    table_is_valid(&lo.path);
    let grown = size_of(&state);
    assert_eq!(grown, expected_state_bytes(&state, 1024 * MIB));
    assert!(grown > 700 * MIB, "{grown}");
    assert_eq!(fs_bytes(&state), old_fs, "the filesystem is not grown yet");
    assert_eq!(std::fs::read(mnt.join("kept")).unwrap(), payload);
    fsck_between_boots(&state, &mnt);
    assert_eq!(slots_json(&lo.path, Some("A"))["slots"], slots_before);

    if !may_resize_online() {
        // The GPT half is all this container allows; the next run writes
        // nothing more and says why the filesystem did not grow. The online
        // growth itself is checked in the qemu boot (tests/vm.rs).
        let denied = grow_state(&lo.path, None);
        assert!(!denied.status.success(), "{denied:?}");
        let err = String::from_utf8_lossy(&denied.stderr);
        assert!(
            err.contains("resize2fs") && err.contains("ermission"),
            "{err}"
        );
        assert_eq!(size_of(&state), grown);
        assert_eq!(fs_bytes(&state), old_fs);
        table_is_valid(&lo.path);
        eprintln!(
            "NOTE: no CAP_SYS_RESOURCE here: the online ext4 growth was not run on the loop \
             device (the qemu test runs it)"
        );
        return;
    }

    // A cut halfway through the online growth (the kernel grows in whole
    // groups through the journal, so a cut leaves such an intermediate size).
    let half = (old_size + grown) / 2 / (4 * MIB) * (4 * MIB);
    ok(
        "resize2fs",
        [state.as_os_str(), OsStr::new(&format!("{}K", half / 1024))],
    );
    assert_eq!(fs_bytes(&state), half);
    fsck_between_boots(&state, &mnt);

    // The next boot finishes it.
    let done = grow_state(&lo.path, None);
    assert!(done.status.success(), "{done:?}");
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(said.contains("already fills the disk"), "{said}");
    let fs = fs_bytes(&state);
    assert!(
        fs <= grown && grown - fs < 4 * MIB,
        "filesystem {fs} bytes on a {grown}-byte partition"
    );
    let df = ok(
        "df",
        [
            OsStr::new("-B1"),
            OsStr::new("--output=size"),
            mnt.as_os_str(),
        ],
    );
    let df: u64 = df.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(df > 600 * MIB, "df says {df}");
    assert_eq!(std::fs::read(mnt.join("kept")).unwrap(), payload);
    table_is_valid(&lo.path);
    assert_eq!(slots_json(&lo.path, Some("A"))["slots"], slots_before);
    fsck_between_boots(&state, &mnt);
}

#[test]
fn a_disk_exactly_as_made_is_left_as_it_is_and_the_growth_succeeds() {
    // The disk as `disk create` (and `os build --disk`) made it, written to
    // a disk of its own size: STATE already fills it. The first boot's
    // grow-state must succeed and write nothing (it used to fail:
    // resize2fs rounded the partition down to a page and refused to
    // shrink the mounted filesystem).
    require_root("growing STATE on a loop device");
    let dir = tempfile::tempdir().unwrap();
    let file = make_disk(dir.path(), "disk.img", "256M", "64M");
    let slots_before = slots_json(&file, Some("A"))["slots"].clone();
    let mnt = dir.path().join("var");
    let lo = attach_and_mount(&file, &mnt);
    let _mounted = Mounted { mnt: &mnt };
    let state = lo.partition(4);
    let (size, fs) = (size_of(&state), fs_bytes(&state));
    let table = std::fs::read(&file).unwrap()[..34 * 512].to_vec();
    for run in ["first boot", "next boot"] {
        let out = grow_state(&lo.path, None);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{run}: {out:?}");
        assert!(
            said.contains("already fills the disk") && said.contains("already fills its partition"),
            "{run}: {said}"
        );
    }
    assert_eq!(size_of(&state), size);
    assert_eq!(fs_bytes(&state), fs);
    assert_eq!(
        std::fs::read(&file).unwrap()[..34 * 512],
        table[..],
        "the primary GPT is unchanged"
    );
    table_is_valid(&lo.path);
    assert_eq!(slots_json(&lo.path, Some("A"))["slots"], slots_before);
}
