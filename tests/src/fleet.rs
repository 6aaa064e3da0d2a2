//! Fixtures for install tests: a signed release repository built with the
//! real `image-tools` (keys, slot images from small root trees, `repo add`),
//! and a node (a disk with slots, a config directory, a state directory)
//! that runs the real `update-agent`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::https_server::HttpsServer;
use crate::{LoopDevice, bin, ok, run};

/// A signed repository and the keys that sign it.
#[derive(Debug)]
pub struct ReleaseRepo {
    /// Working directory (trees, images).
    pub dir: PathBuf,
    /// Keys.
    pub keys: PathBuf,
    /// The repository (`metadata/`, `targets/`).
    pub repo: PathBuf,
    /// The board every image is built for.
    pub board: String,
}

fn s(p: &Path) -> &OsStr {
    p.as_os_str()
}

impl ReleaseRepo {
    /// Keys and an empty repository under `dir`.
    pub fn new(dir: &Path, board: &str) -> Self {
        let keys = dir.join("keys");
        let repo = dir.join("repo");
        ok(
            bin("image-tools"),
            [OsStr::new("keygen"), OsStr::new("--out"), s(&keys)],
        );
        ok(
            bin("image-tools"),
            [
                OsStr::new("repo"),
                OsStr::new("init"),
                OsStr::new("--repo"),
                s(&repo),
                OsStr::new("--keys"),
                s(&keys),
            ],
        );
        Self {
            dir: dir.to_owned(),
            keys,
            repo,
            board: board.to_owned(),
        }
    }

    /// The root metadata a node trusts from the start.
    pub fn root(&self) -> PathBuf {
        self.repo.join("metadata/1.root.json")
    }

    /// Builds a slot image of `version` whose tree holds a small fake
    /// kernel, an os-release, and `payload` as one file.
    pub fn build(&self, version: &str, payload: &[u8]) -> PathBuf {
        self.build_for(&self.board, version, payload)
    }

    /// Like [`Self::build`] for another board.
    pub fn build_for(&self, board: &str, version: &str, payload: &[u8]) -> PathBuf {
        self.build_with(board, version, payload, "4MiB")
    }

    /// Like [`Self::build_for`] with a chunk size (`1MiB`, ...).
    pub fn build_with(
        &self,
        board: &str,
        version: &str,
        payload: &[u8],
        chunk_size: &str,
    ) -> PathBuf {
        let tree = self.dir.join(format!("tree-{board}-{version}"));
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(tree.join("boot")).unwrap();
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("boot/vmlinuz"), b"not a real kernel").unwrap();
        std::fs::write(
            tree.join("etc/os-release"),
            format!("NAME=Moho\nID=moho\nVERSION_ID={version}\n"),
        )
        .unwrap();
        std::fs::write(tree.join("payload.bin"), payload).unwrap();
        self.build_tree(board, version, &tree, chunk_size, None)
    }

    /// Builds the slot image of `version` from `tree` (which must hold a
    /// kernel in `/boot`), built on `previous`'s image if given.
    pub fn build_tree(
        &self,
        board: &str,
        version: &str,
        tree: &Path,
        chunk_size: &str,
        previous: Option<&Path>,
    ) -> PathBuf {
        let out = self.dir.join(format!("{board}-{version}.img"));
        let mut args = vec![
            OsStr::new("build"),
            OsStr::new("--rootfs"),
            s(tree),
            OsStr::new("--version"),
            OsStr::new(version),
            OsStr::new("--board"),
            OsStr::new(board),
            OsStr::new("--out"),
            s(&out),
            OsStr::new("--source-date-epoch"),
            OsStr::new("1700000000"),
            OsStr::new("--chunk-size"),
            OsStr::new(chunk_size),
            OsStr::new("--force"),
        ];
        if let Some(p) = previous {
            args.extend([OsStr::new("--previous"), s(p)]);
        }
        ok(bin("image-tools"), args);
        out
    }

    /// Publishes `image` for `channels`.
    pub fn add(&self, image: &Path, channels: &[&str]) {
        self.add_with(image, channels, &[]);
    }

    /// `repo add` with extra flags (e.g. `--allow-downgrade`).
    pub fn add_with(&self, image: &Path, channels: &[&str], extra: &[&str]) {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("repo"),
            OsStr::new("add"),
            OsStr::new("--repo"),
            s(&self.repo),
            OsStr::new("--keys"),
            s(&self.keys),
            OsStr::new("--image"),
            s(image),
        ];
        for c in channels {
            args.extend([OsStr::new("--channel"), OsStr::new(*c)]);
        }
        args.extend(extra.iter().map(OsStr::new));
        ok(bin("image-tools"), args);
    }

    /// The file of the published target whose name ends in `name_suffix`
    /// (e.g. `1.1.0/root.img`), in the TUF specification's layout
    /// (`board/version/HASH.file`) or the legacy one (`HASH.board/...`).
    pub fn target_file(&self, name_suffix: &str) -> PathBuf {
        let targets = self.repo.join("targets");
        let mut found = None;
        walk(&targets, &mut |path| {
            let rel = path.strip_prefix(&targets).unwrap().to_string_lossy();
            if found.is_none() && target_name_of(&rel).ends_with(name_suffix) {
                found = Some(path.to_owned());
            }
        });
        found.unwrap_or_else(|| panic!("no target ending in {name_suffix}"))
    }
}

