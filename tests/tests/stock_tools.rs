//! Stock GPT tools agree with us (DESIGN §2): values `update-agent` sets are
//! read back identically by `sgdisk` and `cgpt`, and values they set are
//! read identically by `update-agent slots --json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::path::Path;

use moho_e2e::{bin, make_disk, ok, run, slot_fields, slots_json};

/// The 64-bit attribute field of partition `n` as sgdisk reads it.
fn sgdisk_attrs(disk: &Path, n: u32) -> u64 {
    let info = ok(
        "sgdisk",
        [
            OsStr::new("-i"),
            OsStr::new(&n.to_string()),
            disk.as_os_str(),
        ],
    );
    let hex = info
        .lines()
        .find_map(|l| l.strip_prefix("Attribute flags: "))
        .unwrap_or_else(|| panic!("no attribute line in {info}"));
    u64::from_str_radix(hex.trim(), 16).unwrap()
}

fn cgpt_field(disk: &Path, n: u32, flag: &str) -> u64 {
    ok(
        "cgpt",
        [
            OsStr::new("show"),
            OsStr::new("-i"),
            OsStr::new(&n.to_string()),
            OsStr::new(flag),
            disk.as_os_str(),
        ],
    )
    .trim()
    .parse()
    .unwrap()
}

#[test]
fn sgdisk_and_cgpt_read_what_we_write() {
    let dir = tempfile::tempdir().unwrap();
    let disk = make_disk(dir.path(), "disk.img", "512M", "128M");
    ok(
        bin("update-agent"),
        [
            OsStr::new("--booted"),
            OsStr::new("A"),
            OsStr::new("slots"),
            OsStr::new("--disk"),
            disk.as_os_str(),
            OsStr::new("set"),
            OsStr::new("B"),
            OsStr::new("--priority"),
            OsStr::new("5"),
            OsStr::new("--tries"),
            OsStr::new("3"),
        ],
    );
    let b = sgdisk_attrs(&disk, 3);
    assert_eq!(((b >> 48) & 0xf, (b >> 52) & 0xf, (b >> 56) & 1), (5, 3, 0));
    let a = sgdisk_attrs(&disk, 2);
    assert_eq!(((a >> 48) & 0xf, (a >> 52) & 0xf, (a >> 56) & 1), (1, 0, 1));
    assert_eq!(cgpt_field(&disk, 3, "-P"), 5);
    assert_eq!(cgpt_field(&disk, 3, "-T"), 3);
    assert_eq!(cgpt_field(&disk, 3, "-S"), 0);
    assert_eq!(cgpt_field(&disk, 2, "-S"), 1);
    // Labels and types are what stock tools expect of a Flatcar-style disk.
    let p = ok("sgdisk", [OsStr::new("-p"), disk.as_os_str()]);
    for want in ["EFI-SYSTEM", "ROOT-A", "ROOT-B", "STATE"] {
        assert!(p.contains(want), "{want} missing from:\n{p}");
    }
    let verify = ok("sgdisk", [OsStr::new("--verify"), disk.as_os_str()]);
    assert!(verify.contains("No problems found"), "{verify}");
}

#[test]
fn we_read_what_sgdisk_and_cgpt_write() {
    let dir = tempfile::tempdir().unwrap();
    let disk = make_disk(dir.path(), "disk.img", "512M", "128M");
    // cgpt: B priority 7, tries 2, successful.
    ok(
        "cgpt",
        [
            OsStr::new("add"),
            OsStr::new("-i"),
            OsStr::new("3"),
            OsStr::new("-P"),
            OsStr::new("7"),
            OsStr::new("-T"),
            OsStr::new("2"),
            OsStr::new("-S"),
            OsStr::new("1"),
            disk.as_os_str(),
        ],
    );
    assert_eq!(slot_fields(&slots_json(&disk, None), "B"), (7, 2, true));
    // sgdisk: clear A's successful bit (56), set priority bit 50 (+4), and a
    // foreign bit (60) that we must keep.
    ok(
        "sgdisk",
        [
            OsStr::new("-A"),
            OsStr::new("2:clear:56"),
            OsStr::new("-A"),
            OsStr::new("2:set:50"),
            OsStr::new("-A"),
            OsStr::new("2:set:60"),
            disk.as_os_str(),
        ],
    );
    let j = slots_json(&disk, None);
    assert_eq!(slot_fields(&j, "A"), (5, 0, false));
    assert_eq!(j["next"], "B");
    // Our next write keeps sgdisk's foreign bit 60.
    ok(
        bin("update-agent"),
        [
            OsStr::new("slots"),
            OsStr::new("--disk"),
            disk.as_os_str(),
            OsStr::new("boot"),
        ],
    );
    assert_eq!((sgdisk_attrs(&disk, 2) >> 60) & 1, 1);
    assert_eq!(cgpt_field(&disk, 3, "-T"), 1, "boot used one of B's tries");
}

