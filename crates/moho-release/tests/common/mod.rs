//! Test fixture: a signed TUF repository built in memory with `tough`'s
//! schema types and real ed25519 keys, plus the hooks an attacker would have
//! (re-signing with online keys, editing bytes) to build every bad input.
#![allow(clippy::cast_possible_truncation, clippy::unwrap_used)] // test fixture: small values, panics are failures
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use moho_core::release::{ImageTargetCustom, target_name};
use moho_release::{ChunkIndex, MemorySource, Sha256Digest};
use olpc_cjson::CanonicalFormatter;
use serde::Serialize;
use serde_json::Value;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::{Ed25519Key, Ed25519Scheme, Key};
use tough::schema::{
    Hashes, Metafile, RoleKeys, RoleType, Root, Signature, Signed, Snapshot, Target, Targets,
    Timestamp,
};

pub const DAY: Duration = Duration::from_secs(86_400);
pub const CHUNK: u64 = 4096;

pub fn new_key() -> Ed25519KeyPair {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
}

pub fn tuf_key(k: &Ed25519KeyPair) -> Key {
    Key::Ed25519 {
        keyval: Ed25519Key {
            public: k.public_key().as_ref().to_vec().into(),
            _extra: HashMap::new(),
        },
        scheme: Ed25519Scheme::Ed25519,
        _extra: HashMap::new(),
    }
}

pub fn keyid(k: &Ed25519KeyPair) -> Decoded<Hex> {
    tuf_key(k).key_id().unwrap()
}

pub fn ts(t: SystemTime) -> jiff::Timestamp {
    // Whole seconds, as metadata carries them.
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    jiff::Timestamp::from_second(i64::try_from(secs).unwrap()).unwrap()
}

pub fn canonical<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, CanonicalFormatter::new());
    value.serialize(&mut ser).unwrap();
    out
}

/// Signs `role` with `signers` and serializes it the way `tough` writes files.
pub fn signed_bytes<T: Serialize>(role: &T, signers: &[&Ed25519KeyPair]) -> Vec<u8> {
    let msg = canonical(role);
    let signed = Signed {
        signed: role,
        signatures: signers
            .iter()
            .map(|k| Signature {
                keyid: keyid(k),
                sig: k.sign(&msg).as_ref().to_vec().into(),
            })
            .collect(),
    };
    let mut out = serde_json::to_vec_pretty(&signed).unwrap();
    out.push(b'\n');
    out
}

pub fn metafile(bytes: &[u8], version: u64) -> Metafile {
    Metafile {
        length: Some(bytes.len() as u64),
        hashes: Some(Hashes {
            sha256: Sha256Digest::of(bytes).as_bytes().to_vec().into(),
            _extra: HashMap::new(),
        }),
        version: NonZeroU64::new(version).unwrap(),
        _extra: HashMap::new(),
    }
}

