//! `image-tools repo add`: publish an image built by `build` with its chunk
//! index as two targets, `<board>/<version>/root.img` (with the release
//! `custom` metadata of DESIGN §5) and `<board>/<version>/root.img.chunks`.
//!
//! The chunk index is recomputed from the image and must equal the one
//! `build` wrote, and the manifest's length and hash must match the image:
//! an image altered since it was built is refused.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use moho_core::release::{ImageTargetCustom, target_name};
use moho_release::ChunkIndex;
use moho_release::target_name::validate_component;
use tough::TargetName;
use tough::schema::{Hashes, Target};

use crate::build::{ImageManifest, MANIFEST_FORMAT, chunks_path, manifest_path};
use crate::cli::RepoAddArgs;
use crate::keys::KeyRing;
use crate::repo::{self, Publication, RepoError, RepoPaths, expires_in, io_err, next_version};

/// File name of the image target.
pub const IMAGE_FILE: &str = "root.img";
/// File name of the chunk index target.
pub const CHUNKS_FILE: &str = "root.img.chunks";

/// What `add` published.
#[derive(Debug)]
pub struct AddReport {
    image: String,
    chunk_index: String,
    channels: BTreeSet<String>,
    targets_version: u64,
}

impl fmt::Display for AddReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "published {} (chunk index {}) for {}; targets version {}",
            self.image,
            self.chunk_index,
            self.channels.iter().cloned().collect::<Vec<_>>().join(", "),
            self.targets_version
        )
    }
}

/// Reads and checks `FILE.release.json`.
pub(crate) fn read_manifest(image: &Path) -> Result<ImageManifest, RepoError> {
    let path = manifest_path(image);
    let bad = |reason: String| RepoError::Manifest {
        path: path.clone(),
        reason,
    };
    let bytes = fs::read(&path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let m: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("malformed: {e}")))?;
    if m.format != MANIFEST_FORMAT {
        return Err(bad(format!(
            "format {:?} is not {MANIFEST_FORMAT:?}",
            m.format
        )));
    }
    semver::Version::parse(&m.version).map_err(|e| bad(format!("version {:?}: {e}", m.version)))?;
    validate_component(&m.board).map_err(|e| bad(format!("board {:?}: {e}", m.board)))?;
    Ok(m)
}

/// Checks channel names.
pub(crate) fn check_channel(channel: &str) -> Result<(), RepoError> {
    validate_component(channel).map_err(|source| RepoError::BadChannel {
        channel: channel.to_owned(),
        source,
    })
}

/// A target entry for bytes of `length` and `sha256`.
pub(crate) fn target(
    length: u64,
    sha256: moho_release::Sha256Digest,
    custom: HashMap<String, serde_json::Value>,
) -> Target {
    Target {
        length,
        hashes: Hashes {
            sha256: sha256.as_bytes().to_vec().into(),
            _extra: HashMap::new(),
        },
        custom,
        _extra: HashMap::new(),
    }
}

/// `custom` as the map `tough` keeps.
pub(crate) fn custom_map(custom: &ImageTargetCustom) -> HashMap<String, serde_json::Value> {
    match serde_json::to_value(custom) {
        Ok(serde_json::Value::Object(m)) => m.into_iter().collect(),
        _ => HashMap::new(),
    }
}

fn target_name_of(name: &str) -> Result<TargetName, RepoError> {
    TargetName::new(name).map_err(|e| RepoError::Manifest {
        path: PathBuf::from(name),
        reason: format!("not a target name: {e}"),
    })
}

