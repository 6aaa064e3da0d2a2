//! The slot lifecycle through the real CLIs, on a disk image file and on a
//! loop device: arm B, simulated boots use up its try and fall back to A,
//! mark-good sticks, and a corrupted primary GPT is read from the backup and
//! repaired by the next write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use moho_e2e::{LoopDevice, bin, make_disk, ok, require_root, run, slot_fields, slots_json};

fn agent(disk: &Path, booted: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut v: Vec<String> = Vec::new();
    if let Some(b) = booted {
        v.extend(["--booted".into(), b.into()]);
    }
    v.extend(["slots".into(), "--disk".into(), disk.display().to_string()]);
    v.extend(args.iter().map(|s| (*s).to_owned()));
    run(bin("update-agent"), v)
}

fn agent_ok(disk: &Path, booted: Option<&str>, args: &[&str]) -> String {
    let out = agent(disk, booted, args);
    assert!(
        out.status.success(),
        "update-agent {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn boot(disk: &Path) -> String {
    agent_ok(disk, None, &["boot"]).trim().to_owned()
}

fn lifecycle(disk: &Path) {
    let j = slots_json(disk, Some("A"));
    assert_eq!(j["next"], "A");
    assert_eq!(slot_fields(&j, "A"), (1, 0, true));
    assert_eq!(slot_fields(&j, "B"), (0, 0, false));
    assert_eq!(j["slots"][0]["booted"], true);

    // Arm B with one try: it boots once, then the selector falls back to A.
    agent_ok(
        disk,
        Some("A"),
        &[
            "set",
            "B",
            "--priority",
            "2",
            "--tries",
            "1",
            "--successful",
            "false",
        ],
    );
    assert_eq!(agent_ok(disk, None, &["next"]).trim(), "B");
    assert_eq!(boot(disk), "B");
    assert_eq!(slot_fields(&slots_json(disk, None), "B"), (2, 0, false));
    assert_eq!(boot(disk), "A");
    assert_eq!(boot(disk), "A");

    // While B (unblessed) is booted, A is the fallback and cannot be touched.
    let refused = agent(disk, Some("B"), &["set", "A", "--priority", "0"]);
    assert_eq!(refused.status.code(), Some(4), "refusal exit code");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not marked successful"));
    assert_eq!(slot_fields(&slots_json(disk, None), "A"), (1, 0, true));

    // Arm again, boot B, mark it good: it keeps booting.
    agent_ok(disk, Some("A"), &["set", "B", "--tries", "1"]);
    assert_eq!(boot(disk), "B");
    agent_ok(disk, Some("B"), &["mark-good"]);
    for _ in 0..3 {
        assert_eq!(boot(disk), "B");
    }
    assert_eq!(slot_fields(&slots_json(disk, None), "B"), (2, 0, true));

    // Roll back to A (successful), then forward again.
    agent_ok(disk, Some("B"), &["rollback"]);
    assert_eq!(boot(disk), "A");
}

fn corrupt_primary_then_repair(disk: &Path) {
    let before = slots_json(disk, None);
    {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(disk)
            .unwrap();
        f.seek(SeekFrom::Start(512)).unwrap();
        f.write_all(&[0xEE; 92]).unwrap();
        f.sync_all().unwrap();
    }
    let damaged = slots_json(disk, None);
    assert!(
        damaged["gpt"].as_str().unwrap().contains("primary damaged"),
        "{}",
        damaged["gpt"]
    );
    assert_eq!(
        damaged["slots"], before["slots"],
        "backup copy holds the same table"
    );
    // Any write repairs the primary.
    agent_ok(disk, Some("A"), &["mark-good"]);
    let repaired = slots_json(disk, None);
    assert_eq!(repaired["gpt"], "primary valid, backup valid");
    // And stock tools agree the table is sound.
    let verify = ok(
        "sgdisk",
        [std::ffi::OsStr::new("--verify"), disk.as_os_str()],
    );
    assert!(verify.contains("No problems found"), "{verify}");
}

#[test]
fn lifecycle_on_a_disk_image_file() {
    let dir = tempfile::tempdir().unwrap();
    let disk = make_disk(dir.path(), "disk.img", "512M", "128M");
    lifecycle(&disk);
    corrupt_primary_then_repair(&disk);
}

#[test]
fn lifecycle_on_a_loop_device_with_blkpg_partitions() {
    require_root("the loop-device lifecycle test");
    let dir = tempfile::tempdir().unwrap();
    let file = make_disk(dir.path(), "disk.img", "512M", "128M");
    let slot_a_image = std::fs::read(dir.path().join("disk.img.slot-a")).unwrap();
    let lo = LoopDevice::attach(&file);

    // The first write brings the kernel's partition list up to date, by
    // BLKPG when this kernel does not parse GPT itself.
    agent_ok(&lo.path, Some("A"), &["mark-good"]);
    for m in 1..=4 {
        assert!(
            lo.partition(m).exists(),
            "{} missing",
            lo.partition(m).display()
        );
    }
    let size = ok(
        "blockdev",
        [
            std::ffi::OsStr::new("--getsize64"),
            lo.partition(2).as_os_str(),
        ],
    );
    assert_eq!(size.trim(), (128 * 1024 * 1024).to_string());
    // Slot A's partition node shows exactly the image that was copied in.
    let mut head = vec![0u8; slot_a_image.len()];
    std::fs::File::open(lo.partition(2))
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert!(
        head == slot_a_image,
        "ROOT-A partition does not start with the slot image"
    );

    lifecycle(&lo.path);
    corrupt_primary_then_repair(&lo.path);
    assert!(lo.partition(4).exists(), "partitions survive the repair");
}