#[test]
fn disk_create_refuses_a_layout_that_does_not_fit_with_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        bin("image-tools"),
        [
            OsStr::new("disk"),
            OsStr::new("create"),
            OsStr::new("--out"),
            dir.path().join("small.img").as_os_str(),
            OsStr::new("--size"),
            OsStr::new("300M"),
            OsStr::new("--slot-size"),
            OsStr::new("128M"),
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 x slot 134217728"), "{err}");
    assert!(err.contains("but the disk is 314572800 bytes"), "{err}");
    assert!(
        !dir.path().join("small.img").exists(),
        "nothing left behind"
    );
    assert!(
        !dir.path().join("small.img.partial").exists(),
        "nothing left behind"
    );

    // A slot image larger than a slot is refused too, naming both sizes.
    let big = dir.path().join("big.slot");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(65 * 1024 * 1024)
        .unwrap();
    let out = run(
        bin("image-tools"),
        [
            OsStr::new("disk"),
            OsStr::new("create"),
            OsStr::new("--out"),
            dir.path().join("d.img").as_os_str(),
            OsStr::new("--size"),
            OsStr::new("512M"),
            OsStr::new("--slot-size"),
            OsStr::new("64M"),
            OsStr::new("--slot-a"),
            big.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("68157440 bytes but a slot is 67108864 bytes"),
        "{err}"
    );
}

/// The measurement of issue 14: a disk made for 512 MiB and then grown to
/// 2 GiB (an image written to a bigger disk, a grown cloud volume) takes
/// slot changes, and afterwards stock tools find both GPT copies at the
/// ends of the disk and the space after the last partition usable.
#[test]
fn a_disk_grown_after_it_was_made_takes_slot_changes_and_stock_tools_find_it_valid() {
    let dir = tempfile::tempdir().unwrap();
    let disk = make_disk(dir.path(), "disk.img", "512M", "128M");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&disk)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let before = ok("sgdisk", [OsStr::new("--verify"), disk.as_os_str()]);
    assert!(
        before.contains("doesn't reside") || before.contains("problem"),
        "{before}"
    );
    ok(
        bin("update-agent"),
        [
            OsStr::new("--booted"),
            OsStr::new("A"),
            OsStr::new("slots"),
            OsStr::new("--disk"),
            disk.as_os_str(),
            OsStr::new("set"),
            OsStr::new("B"),
            OsStr::new("--priority"),
            OsStr::new("5"),
            OsStr::new("--tries"),
            OsStr::new("3"),
        ],
    );
    let json = slots_json(&disk, Some("A"));
    assert_eq!(slot_fields(&json, "B"), (5, 3, false), "{json}");
    assert_eq!(json["gpt"], "primary valid, backup valid", "{json}");
    let verify = ok("sgdisk", [OsStr::new("--verify"), disk.as_os_str()]);
    assert!(verify.contains("No problems found"), "{verify}");
    let print = ok("sgdisk", [OsStr::new("--print"), disk.as_os_str()]);
    assert!(
        print.contains("last usable sector is 4194270"),
        "the space up to the backup array is usable:\n{print}"
    );
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
    assert!(
        all.contains("4194303           1          Sec GPT header"),
        "{all}"
    );
    assert_eq!(cgpt_field(&disk, 3, "-P"), 5);
}
