//! Shared helpers of the image-tools integration tests: running the binary,
//! a small root filesystem tree, a published repository, and a snapshot of a
//! directory to prove that a refused command wrote nothing.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)] // test helpers: panics are failures

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod legacy;
#[allow(unused_imports)]
pub use legacy::to_legacy_layout;

pub const BOARD: &str = "amd64-generic";
pub const EPOCH: &str = "1700000000";

/// Runs `image-tools` with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_image-tools"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run image-tools")
}

/// Runs `image-tools` and requires success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "image-tools {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `image-tools`, requires exit code `code`; returns stderr.
pub fn fails(args: &[&str], code: i32) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "image-tools {args:?}: expected exit {code}, stderr:\n{stderr}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small root filesystem: a kernel in /boot, some files, a link, a hard link.
pub fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("boot")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("boot/vmlinuz-6.1.0-moho"), vec![0x4d; 70_000]).unwrap();
    symlink("vmlinuz-6.1.0-moho", root.join("boot/vmlinuz")).unwrap();
    fs::write(root.join("etc/hostname"), "moho\n").unwrap();
    fs::write(root.join("etc/os-release"), "ID=moho\nVERSION_ID=1.0.0\n").unwrap();
    let big: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(root.join("usr/bin/busybox"), big).unwrap();
    fs::hard_link(root.join("usr/bin/busybox"), root.join("usr/bin/sh")).unwrap();
    symlink("/usr/bin/busybox", root.join("usr/bin/ls")).unwrap();
}

/// Every file under `dir` with its bytes (symlinks as their target).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else if meta.file_type().is_symlink() {
            out.insert(
                p.clone(),
                fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            );
        } else {
            out.insert(p.clone(), fs::read(&p).unwrap());
        }
    }
    out
}

/// A work directory with keys, a built image and a repository holding it.
pub struct Published {
    pub dir: tempfile::TempDir,
}

impl Published {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn repo(&self) -> PathBuf {
        self.path("repo")
    }

    pub fn root(&self) -> PathBuf {
        self.path("repo/metadata/1.root.json")
    }

    /// `verify` arguments for the repository and its version-1 root.
    pub fn verify_args(&self) -> Vec<String> {
        vec![
            "verify".into(),
            "--repo".into(),
            s(&self.repo()).into(),
            "--root".into(),
            s(&self.root()).into(),
        ]
    }

    /// The repository file of a target (consistent snapshots, the TUF
    /// specification's layout: `board/version/HASH.file`).
    pub fn target_file(&self, name: &str) -> PathBuf {
        let (dir, file) = name.rsplit_once('/').unwrap();
        let dir = self.path("repo/targets").join(dir);
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let entry = e.file_name().into_string().unwrap();
            if let Some((hash, rest)) = entry.split_once('.')
                && rest == file
                && hash.len() == 64
            {
                return e.path();
            }
        }
        panic!("no file for target {name} in {}", dir.display());
    }
}

/// Keys (`targets_keys` targets keys, threshold as many), an erofs image of
/// version 1.0.0 and a repository with it on `beta`.
pub fn published(targets_keys: u32) -> Published {
    let dir = tempfile::tempdir().unwrap();
    let p = |rel: &str| dir.path().join(rel);
    make_tree(&p("tree"));
    let n = targets_keys.to_string();
    ok(&["keygen", "--out", s(&p("keys")), "--targets-keys", &n]);
    ok(&[
        "build",
        "--rootfs",
        s(&p("tree")),
        "--version",
        "1.0.0",
        "--board",
        BOARD,
        "--out",
        s(&p("v1.img")),
        "--fs",
        "erofs",
        "--chunk-size",
        "64KiB",
        "--source-date-epoch",
        EPOCH,
    ]);
    ok(&[
        "repo",
        "init",
        "--repo",
        s(&p("repo")),
        "--keys",
        s(&p("keys")),
        "--targets-threshold",
        &n,
    ]);
    ok(&[
        "repo",
        "add",
        "--repo",
        s(&p("repo")),
        "--keys",
        s(&p("keys")),
        "--image",
        s(&p("v1.img")),
        "--channel",
        "beta",
    ]);
    Published { dir }
}

/// Builds an erofs image of `version` from the test tree into `out`.
pub fn build_image(p: &Published, version: &str, out: &str) {
    ok(&[
        "build",
        "--rootfs",
        s(&p.path("tree")),
        "--version",
        version,
        "--board",
        BOARD,
        "--out",
        s(&p.path(out)),
        "--fs",
        "erofs",
        "--chunk-size",
        "64KiB",
        "--source-date-epoch",
        EPOCH,
    ]);
}

/// `repo add` of a built image on `channel`.
pub fn add_image(p: &Published, image: &str, channel: &str) -> String {
    ok(&[
        "repo",
        "add",
        "--repo",
        s(&p.repo()),
        "--keys",
        s(&p.path("keys")),
        "--image",
        s(&p.path(image)),
        "--channel",
        channel,
    ])
}
