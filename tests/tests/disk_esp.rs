//! `image-tools disk create` with a bootable ESP (DESIGN §2, §4): systemd-boot
//! as the removable-media loader, one loader entry for the boot selector,
//! and `--format qcow2|vhd|vmdk`. What is checked is what firmware and qemu
//! read: the FAT files (through mtools) and the image headers (through qemu-img).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use moho_e2e::{bin, ok, random_bytes, slot_fields, slots_json};

const ESP_OFFSET: u64 = 1024 * 1024;

struct BootFiles {
    systemd_boot: PathBuf,
    kernel: PathBuf,
    initramfs: PathBuf,
}

fn boot_files(dir: &Path) -> BootFiles {
    let f = |name: &str, len: usize| {
        let p = dir.join(name);
        let mut bytes = random_bytes(len);
        bytes[0] = u8::try_from(name.len()).unwrap(); // distinct contents per file
        std::fs::write(&p, bytes).unwrap();
        p
    };
    BootFiles {
        systemd_boot: f("systemd-bootx64.efi", 90_000),
        kernel: f("vmlinuz", 1_500_000),
        initramfs: f("initrd.img", 700_000),
    }
}

fn create(dir: &Path, out: &Path, files: &BootFiles, extra: &[&str]) -> std::process::Output {
    let slot = dir.join("slot.img");
    std::fs::write(&slot, random_bytes(2 * 1024 * 1024)).unwrap();
    let mut args: Vec<OsString> = [
        "disk",
        "create",
        "--size",
        "200M",
        "--slot-size",
        "48M",
        "--boot-cmdline",
        "console=ttyS0 moho.wait=5",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    for (flag, p) in [
        ("--out", out),
        ("--slot-a", slot.as_path()),
        ("--systemd-boot", files.systemd_boot.as_path()),
        ("--boot-kernel", files.kernel.as_path()),
        ("--boot-initramfs", files.initramfs.as_path()),
    ] {
        args.push(flag.into());
        args.push(p.into());
    }
    args.extend(extra.iter().map(OsString::from));
    moho_e2e::run(bin("image-tools"), args)
}

/// A file of the FAT filesystem at the ESP's offset, read with mtools.
fn esp_file(disk: &Path, path: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f");
    let image = format!("{}@@{ESP_OFFSET}", disk.display());
    ok(
        "mcopy",
        [
            OsStr::new("-i"),
            OsStr::new(&image),
            OsStr::new(&format!("::{path}")),
            out.as_os_str(),
        ],
    );
    std::fs::read(out).unwrap()
}

#[test]
fn the_esp_holds_systemd_boot_and_one_entry_for_the_selector() {
    let dir = tempfile::tempdir().unwrap();
    let files = boot_files(dir.path());
    let disk = dir.path().join("disk.img");
    let out = create(dir.path(), &disk, &files, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("EFI-SYSTEM holds systemd-boot"), "{report}");

    assert_eq!(
        esp_file(&disk, "/EFI/BOOT/BOOTX64.EFI"),
        std::fs::read(&files.systemd_boot).unwrap()
    );
    assert_eq!(
        esp_file(&disk, "/moho/vmlinuz"),
        std::fs::read(&files.kernel).unwrap()
    );
    assert_eq!(
        esp_file(&disk, "/moho/initrd.img"),
        std::fs::read(&files.initramfs).unwrap()
    );
    assert_eq!(
        String::from_utf8(esp_file(&disk, "/loader/loader.conf")).unwrap(),
        "default moho.conf\ntimeout 0\neditor no\n"
    );
    assert_eq!(
        String::from_utf8(esp_file(&disk, "/loader/entries/moho.conf")).unwrap(),
        "title Moho boot selector\nlinux /moho/vmlinuz\ninitrd /moho/initrd.img\n\
         options console=ttyS0 moho.wait=5\n"
    );
    // The slots are as `disk create` always leaves them.
    let json = slots_json(&disk, None);
    assert_eq!(slot_fields(&json, "A"), (1, 0, true));
    assert_eq!(slot_fields(&json, "B"), (0, 0, false));
}

#[test]
fn qcow2_output_is_the_same_disk_in_qemus_format() {
    converted_output_is_the_same_disk("qcow2", "qcow2");
}

#[test]
fn vhd_and_vmdk_outputs_are_the_same_disk_for_azure_and_vmware() {
    // qemu-img names a VHD "vpc"; fixed with force_size keeps the exact size Azure requires.
    converted_output_is_the_same_disk("vhd", "vpc");
    converted_output_is_the_same_disk("vmdk", "vmdk");
}

/// `--format FORMAT` writes a file qemu-img reads as `qemu_name` with the disk's size, leaves no
/// temporary file, and converts back to the same Moho disk.
fn converted_output_is_the_same_disk(format: &str, qemu_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let files = boot_files(dir.path());
    let disk = dir.path().join(format!("disk.{format}"));
    let out = create(dir.path(), &disk, &files, &["--format", format]);
    assert!(
        out.status.success(),
        "{format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(", {format}")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A fixed VHD has its only header at the end, so qemu-img does not probe it: the format
    // is named, and qemu-img refuses the file if it is not one.
    let info: serde_json::Value = serde_json::from_str(&ok(
        "qemu-img",
        [
            OsStr::new("info"),
            OsStr::new("--output=json"),
            OsStr::new("-f"),
            OsStr::new(qemu_name),
            disk.as_os_str(),
        ],
    ))
    .unwrap();
    assert_eq!(info["format"], qemu_name, "{info}");
    assert_eq!(info["virtual-size"], 200 * 1024 * 1024, "{format}: {info}");
    if format == "vhd" {
        // What Azure checks: the raw disk, then a 512-byte "conectix" footer.
        let bytes = std::fs::read(&disk).unwrap();
        assert_eq!(bytes.len(), 200 * 1024 * 1024 + 512);
        assert_eq!(&bytes[bytes.len() - 512..][..8], b"conectix");
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("partial")),
        "temporary files left: {names:?}"
    );
    // Back to raw, it is a Moho disk whose ESP holds the loader.
    let raw = dir.path().join("back.img");
    ok(
        "qemu-img",
        [
            OsStr::new("convert"),
            OsStr::new("-f"),
            OsStr::new(qemu_name),
            OsStr::new("-O"),
            OsStr::new("raw"),
            disk.as_os_str(),
            raw.as_os_str(),
        ],
    );
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 200 * 1024 * 1024);
    assert_eq!(slot_fields(&slots_json(&raw, None), "A"), (1, 0, true));
    assert_eq!(
        esp_file(&raw, "/moho/vmlinuz"),
        std::fs::read(&files.kernel).unwrap()
    );
}

