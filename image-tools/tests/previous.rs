//! `image-tools build --previous IMAGE`: a release built on the previous
//! release's image keeps every unchanged file's inode number and blocks,
//! holds exactly the new tree, is clean and reproducible, and an image of
//! another board or layout is refused before anything is written.
//!
//! Needs root (the previous image is loop-mounted read-only, and the tests
//! mount the results to read them back as the kernel does).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // test helpers: panics are failures; byte patterns wrap on purpose

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use moho_release::ChunkIndex;

fn build(tree: &Path, out: &Path, version: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "build",
        "--rootfs",
        s(tree),
        "--version",
        version,
        "--board",
        BOARD,
        "--out",
        s(out),
        "--source-date-epoch",
        EPOCH,
        "--chunk-size",
        "4KiB",
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// A tree with more than `make_tree`: directories, many small files, an
/// extended attribute, a named pipe, owners.
fn rich_tree(root: &Path) {
    make_tree(root);
    for d in 0..6 {
        let dir = root.join(format!("usr/share/pkg{d}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..60 {
            let body: Vec<u8> = (0..(i * 700 + d * 13))
                .map(|k| (k * 7 + i + d) as u8)
                .collect();
            fs::write(dir.join(format!("file-{i:02}")), body).unwrap();
        }
    }
    fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: base\n".repeat(3000),
    )
    .unwrap();
    fs::write(root.join("usr/bin/ping"), vec![0x50; 30_000]).unwrap();
    set_xattr(&root.join("usr/bin/ping"), b"cap");
    let fifo = Command::new("mkfifo")
        .arg(root.join("etc/initctl"))
        .status()
        .unwrap();
    assert!(fifo.success());
    std::os::unix::fs::chown(root.join("var/lib/dpkg"), Some(100), Some(101)).unwrap();
    fs::write(root.join("etc/doomed"), "going away\n").unwrap();
    fs::create_dir_all(root.join("usr/share/old/deep")).unwrap();
    fs::write(root.join("usr/share/old/deep/x"), "x\n").unwrap();
    fs::write(root.join("etc/becomes-dir"), "a file now\n").unwrap();
}

fn set_xattr(path: &Path, value: &[u8]) {
    rustix::fs::lsetxattr(path, "user.moho", value, rustix::fs::XattrFlags::empty())
        .expect("user extended attributes on the test's file system");
}

/// Extended attributes as `name=value` lines.
fn xattrs(path: &Path) -> Vec<String> {
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap();
    names[..n]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|name| {
            let name = String::from_utf8_lossy(name).into_owned();
            let mut value = vec![0u8; 4096];
            let k = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..]).unwrap();
            format!("{name}={}", hex::encode(&value[..k]))
        })
        .collect()
}

