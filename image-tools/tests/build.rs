//! `image-tools build`: reproducible slot images (ext4 and erofs), their
//! sidecars, and every refusal leaving nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: panics are failures

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use moho_release::ChunkIndex;

fn build(tree: &Path, out: &Path, fs_type: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "build",
        "--rootfs",
        s(tree),
        "--version",
        "1.2.3",
        "--board",
        BOARD,
        "--out",
        s(out),
        "--fs",
        fs_type,
        "--source-date-epoch",
        EPOCH,
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// Reads every file of the tree (atime) and changes inode metadata (ctime),
/// as checking out or copying a tree would.
fn disturb(tree: &Path) {
    for f in ["etc/hostname", "usr/bin/busybox", "boot/vmlinuz-6.1.0-moho"] {
        let p = tree.join(f);
        let _ = fs::read(&p).unwrap();
        let perm = fs::metadata(&p).unwrap().permissions();
        fs::set_permissions(&p, perm).unwrap();
    }
    let status = Command::new("touch")
        .args(["-a", "-d", "2001-02-03"])
        .arg(tree.join("etc/hostname"))
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_same_tree_and_epoch_give_the_same_bytes() {
    for fs_type in ["ext4", "erofs"] {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        make_tree(&tree);
        let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
        build(&tree, &a, fs_type, &[]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        disturb(&tree);
        build(&tree, &b, fs_type, &[]);
        assert!(
            fs::read(&a).unwrap() == fs::read(&b).unwrap(),
            "{fs_type}: images differ"
        );
        assert_eq!(
            fs::read(format!("{}.chunks", a.display())).unwrap(),
            fs::read(format!("{}.chunks", b.display())).unwrap()
        );
        // Another epoch is another image.
        let c = dir.path().join("c.img");
        ok(&[
            "build",
            "--rootfs",
            s(&tree),
            "--version",
            "1.2.3",
            "--board",
            BOARD,
            "--out",
            s(&c),
            "--fs",
            fs_type,
            "--source-date-epoch",
            "1700000001",
        ]);
        assert!(
            fs::read(&a).unwrap() != fs::read(&c).unwrap(),
            "{fs_type}: the epoch is ignored"
        );
    }
}

/// Copies `from` to `to` creating entries in reverse name order (so that
/// directory order, inode numbers and times all differ from the original),
/// keeping modes, symbolic links and hard links.
fn copy_reversed(from: &Path, to: &Path, links: &mut HashMap<(u64, u64), PathBuf>) {
    fs::create_dir(to).unwrap();
    let mut entries: Vec<_> = fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries.reverse();
    for src in entries {
        let dest = to.join(src.file_name().unwrap());
        let meta = fs::symlink_metadata(&src).unwrap();
        if meta.is_dir() {
            copy_reversed(&src, &dest, links);
        } else if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dest).unwrap();
        } else if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
            fs::hard_link(first, &dest).unwrap();
        } else {
            fs::copy(&src, &dest).unwrap();
            links.insert((meta.dev(), meta.ino()), dest.clone());
        }
        if !meta.file_type().is_symlink() {
            fs::set_permissions(&dest, meta.permissions()).unwrap();
        }
    }
}

#[test]
fn a_copy_of_the_tree_made_in_another_order_gives_the_same_bytes() {
    for fs_type in ["ext4", "erofs"] {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        make_tree(&tree);
        let copy = dir.path().join("copy");
        copy_reversed(&tree, &copy, &mut HashMap::new());
        let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
        build(&tree, &a, fs_type, &[]);
        build(&copy, &b, fs_type, &[]);
        assert!(
            fs::read(&a).unwrap() == fs::read(&b).unwrap(),
            "{fs_type}: images differ"
        );
    }
}

#[test]
fn ext4_images_are_clean_and_carry_the_epoch_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let img = dir.path().join("root.img");
    build(&tree, &img, "ext4", &["--size", "64MiB"]);
    assert_eq!(fs::metadata(&img).unwrap().len(), 64 << 20);
    let fsck = Command::new("e2fsck")
        .args(["-fn"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "e2fsck: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    for path in ["/etc/hostname", "/usr/bin/busybox", "/", "/boot"] {
        let stat = Command::new("debugfs")
            .args(["-R", &format!("stat {path}")])
            .arg(&img)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&stat.stdout);
        for field in ["ctime", "atime", "mtime", "crtime"] {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{field}:")))
                .unwrap();
            assert!(
                line.contains("0x6553f100:00000000"),
                "{path} {field}: {line}"
            );
        }
    }
    let dump = Command::new("debugfs")
        .args(["-R", "cat /etc/os-release"])
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&dump.stdout),
        "ID=moho\nVERSION_ID=1.0.0\n"
    );
}

#[test]
fn sidecars_describe_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let img = dir.path().join("root.img");
    build(&tree, &img, "erofs", &["--chunk-size", "64KiB"]);
    let bytes = fs::read(&img).unwrap();
    let index = ChunkIndex::parse(&fs::read(dir.path().join("root.img.chunks")).unwrap()).unwrap();
    assert_eq!(index, ChunkIndex::build(&bytes[..], 64 << 10).unwrap());
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("root.img.release.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["version"], "1.2.3");
    assert_eq!(manifest["board"], BOARD);
    assert_eq!(manifest["filesystem"], "erofs");
    assert_eq!(manifest["image_length"], bytes.len());
    assert_eq!(manifest["image_sha256"], index.image_sha256().to_string());
    let fsck = Command::new("fsck.erofs").arg(&img).output().unwrap();
    assert!(
        fsck.status.success(),
        "fsck.erofs: {}",
        String::from_utf8_lossy(&fsck.stderr)
    );
}

