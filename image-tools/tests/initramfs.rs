//! `image-tools initramfs` as the kernel will read it: the archive is
//! unpacked with a newc reader and checked for `/init`, `/dev/console`, the
//! modules (decompressed) and their load order; bad input is refused with
//! exit code 3 and nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use common::{ok, run};

/// A minimal 64-bit ELF with no program interpreter (a static program as
/// far as the check is concerned), padded to `len`.
fn static_elf(len: usize) -> Vec<u8> {
    let mut e = vec![0u8; len.max(64)];
    e[..4].copy_from_slice(b"\x7fELF");
    e[4] = 2;
    e[5] = 1;
    e[32..40].copy_from_slice(&64u64.to_le_bytes());
    e[54..56].copy_from_slice(&56u16.to_le_bytes());
    e
}

/// `dir/lib/modules/6.1.0-test` with three modules, one xz-compressed.
fn modules_tree(dir: &Path) -> std::path::PathBuf {
    let m = dir.join("lib/modules/6.1.0-test");
    fs::create_dir_all(m.join("kernel/drivers")).unwrap();
    fs::write(m.join("kernel/drivers/base.ko"), b"base module").unwrap();
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut &b"middle module"[..], &mut xz).unwrap();
    fs::write(m.join("kernel/drivers/middle.ko.xz"), xz).unwrap();
    fs::write(m.join("kernel/drivers/top-disk.ko"), b"top module").unwrap();
    fs::write(m.join("kernel/drivers/unused.ko"), b"unused").unwrap();
    fs::write(
        m.join("modules.dep"),
        "kernel/drivers/base.ko:\n\
         kernel/drivers/middle.ko.xz: kernel/drivers/base.ko\n\
         kernel/drivers/top-disk.ko: kernel/drivers/middle.ko.xz kernel/drivers/base.ko\n\
         kernel/drivers/unused.ko:\n",
    )
    .unwrap();
    fs::write(m.join("modules.builtin"), "kernel/fs/ext4/ext4.ko\n").unwrap();
    m
}

/// One archive member: mode, content, device numbers.
type Member = (u32, Vec<u8>, (u32, u32));

/// Every member by name.
fn unpack(archive: &Path) -> BTreeMap<String, Member> {
    let mut gz = flate2::read::GzDecoder::new(fs::File::open(archive).unwrap());
    let mut raw = Vec::new();
    gz.read_to_end(&mut raw).unwrap();
    let mut members = BTreeMap::new();
    let mut rest: &[u8] = &raw;
    loop {
        let mut reader = cpio::newc::Reader::new(rest).unwrap();
        if reader.entry().is_trailer() {
            break;
        }
        let name = reader.entry().name().to_owned();
        let mode = reader.entry().mode();
        let rdev = (reader.entry().rdev_major(), reader.entry().rdev_minor());
        assert_eq!(
            (reader.entry().uid(), reader.entry().mtime()),
            (0, 0),
            "{name}"
        );
        let mut content = Vec::new();
        reader.read_to_end(&mut content).unwrap();
        members.insert(name, (mode, content, rdev));
        rest = reader.finish().unwrap();
    }
    members
}

#[test]
fn the_archive_holds_init_the_console_and_the_modules_in_load_order() {
    let dir = tempfile::tempdir().unwrap();
    let modules = modules_tree(dir.path());
    let init = dir.path().join("boot-select");
    fs::write(&init, static_elf(5000)).unwrap();
    let out = dir.path().join("initrd.img");
    let report = ok(&[
        "initramfs",
        "--kernel-modules",
        modules.to_str().unwrap(),
        "--modules",
        "top_disk,ext4",
        "--init",
        init.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        report.contains("3 modules for kernel 6.1.0-test"),
        "{report}"
    );
    assert!(report.contains("built into the kernel: ext4"), "{report}");

    let m = unpack(&out);
    assert_eq!(m["init"].0, 0o100_755);
    assert_eq!(m["init"].1, static_elf(5000));
    assert_eq!(
        (m["dev/console"].0, m["dev/console"].2),
        (0o020_600, (5, 1))
    );
    for d in ["dev", "proc", "sys", "run", "sysroot"] {
        assert_eq!(m[d].0, 0o040_755, "{d}");
    }
    let base = "lib/modules/6.1.0-test/kernel/drivers";
    assert_eq!(
        m[&format!("{base}/middle.ko")].1,
        b"middle module",
        "decompressed"
    );
    assert!(!m.contains_key(&format!("{base}/unused.ko")));
    assert_eq!(
        String::from_utf8(m["lib/moho/modules.load"].1.clone()).unwrap(),
        format!("/{base}/base.ko\n/{base}/middle.ko\n/{base}/top-disk.ko\n")
    );

    // The same inputs give the same bytes.
    let again = dir.path().join("again.img");
    ok(&[
        "initramfs",
        "--kernel-modules",
        modules.to_str().unwrap(),
        "--modules",
        "top_disk,ext4",
        "--init",
        init.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(fs::read(&out).unwrap(), fs::read(&again).unwrap());
}

#[test]
fn a_dynamic_init_or_an_unknown_module_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let modules = modules_tree(dir.path());
    let out = dir.path().join("initrd.img");
    let args = |init: &str, module: &str| {
        run(&[
            "initramfs",
            "--kernel-modules",
            modules.to_str().unwrap(),
            "--modules",
            module,
            "--init",
            init,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // /bin/sh is dynamically linked on Debian.
    let r = args("/bin/sh", "base");
    assert_eq!(r.status.code(), Some(3));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("/bin/sh: dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)"),
        "{err}"
    );
    let init = dir.path().join("boot-select");
    fs::write(&init, static_elf(100)).unwrap();
    let r = args(init.to_str().unwrap(), "base,nvme");
    assert_eq!(r.status.code(), Some(3));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("no module \"nvme\" in modules.dep"), "{err}");
    assert!(!out.exists());
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