/// What a release changes: content, permissions, owner, an attribute, a
/// link target, hard links; added, removed and replaced paths.
fn next_release(root: &Path) {
    fs::write(root.join("etc/hostname"), "moho-next\n").unwrap();
    fs::write(root.join("etc/os-release"), "ID=moho\nVERSION_ID=1.0.1\n").unwrap();
    let mut status = fs::read(root.join("var/lib/dpkg/status")).unwrap();
    status.extend_from_slice(&b"Package: jq\n".repeat(50));
    fs::write(root.join("var/lib/dpkg/status"), status).unwrap();
    fs::set_permissions(
        root.join("usr/share/pkg1/file-03"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::chown(root.join("usr/share/pkg2/file-04"), Some(7), Some(8)).unwrap();
    set_xattr(&root.join("usr/bin/ping"), b"cap2");
    fs::remove_file(root.join("usr/bin/ls")).unwrap();
    symlink("/usr/bin/sh", root.join("usr/bin/ls")).unwrap();
    // The hard link becomes a file of its own; a new pair of hard links.
    fs::remove_file(root.join("usr/bin/sh")).unwrap();
    fs::write(root.join("usr/bin/sh"), "#!/bin/true\n").unwrap();
    fs::write(root.join("usr/bin/jq"), vec![0x4a; 200_000]).unwrap();
    fs::hard_link(root.join("usr/bin/jq"), root.join("usr/bin/jq-link")).unwrap();
    let lib = root.join("usr/lib/x86_64-linux-gnu");
    fs::create_dir_all(&lib).unwrap();
    fs::write(lib.join("libjq.so.1.0.4"), vec![0x6a; 300_000]).unwrap();
    symlink("libjq.so.1.0.4", lib.join("libjq.so.1")).unwrap();
    fs::remove_file(root.join("etc/doomed")).unwrap();
    fs::remove_dir_all(root.join("usr/share/old")).unwrap();
    fs::remove_file(root.join("etc/becomes-dir")).unwrap();
    fs::create_dir(root.join("etc/becomes-dir")).unwrap();
    fs::write(root.join("etc/becomes-dir/inside"), "inside\n").unwrap();
    fs::remove_file(root.join("usr/share/pkg0/file-10")).unwrap();
    fs::write(root.join("usr/share/pkg0/file-10"), "rewritten\n").unwrap();
}

/// A read-only mount of an image, unmounted on drop.
struct Mount(tempfile::TempDir);

impl Mount {
    fn new(image: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "ext4", "-o", "ro,loop"])
            .arg(image)
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount {}", image.display());
        Self(dir)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Path → (mode, uid, gid, content or link target, xattrs, hard-link group).
type View = BTreeMap<PathBuf, (u32, u32, u32, Vec<u8>, Vec<String>, usize)>;

/// The tree as the kernel shows it; `lost+found` left out.
fn view(root: &Path) -> (View, BTreeMap<PathBuf, u64>) {
    let mut out = View::new();
    let mut inos = BTreeMap::new();
    let mut groups: BTreeMap<u64, usize> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = root.join(&rel);
        let m = fs::symlink_metadata(&abs).unwrap();
        let content = if m.is_dir() {
            for e in fs::read_dir(&abs).unwrap() {
                let name = e.unwrap().file_name();
                if rel.as_os_str().is_empty() && name == "lost+found" {
                    continue;
                }
                stack.push(rel.join(name));
            }
            Vec::new()
        } else if m.file_type().is_symlink() {
            fs::read_link(&abs)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else if m.is_file() {
            fs::read(&abs).unwrap()
        } else {
            Vec::new()
        };
        let attrs = xattrs(&abs);
        let next = groups.len();
        let group = if m.is_file() && m.nlink() > 1 {
            *groups.entry(m.ino()).or_insert(next)
        } else {
            usize::MAX
        };
        inos.insert(rel.clone(), m.ino());
        out.insert(rel, (m.mode(), m.uid(), m.gid(), content, attrs, group));
    }
    (out, inos)
}

/// `debugfs blocks` of each path: the data blocks of its inode.
fn blocks(image: &Path, paths: &[&PathBuf]) -> Vec<String> {
    let cmds: String = paths
        .iter()
        .map(|p| format!("blocks \"/{}\"\n", p.display()))
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    fs::write(file.path(), cmds).unwrap();
    let out = Command::new("debugfs")
        .arg("-f")
        .arg(file.path())
        .arg(image)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split("debugfs: ")
        .skip(1)
        .map(str::to_owned)
        .collect()
}

fn fsck_clean(image: &Path) {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "e2fsck -fn {}:\n{}",
        image.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn unchanged_files_keep_their_inodes_and_blocks_and_the_image_holds_the_new_tree() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    rich_tree(&tree);
    let a = dir.path().join("1.0.0.img");
    build(&tree, &a, "1.0.0", &[]);
    let (before, old_inos) = {
        let m = Mount::new(&a);
        view(m.path())
    };
    next_release(&tree);
    let b = dir.path().join("1.0.1.img");
    let report = build(&tree, &b, "1.0.1", &["--previous", s(&a)]);
    assert!(
        report.contains("paths kept their inode and blocks"),
        "{report}"
    );
    assert!(!report.contains("grown"), "{report}");
    fsck_clean(&b);
    // The free space covered the new files: the image keeps its size.
    assert_eq!(
        fs::metadata(&b).unwrap().len(),
        fs::metadata(&a).unwrap().len()
    );

    // The image holds exactly the new tree, as the kernel reads it.
    let (expected, _) = view(&tree);
    let (got, new_inos) = {
        let m = Mount::new(&b);
        view(m.path())
    };
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (path, want) in &expected {
        let have = &got[path];
        assert_eq!(have.0, want.0, "{}: mode", path.display());
        assert_eq!(
            (have.1, have.2),
            (want.1, want.2),
            "{}: owner",
            path.display()
        );
        assert!(have.3 == want.3, "{}: content differs", path.display());
        assert_eq!(have.4, want.4, "{}: extended attributes", path.display());
        assert_eq!(
            have.5 == usize::MAX,
            want.5 == usize::MAX,
            "{}: hard links",
            path.display()
        );
    }
    let jq = &PathBuf::from("usr/bin/jq");
    assert_eq!(new_inos[jq], new_inos[&PathBuf::from("usr/bin/jq-link")]);

    // Every file whose bytes did not change kept its inode number and blocks.
    let unchanged: Vec<&PathBuf> = expected
        .keys()
        .filter(|p| {
            before.get(*p).is_some_and(|old| {
                old.3 == expected[*p].3 && old.0 >> 12 == 0o10 && old.5 == usize::MAX
            })
        })
        .collect();
    assert!(unchanged.len() > 300, "{}", unchanged.len());
    for p in &unchanged {
        assert_eq!(old_inos[*p], new_inos[*p], "{}: inode number", p.display());
    }
    assert_eq!(blocks(&a, &unchanged), blocks(&b, &unchanged));
    // The changed file's new bytes are somewhere else.
    let status = &PathBuf::from("var/lib/dpkg/status");
    assert_ne!(blocks(&a, &[status]), blocks(&b, &[status]));

    // What a node on 1.0.0 downloads is what changed, not the image.
    let index = |p: &Path| {
        ChunkIndex::parse(&fs::read(format!("{}.chunks", p.display())).unwrap()).unwrap()
    };
    let (ia, ib) = (index(&a), index(&b));
    let have: std::collections::HashSet<_> = (0..ia.chunk_count())
        .map(|i| ia.chunk_sha256(i).unwrap())
        .collect();
    let missing = (0..ib.chunk_count())
        .filter(|&i| !have.contains(&ib.chunk_sha256(i).unwrap()))
        .count();
    println!(
        "1.0.1 has {missing} of {} 4 KiB chunks that 1.0.0 lacks",
        ib.chunk_count()
    );
    // jq (49 blocks), its library (74), the status file (12), the rewritten
    // files, directories, inode tables and bitmaps: well under 300.
    assert!(
        missing < 300,
        "{missing} of {} chunks are new",
        ib.chunk_count()
    );

    // Reproducible: the same previous image and tree give the same bytes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let c = dir.path().join("again.img");
    build(&tree, &c, "1.0.1", &["--previous", s(&a)]);
    assert!(
        fs::read(&b).unwrap() == fs::read(&c).unwrap(),
        "the rebuild differs"
    );
}

#[test]
fn a_tree_that_outgrows_the_previous_image_grows_it_and_keeps_the_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let a = dir.path().join("a.img");
    build(&tree, &a, "1.0.0", &[]);
    let len = fs::metadata(&a).unwrap().len();
    let big: Vec<u8> = (0..(len as usize)).map(|i| (i * 31 % 251) as u8).collect();
    fs::write(tree.join("usr/bin/big"), big).unwrap();
    for i in 0..100 {
        fs::write(tree.join(format!("etc/f{i}")), "x").unwrap();
    }
    let b = dir.path().join("b.img");
    let report = build(&tree, &b, "1.0.1", &["--previous", s(&a)]);
    assert!(report.contains("grown from"), "{report}");
    assert!(fs::metadata(&b).unwrap().len() > len);
    fsck_clean(&b);
    let kept = [
        &PathBuf::from("usr/bin/busybox"),
        &PathBuf::from("boot/vmlinuz-6.1.0-moho"),
    ];
    assert_eq!(blocks(&a, &kept), blocks(&b, &kept));
    // Reproducible when grown too.
    let c = dir.path().join("c.img");
    build(&tree, &c, "1.0.1", &["--previous", s(&a)]);
    assert!(
        fs::read(&b).unwrap() == fs::read(&c).unwrap(),
        "the rebuild differs"
    );
    let m = Mount::new(&b);
    assert!(
        fs::read(m.path().join("usr/bin/big")).unwrap()
            == fs::read(tree.join("usr/bin/big")).unwrap()
    );
    assert_eq!(fs::read_to_string(m.path().join("etc/f99")).unwrap(), "x");
}

#[test]
fn a_previous_image_of_another_board_or_layout_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    let out = dir.path().join("new.img");
    let refused = |previous: &Path, extra: &[&str]| {
        let mut args = vec![
            "build",
            "--rootfs",
            s(&tree),
            "--version",
            "1.0.1",
            "--board",
            BOARD,
            "--out",
            s(&out),
            "--previous",
            s(previous),
        ];
        args.extend_from_slice(extra);
        let err = fails(&args, 3);
        assert!(!out.exists(), "{} was written", out.display());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(".moho"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        err
    };

    // Another board: by its manifest, and without one by its filesystem UUID.
    let other = dir.path().join("other.img");
    ok(&[
        "build",
        "--rootfs",
        s(&tree),
        "--version",
        "1.0.0",
        "--board",
        "arm64-other",
        "--out",
        s(&other),
        "--source-date-epoch",
        EPOCH,
    ]);
    let err = refused(&other, &[]);
    assert!(
        err.contains("for another board") && err.contains("arm64-other"),
        "{err}"
    );
    fs::remove_file(format!("{}.release.json", other.display())).unwrap();
    let err = refused(&other, &[]);
    assert!(
        err.contains("for another board") && err.contains("filesystem UUID"),
        "{err}"
    );

    // Another layout: an ext4 made by plain mke2fs (with a journal).
    let plain = dir.path().join("plain.img");
    fs::write(&plain, vec![0u8; 16 << 20]).unwrap();
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4"])
        .arg(&plain)
        .status()
        .unwrap();
    assert!(st.success());
    let err = refused(&plain, &[]);
    assert!(err.contains("another ext4 layout"), "{err}");

    // Not a filesystem; an erofs release; erofs output; a smaller --size.
    let junk = dir.path().join("junk.img");
    fs::write(&junk, vec![7u8; 8192]).unwrap();
    assert!(refused(&junk, &[]).contains("not an ext4 filesystem"));
    let erofs = dir.path().join("erofs.img");
    ok(&[
        "build",
        "--rootfs",
        s(&tree),
        "--version",
        "1.0.0",
        "--board",
        BOARD,
        "--out",
        s(&erofs),
        "--fs",
        "erofs",
        "--source-date-epoch",
        EPOCH,
    ]);
    assert!(refused(&erofs, &[]).contains("--previous needs an ext4 image"));
    let good = dir.path().join("good.img");
    build(&tree, &good, "1.0.0", &["--size", "64MiB"]);
    assert!(refused(&good, &["--fs", "erofs"]).contains("ext4 images only"));
    let err = refused(&good, &["--size", "32MiB"]);
    assert!(err.contains("cannot be smaller"), "{err}");

    // Not root: said so, before anything else.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_image-tools"))
        .args([
            "build",
            "--rootfs",
            s(&tree),
            "--version",
            "1.0.1",
            "--board",
            BOARD,
        ])
        .args(["--out", s(&out), "--previous", s(&good)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&nobody.stderr);
    assert_eq!(nobody.status.code(), Some(3), "{err}");
    assert!(err.contains("--previous needs root"), "{err}");
    assert!(!out.exists());
}