#[test]
fn refusals_name_the_problem_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let no_kernel = dir.path().join("nokernel");
    make_tree(&no_kernel);
    fs::remove_file(no_kernel.join("boot/vmlinuz")).unwrap();
    fs::remove_file(no_kernel.join("boot/vmlinuz-6.1.0-moho")).unwrap();
    let out = dir.path().join("out/root.img");
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--rootfs",
                s(&no_kernel),
                "--version",
                "1.0.0",
                "--fs",
                "ext4",
            ],
            "no kernel in /boot",
        ),
        (
            vec!["--rootfs", s(&tree), "--version", "1.0", "--fs", "ext4"],
            "is not a semantic version",
        ),
        (
            vec![
                "--rootfs",
                s(&tree),
                "--version",
                "1.0.0",
                "--fs",
                "ext4",
                "--size",
                "4MiB",
            ],
            "would not fit --size",
        ),
        (
            vec![
                "--rootfs",
                s(&tree),
                "--version",
                "1.0.0",
                "--fs",
                "erofs",
                "--size",
                "1MiB",
            ],
            "would not fit --size",
        ),
        (
            vec![
                "--rootfs",
                s(&tree),
                "--version",
                "1.0.0",
                "--chunk-size",
                "5000",
            ],
            "is not a power of two",
        ),
    ];
    for (extra, expect) in cases {
        let mut args = vec!["build", "--board", BOARD, "--out", s(&out)];
        args.extend(extra);
        let err = fails(&args, 3);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(
            fs::read_dir(out.parent().unwrap())
                .unwrap()
                .next()
                .is_none(),
            "{args:?} left files behind"
        );
    }
    // An existing output is kept unless --force.
    fs::write(&out, "precious").unwrap();
    let err = fails(
        &[
            "build",
            "--rootfs",
            s(&tree),
            "--version",
            "1.0.0",
            "--board",
            BOARD,
            "--out",
            s(&out),
        ],
        3,
    );
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), b"precious");
}

/// Chunks of `new` (4 KiB) that `old` does not hold anywhere: what an
/// install of `new` over `old` downloads.
fn new_chunks(old: &Path, new: &Path) -> (usize, usize) {
    let index = |p: &Path| {
        ChunkIndex::parse(&fs::read(format!("{}.chunks", p.display())).unwrap()).unwrap()
    };
    let (old, new) = (index(old), index(new));
    let have: std::collections::HashSet<_> = (0..old.chunk_count())
        .map(|i| old.chunk_sha256(i).unwrap())
        .collect();
    let missing = (0..new.chunk_count())
        .filter(|&i| !have.contains(&new.chunk_sha256(i).unwrap()))
        .count();
    (missing, usize::try_from(new.chunk_count()).unwrap())
}

/// Builds `tree` as release `version` with 4 KiB chunks.
fn release(tree: &Path, out: &Path, fs_type: &str, version: &str, epoch: &str) {
    ok(&[
        "build",
        "--rootfs",
        s(tree),
        "--version",
        version,
        "--board",
        BOARD,
        "--out",
        s(out),
        "--fs",
        fs_type,
        "--source-date-epoch",
        epoch,
        "--chunk-size",
        "4KiB",
    ]);
}

#[test]
fn consecutive_releases_share_every_block_whose_content_did_not_change() {
    for fs_type in ["ext4", "erofs"] {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        make_tree(&tree);
        // A directory big enough for hashed (htree) directory blocks and a
        // few inode table blocks.
        let many = tree.join("usr/share/many");
        fs::create_dir_all(&many).unwrap();
        for i in 0..400 {
            fs::write(many.join(format!("file-{i:03}")), format!("{i}\n")).unwrap();
        }
        let a = dir.path().join("1.0.0.img");
        release(&tree, &a, fs_type, "1.0.0", EPOCH);

        // 1.0.1: one file's content changes, nothing moves. Only its block
        // (and, for ext4, its inode's checksum) may differ: the filesystem
        // UUID and hash seed are the board's, not the release's.
        fs::write(tree.join("etc/hostname"), "mohO\n").unwrap();
        let b = dir.path().join("1.0.1.img");
        release(&tree, &b, fs_type, "1.0.1", EPOCH);
        let (missing, total) = new_chunks(&a, &b);
        println!("{fs_type}: 1.0.1 has {missing} of {total} chunks that 1.0.0 lacks");
        assert!(
            missing <= 3,
            "{fs_type}: {missing} of {total} chunks of 1.0.1 are not in 1.0.0"
        );

        // 1.0.2: the kernel (first in the tree) grew by 10 kB, so every
        // file after it moved; a file is new; another epoch. The moved
        // files' blocks are still found; what differs is the kernel, the
        // new file and the metadata that points at them.
        fs::write(tree.join("boot/vmlinuz-6.1.0-moho"), vec![0x4e; 80_000]).unwrap();
        fs::write(tree.join("etc/motd"), "release 1.0.2\n").unwrap();
        let c = dir.path().join("1.0.2.img");
        release(&tree, &c, fs_type, "1.0.2", "1700086400");
        let (missing, total) = new_chunks(&b, &c);
        println!("{fs_type}: 1.0.2 has {missing} of {total} chunks that 1.0.1 lacks");
        assert!(
            missing <= 80,
            "{fs_type}: {missing} of {total} chunks of 1.0.2 are not in 1.0.1"
        );
        assert!(total > 1200, "{fs_type}: {total}");
    }
}