/// Runs `repo add`.
pub fn run(args: &RepoAddArgs) -> Result<AddReport, RepoError> {
    let paths = RepoPaths::new(&args.repo);
    for c in &args.channels {
        check_channel(c)?;
    }
    if let Some(v) = &args.min_version {
        semver::Version::parse(v).map_err(|e| RepoError::BadVersion {
            version: v.clone(),
            reason: e.to_string(),
        })?;
    }
    let manifest = read_manifest(&args.image)?;

    // The image must be what `build` described.
    let file = File::open(&args.image).map_err(io_err(&args.image, "open"))?;
    let index =
        ChunkIndex::build(file, manifest.chunk_size).map_err(|e| RepoError::ImageChanged {
            path: args.image.clone(),
            reason: format!("cannot index it: {e}"),
        })?;
    if index.image_length() != manifest.image_length
        || index.image_sha256() != manifest.image_sha256
    {
        return Err(RepoError::ImageChanged {
            path: args.image.clone(),
            reason: format!(
                "it is {} bytes with sha256 {}, the manifest says {} bytes with sha256 {}",
                index.image_length(),
                index.image_sha256(),
                manifest.image_length,
                manifest.image_sha256
            ),
        });
    }
    let index_bytes = index.to_bytes();
    let chunks_file = chunks_path(&args.image);
    match fs::read(&chunks_file) {
        Ok(b) if b == index_bytes => {}
        Ok(_) => {
            return Err(RepoError::ImageChanged {
                path: chunks_file,
                reason: "the chunk index does not match the image".to_owned(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RepoError::Manifest {
                path: chunks_file,
                reason: "missing chunk index".to_owned(),
            });
        }
        Err(e) => return Err(io_err(&chunks_file, "read")(e)),
    }

    let keys = KeyRing::load(&args.keys)?;
    let loaded = repo::load(&paths)?;
    let image_name = target_name(&manifest.board, &manifest.version, IMAGE_FILE);
    let index_name = target_name(&manifest.board, &manifest.version, CHUNKS_FILE);
    for name in [&image_name, &index_name] {
        if loaded
            .targets
            .signed
            .targets
            .contains_key(&target_name_of(name)?)
        {
            return Err(RepoError::AlreadyPublished { name: name.clone() });
        }
    }
    let custom = ImageTargetCustom {
        version: manifest.version.clone(),
        board: manifest.board.clone(),
        channels: args.channels.iter().cloned().collect(),
        chunk_size: manifest.chunk_size,
        chunk_index: index_name.clone(),
        min_version: args.min_version.clone(),
        allow_downgrade: args.allow_downgrade,
    };
    let mut targets = loaded.targets.signed.clone();
    targets.version = next_version(targets.version);
    targets.expires = expires_in(args.targets_expiry.targets_expires);
    targets.targets.insert(
        target_name_of(&image_name)?,
        target(
            manifest.image_length,
            manifest.image_sha256,
            custom_map(&custom),
        ),
    );
    targets.targets.insert(
        target_name_of(&index_name)?,
        target(
            index_bytes.len() as u64,
            moho_release::Sha256Digest::of(&index_bytes),
            HashMap::new(),
        ),
    );
    let version = targets.version;
    let root = &loaded.root.signed;
    let signed_targets = repo::sign(targets, root, &keys)?;
    let (snapshot, timestamp) = repo::sign_online(
        Some(&loaded.snapshot.signed),
        Some(&loaded.timestamp.signed),
        signed_targets.buffer(),
        version,
        root,
        &keys,
        &args.online_expiry,
    )?;
    let publication = Publication {
        target_files: vec![(
            args.image.clone(),
            image_name.clone(),
            manifest.image_sha256,
        )],
        target_bytes: vec![(index_bytes, index_name.clone())],
        versioned: vec![
            (
                format!("{version}.targets.json"),
                signed_targets.buffer().clone(),
            ),
            (
                format!("{}.snapshot.json", snapshot.signed().signed.version),
                snapshot.buffer().clone(),
            ),
        ],
        timestamp: timestamp.buffer().clone(),
    };
    publication.write(&paths)?;
    repo::self_check(&paths)?;
    Ok(AddReport {
        image: image_name,
        chunk_index: index_name,
        channels: custom.channels,
        targets_version: version.get(),
    })
}