pub fn nz(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

/// The role keys of one root version.
pub struct RoleSet {
    pub root: Vec<Ed25519KeyPair>,
    pub targets: Vec<Ed25519KeyPair>,
    pub snapshot: Ed25519KeyPair,
    pub timestamp: Ed25519KeyPair,
}

impl RoleSet {
    pub fn generate(root_keys: usize, targets_keys: usize) -> Self {
        Self {
            root: (0..root_keys).map(|_| new_key()).collect(),
            targets: (0..targets_keys).map(|_| new_key()).collect(),
            snapshot: new_key(),
            timestamp: new_key(),
        }
    }
}

pub fn role_keys(keys: &[&Ed25519KeyPair], threshold: u64) -> RoleKeys {
    RoleKeys {
        keyids: keys.iter().map(|k| keyid(k)).collect(),
        threshold: nz(threshold),
        _extra: HashMap::new(),
    }
}

pub fn make_root(
    version: u64,
    set: &RoleSet,
    root_threshold: u64,
    targets_threshold: u64,
    expires: SystemTime,
) -> Root {
    let mut keys = HashMap::new();
    let all: Vec<&Ed25519KeyPair> = set
        .root
        .iter()
        .chain(set.targets.iter())
        .chain([&set.snapshot, &set.timestamp])
        .collect();
    for k in &all {
        keys.insert(keyid(k), tuf_key(k));
    }
    let mut roles = HashMap::new();
    roles.insert(
        RoleType::Root,
        role_keys(&set.root.iter().collect::<Vec<_>>(), root_threshold),
    );
    roles.insert(
        RoleType::Targets,
        role_keys(&set.targets.iter().collect::<Vec<_>>(), targets_threshold),
    );
    roles.insert(RoleType::Snapshot, role_keys(&[&set.snapshot], 1));
    roles.insert(RoleType::Timestamp, role_keys(&[&set.timestamp], 1));
    Root {
        spec_version: "1.0.0".into(),
        consistent_snapshot: true,
        version: nz(version),
        expires: ts(expires),
        keys,
        roles,
        _extra: HashMap::new(),
    }
}

/// An in-memory repository and everything needed to sign (or forge) it.
pub struct Fixture {
    pub now: SystemTime,
    pub keys: RoleSet,
    pub root: Root,
    /// Published `N.root.json` files, by version.
    pub roots: BTreeMap<u64, Vec<u8>>,
    pub targets: Targets,
    /// Target file contents by target name.
    pub target_files: BTreeMap<String, Vec<u8>>,
    pub snapshot_version: u64,
    pub timestamp_version: u64,
    pub targets_expires: SystemTime,
    pub snapshot_expires: SystemTime,
    pub timestamp_expires: SystemTime,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_thresholds(1, 1, 1, 1)
    }

    pub fn with_thresholds(
        root_keys: usize,
        root_threshold: u64,
        targets_keys: usize,
        targets_threshold: u64,
    ) -> Self {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let keys = RoleSet::generate(root_keys, targets_keys);
        let root = make_root(1, &keys, root_threshold, targets_threshold, now + 365 * DAY);
        let root_bytes = signed_bytes(&root, &keys.root.iter().collect::<Vec<_>>());
        let mut targets = Targets::new("1.0.0".into(), nz(1), ts(now + 90 * DAY));
        targets.delegations = None;
        Self {
            now,
            keys,
            root,
            roots: BTreeMap::from([(1, root_bytes)]),
            targets,
            target_files: BTreeMap::new(),
            snapshot_version: 0,
            timestamp_version: 0,
            targets_expires: now + 90 * DAY,
            snapshot_expires: now + 7 * DAY,
            timestamp_expires: now + DAY,
        }
    }

    pub fn trusted_root(&self) -> Vec<u8> {
        self.roots[&1].clone()
    }

    /// Adds an image and its chunk index as targets (the release engineer's `repo add`).
    pub fn add_release(
        &mut self,
        board: &str,
        version: &str,
        channels: &[&str],
        image: &[u8],
    ) -> String {
        self.add_release_with(board, version, channels, image, false)
    }

    /// [`Self::add_release`], optionally signed as a rollback release that
    /// nodes on newer versions may install (`repo add --allow-downgrade`).
    pub fn add_release_with(
        &mut self,
        board: &str,
        version: &str,
        channels: &[&str],
        image: &[u8],
        allow_downgrade: bool,
    ) -> String {
        let name = target_name(board, version, "root.img");
        let index_name = target_name(board, version, "root.img.chunks");
        let index = ChunkIndex::build(image, CHUNK).unwrap().to_bytes();
        let custom = ImageTargetCustom {
            version: version.into(),
            board: board.into(),
            channels: channels.iter().map(|c| (*c).to_owned()).collect(),
            chunk_size: CHUNK,
            chunk_index: index_name.clone(),
            min_version: None,
            allow_downgrade,
        };
        self.add_target(&index_name, &index, HashMap::new());
        let custom = match serde_json::to_value(&custom).unwrap() {
            Value::Object(m) => m.into_iter().collect(),
            _ => unreachable!(),
        };
        self.add_target(&name, image, custom);
        name
    }

    pub fn add_target(&mut self, name: &str, bytes: &[u8], custom: HashMap<String, Value>) {
        let target = Target {
            length: bytes.len() as u64,
            hashes: Hashes {
                sha256: Sha256Digest::of(bytes).as_bytes().to_vec().into(),
                _extra: HashMap::new(),
            },
            custom,
            _extra: HashMap::new(),
        };
        self.targets
            .targets
            .insert(tough::TargetName::new(name).unwrap(), target);
        self.target_files.insert(name.to_owned(), bytes.to_vec());
    }

    /// Mutable custom metadata of a target.
    pub fn custom_mut(&mut self, name: &str) -> &mut HashMap<String, Value> {
        &mut self
            .targets
            .targets
            .get_mut(&tough::TargetName::new(name).unwrap())
            .unwrap()
            .custom
    }

    /// Publishes a new root version signed by the current root keys and `next`'s root keys.
    pub fn rotate_root(&mut self, next: RoleSet) {
        let version = self.root.version.get() + 1;
        let root = make_root(version, &next, 1, 1, self.now + 365 * DAY);
        let signers: Vec<&Ed25519KeyPair> = self.keys.root.iter().chain(next.root.iter()).collect();
        self.roots.insert(version, signed_bytes(&root, &signers));
        self.root = root;
        self.keys = next;
    }

    pub fn targets_signers(&self) -> Vec<&Ed25519KeyPair> {
        self.keys.targets.iter().collect()
    }

    /// Signs targets (next version) with the real targets keys.
    pub fn sign_targets(&mut self) -> Vec<u8> {
        self.next_targets();
        signed_bytes(&self.targets, &self.targets_signers())
    }

    /// Bumps the targets version and sets its expiry, before signing it by hand.
    pub fn next_targets(&mut self) {
        self.targets.version = nz(self.targets.version.get() + 1);
        self.targets.expires = ts(self.targets_expires);
    }

    /// Snapshot + timestamp over `targets_bytes` with the online keys (what a
    /// compromised server could also do).
    pub fn online_sign(
        &mut self,
        targets_bytes: &[u8],
        targets_version: u64,
    ) -> (Vec<u8>, Vec<u8>) {
        self.snapshot_version += 1;
        self.timestamp_version += 1;
        let mut snapshot = Snapshot::new(
            "1.0.0".into(),
            nz(self.snapshot_version),
            ts(self.snapshot_expires),
        );
        snapshot.meta.insert(
            "targets.json".into(),
            metafile(targets_bytes, targets_version),
        );
        let snapshot_bytes = signed_bytes(&snapshot, &[&self.keys.snapshot]);
        let mut timestamp = Timestamp::new(
            "1.0.0".into(),
            nz(self.timestamp_version),
            ts(self.timestamp_expires),
        );
        timestamp.meta.insert(
            "snapshot.json".into(),
            metafile(&snapshot_bytes, self.snapshot_version),
        );
        let timestamp_bytes = signed_bytes(&timestamp, &[&self.keys.timestamp]);
        (snapshot_bytes, timestamp_bytes)
    }

    /// A complete, honest publication.
    pub fn publish(&mut self) -> MemorySource {
        let targets = self.sign_targets();
        let v = self.targets.version.get();
        let (snapshot, timestamp) = self.online_sign(&targets, v);
        self.source(&targets, &snapshot, &timestamp)
    }

    /// The repository files for given targets/snapshot/timestamp bytes.
    pub fn source(&self, targets: &[u8], snapshot: &[u8], timestamp: &[u8]) -> MemorySource {
        let mut src = MemorySource::new();
        for (v, bytes) in &self.roots {
            src.insert(format!("{v}.root.json"), bytes.clone());
        }
        src.insert(
            format!("{}.targets.json", self.targets.version),
            targets.to_vec(),
        );
        src.insert(
            format!("{}.snapshot.json", self.snapshot_version),
            snapshot.to_vec(),
        );
        src.insert("timestamp.json", timestamp.to_vec());
        src
    }
}

/// A deterministic test image of `len` bytes.
pub fn image(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