/// The target name a file of `targets/` holds, from its path in either layout.
fn target_name_of(rel: &str) -> String {
    let is_hash = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some((dir, base)) = rel.rsplit_once('/')
        && let Some((hash, file)) = base.split_once('.')
        && is_hash(hash)
    {
        return format!("{dir}/{file}");
    }
    match rel.split_once('.') {
        Some((hash, name)) if is_hash(hash) => name.to_owned(),
        _ => rel.to_owned(),
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

/// Deterministic pseudo-random payload bytes for `seed`.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A node: its disk (a file, or a loop device over one), config and state.
#[derive(Debug)]
pub struct Node {
    /// Working directory.
    pub dir: PathBuf,
    /// Config drop-in directory.
    pub config_dir: PathBuf,
    /// State directory.
    pub state_dir: PathBuf,
    /// The os-release the agent reads the booted version from.
    pub os_release: PathBuf,
    /// The disk file.
    pub disk_file: PathBuf,
    /// The loop device, if the node runs on one.
    pub loop_dev: Option<LoopDevice>,
}

/// How a node is set up.
#[derive(Debug, Clone)]
pub struct NodeSpec<'a> {
    /// Image copied into slot A.
    pub booted_image: &'a Path,
    /// The version slot A runs.
    pub booted_version: &'a str,
    /// Channel.
    pub channel: &'a str,
    /// Slot size (e.g. `64M`).
    pub slot_size: &'a str,
    /// Disk size.
    pub disk_size: &'a str,
    /// Put the disk on a loop device.
    pub on_loop_device: bool,
}

impl Node {
    /// Creates the disk and writes the agent configuration for `server`.
    pub fn new(dir: &Path, server: &HttpsServer, repo: &ReleaseRepo, spec: &NodeSpec<'_>) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let disk_file = dir.join("disk.img");
        ok(
            bin("image-tools"),
            [
                OsStr::new("disk"),
                OsStr::new("create"),
                OsStr::new("--out"),
                s(&disk_file),
                OsStr::new("--size"),
                OsStr::new(spec.disk_size),
                OsStr::new("--slot-size"),
                OsStr::new(spec.slot_size),
                OsStr::new("--slot-a"),
                s(spec.booted_image),
                OsStr::new("--force"),
            ],
        );
        let loop_dev = spec.on_loop_device.then(|| LoopDevice::attach(&disk_file));
        let disk = loop_dev
            .as_ref()
            .map_or(disk_file.clone(), |l| l.path.clone());
        let config_dir = dir.join("agent.d");
        let state_dir = dir.join("state");
        let os_release = dir.join("os-release");
        std::fs::create_dir_all(&config_dir).unwrap();
        std::fs::write(&os_release, format!("VERSION_ID={}\n", spec.booted_version)).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, &server.ca_pem).unwrap();
        std::fs::write(
            config_dir.join("10-test.toml"),
            format!(
                "[repository]\nurl = \"{base}\"\nroot = \"{root}\"\nca_cert = \"{ca}\"\n\
                 [node]\nboard = \"{board}\"\nchannel = \"{channel}\"\nos_release = \"{osr}\"\n\
                 disk = \"{disk}\"\n[agent]\nstate_dir = \"{state}\"\n\
                 [update]\ndownload_attempts = 3\ndownload_backoff = \"100ms\"\n",
                base = server.base,
                root = repo.root().display(),
                ca = ca.display(),
                board = repo.board,
                channel = spec.channel,
                osr = os_release.display(),
                disk = disk.display(),
                state = state_dir.display(),
            ),
        )
        .unwrap();
        Self {
            dir: dir.to_owned(),
            config_dir,
            state_dir,
            os_release,
            disk_file,
            loop_dev,
        }
    }

    /// The disk the agent works on.
    pub fn disk(&self) -> PathBuf {
        self.loop_dev
            .as_ref()
            .map_or(self.disk_file.clone(), |l| l.path.clone())
    }

    /// The agent command line prefix for this node.
    pub fn agent_args<'a>(&'a self, booted: &'a str) -> Vec<&'a OsStr> {
        vec![
            OsStr::new("--config-dir"),
            s(&self.config_dir),
            OsStr::new("--booted"),
            OsStr::new(booted),
        ]
    }

    /// `update-agent install --json ARGS` with slot A booted.
    pub fn install(&self, extra: &[&str]) -> Output {
        let mut args = self.agent_args("A");
        args.push(OsStr::new("install"));
        args.push(OsStr::new("--json"));
        args.extend(extra.iter().map(OsStr::new));
        run(bin("update-agent"), args)
    }

    /// The agent's slot table.
    pub fn slots(&self) -> serde_json::Value {
        crate::slots_json(&self.disk(), Some("A"))
    }
}