#[test]
fn a_missing_loader_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = boot_files(dir.path());
    files.systemd_boot = dir.path().join("no-such.efi");
    let disk = dir.path().join("disk.img");
    let out = create(dir.path(), &disk, &files, &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such.efi: systemd-boot EFI binary (Debian package systemd-boot-efi)"),
        "{err}"
    );
    assert!(!disk.exists());
    assert!(!dir.path().join("disk.img.partial").exists());

    // --boot-kernel without --boot-initramfs is a usage error.
    let out = moho_e2e::run(
        bin("image-tools"),
        [
            OsStr::new("disk"),
            OsStr::new("create"),
            OsStr::new("--out"),
            disk.as_os_str(),
            OsStr::new("--size"),
            OsStr::new("200M"),
            OsStr::new("--slot-size"),
            OsStr::new("48M"),
            OsStr::new("--boot-kernel"),
            files.kernel.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--boot-initramfs"));
}

#[test]
fn qcow2_is_refused_for_a_block_device() {
    moho_e2e::require_root("writing a loop device");
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("backing.img");
    std::fs::File::create(&backing)
        .unwrap()
        .set_len(200 * 1024 * 1024)
        .unwrap();
    let lo = moho_e2e::LoopDevice::attach(&backing);
    let files = boot_files(dir.path());
    let out = create(dir.path(), &lo.path, &files, &["--format", "qcow2"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--format qcow2 makes an image file; a block device is always written raw"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
