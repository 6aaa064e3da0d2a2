//! `image-tools repo add`: publish an image built by `build` with its chunk
//! index as two targets (see `moho_repo::add`).
//!
//! The manifest's board and version are checked against the nodes' rules
//! first; then the chunk index is recomputed from the image and must equal
//! the one `build` wrote, and the manifest's length and hash must match the
//! image: an image altered since it was built is refused. Nothing is written
//! before all of that and the signed result passed the nodes' verifier.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use moho_release::ChunkIndex;
use moho_repo::{Added, ImageFile, KeyRing, NewRelease, RepoDir, RepoError};

use crate::build::{ImageManifest, MANIFEST_FORMAT, chunks_path, manifest_path};
use crate::cli::RepoAddArgs;
use crate::repo::{expiries, now};

/// Why `repo add` refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The image has no usable release manifest.
    #[error("{}: {reason} (build the image with `image-tools build`)", path.display())]
    Manifest {
        /// The manifest path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The image or its chunk index changed since `build`.
    #[error("{}: {reason}; rebuild it", path.display())]
    ImageChanged {
        /// The image.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// Reading the image failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The repository refused or failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl AddError {
    /// Whether the input was refused (as opposed to a failure of the system).
    pub fn is_bad_input(&self) -> bool {
        match self {
            AddError::Io { .. } => false,
            AddError::Repo(e) => e.is_bad_input(),
            _ => true,
        }
    }
}

/// Reads and checks `FILE.release.json`.
fn read_manifest(image: &Path) -> Result<ImageManifest, AddError> {
    let path = manifest_path(image);
    let bad = |reason: String| AddError::Manifest {
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
    Ok(m)
}

/// Recomputes the chunk index of `image` and checks it against the
/// manifest and `FILE.chunks`; returns the index bytes.
fn check_image(image: &Path, manifest: &ImageManifest) -> Result<Vec<u8>, AddError> {
    let file = File::open(image).map_err(|source| AddError::Io {
        path: image.to_owned(),
        op: "open",
        source,
    })?;
    let index =
        ChunkIndex::build(file, manifest.chunk_size).map_err(|e| AddError::ImageChanged {
            path: image.to_owned(),
            reason: format!("cannot index it: {e}"),
        })?;
    if index.image_length() != manifest.image_length
        || index.image_sha256() != manifest.image_sha256
    {
        return Err(AddError::ImageChanged {
            path: image.to_owned(),
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
    let chunks_file = chunks_path(image);
    match fs::read(&chunks_file) {
        Ok(b) if b == index_bytes => Ok(index_bytes),
        Ok(_) => Err(AddError::ImageChanged {
            path: chunks_file,
            reason: "the chunk index does not match the image".to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(AddError::Manifest {
            path: chunks_file,
            reason: "missing chunk index".to_owned(),
        }),
        Err(source) => Err(AddError::Io {
            path: chunks_file,
            op: "read",
            source,
        }),
    }
}

/// Runs `repo add`.
pub fn run(args: &RepoAddArgs) -> Result<Added, AddError> {
    for c in &args.channels {
        moho_repo::add::check_channel(c)?;
    }
    if let Some(v) = &args.min_version {
        moho_repo::add::check_version(v)?;
    }
    let manifest = read_manifest(&args.image)?;
    // The nodes' rules for the names before hashing a large image.
    moho_repo::add::check_identity(&manifest.board, &manifest.version)?;
    moho_repo::add::check_chunk_size(manifest.chunk_size)?;
    let chunk_index = check_image(&args.image, &manifest)?;
    let release = NewRelease {
        board: manifest.board.clone(),
        version: manifest.version.clone(),
        channels: args.channels.iter().cloned().collect(),
        min_version: args.min_version.clone(),
        allow_downgrade: args.allow_downgrade,
        chunk_size: manifest.chunk_size,
        image: ImageFile {
            path: args.image.clone(),
            length: manifest.image_length,
            sha256: manifest.image_sha256,
        },
        chunk_index,
    };
    moho_repo::add::check_release(&release)?;
    let keys = KeyRing::load(&args.keys).map_err(RepoError::from)?;
    let dir = RepoDir::new(&args.repo);
    let current = dir.load()?;
    let now = now();
    let (publication, report) = moho_repo::add(
        &current,
        &release,
        &keys,
        &expiries(None, Some(&args.targets_expiry), Some(&args.online_expiry)),
        now,
    )?;
    dir.publish(&publication, now)?;
    Ok(report)
}
