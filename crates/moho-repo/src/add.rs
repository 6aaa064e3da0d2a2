//! Publishing a release: an OS image and its chunk index as two targets,
//! `<board>/<version>/root.img` (with the release `custom` metadata of
//! DESIGN §5) and `<board>/<version>/root.img.chunks`.
//!
//! [`check_release`] applies, before anything is built or written, every
//! rule a node applies to a release's names, versions and sizes; `image-tools
//! build` calls it before making an image, [`add`] again before signing, and
//! the signed result is then loaded as a node would load it
//! ([`Publication::verify`](crate::Publication::verify)) before it is written.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use moho_core::release::{ImageTargetCustom, target_name};
use moho_release::chunk_index::{MAX_CHUNK_INDEX_LEN, chunk_size_is_valid};
use moho_release::target_name::{validate_component, validate_target_name};
use moho_release::{Sha256Digest, TargetNameError};
use tough::TargetName;
use tough::schema::{Hashes, Target};

use crate::current::Current;
use crate::error::RepoError;
use crate::keys::KeyRing;
use crate::publication::{NewTarget, Publication, TargetContent};
use crate::sign::{Expiries, expires_at, next_version};

/// File name of the image target.
pub const IMAGE_FILE: &str = "root.img";
/// File name of the chunk index target.
pub const CHUNKS_FILE: &str = "root.img.chunks";

/// The target names of a release: (image, chunk index).
pub fn release_names(board: &str, version: &str) -> (String, String) {
    (
        target_name(board, version, IMAGE_FILE),
        target_name(board, version, CHUNKS_FILE),
    )
}

/// Checks a board and version as nodes will: a plain board name, a
/// semantic version, and target names nodes accept (at most
/// [`moho_release::target_name::MAX_TARGET_NAME_LEN`] bytes, the chunk
/// index's being the longer).
pub fn check_identity(board: &str, version: &str) -> Result<(), RepoError> {
    validate_component(board).map_err(|source| RepoError::BadBoard {
        board: board.to_owned(),
        source,
    })?;
    // A node names its board in every check-in, and the server takes only
    // boards it can bound: a release for a longer one could never be asked for.
    moho_protocol::names::check_board(board).map_err(|source| RepoError::BoardNodesCannotName {
        board: board.to_owned(),
        source,
    })?;
    check_version(version)?;
    let (image, chunks) = release_names(board, version);
    for name in [image, chunks] {
        validate_target_name(&name).map_err(|source| RepoError::BadTargetName { name, source })?;
    }
    Ok(())
}

/// Checks a version is semver (a release's own or its minimum version).
pub fn check_version(version: &str) -> Result<(), RepoError> {
    semver::Version::parse(version)
        .map(drop)
        .map_err(|e| RepoError::BadVersion {
            version: version.to_owned(),
            reason: e.to_string(),
        })
}

/// Checks a channel name.
pub fn check_channel(channel: &str) -> Result<(), RepoError> {
    validate_component(channel).map_err(|source: TargetNameError| RepoError::BadChannel {
        channel: channel.to_owned(),
        source,
    })
}

/// Checks a chunk size.
pub fn check_chunk_size(chunk_size: u64) -> Result<(), RepoError> {
    if chunk_size_is_valid(chunk_size) {
        Ok(())
    } else {
        Err(RepoError::BadChunkSize(chunk_size))
    }
}

/// The image file of a release, as `build` described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its length.
    pub length: u64,
    /// Its SHA-256.
    pub sha256: Sha256Digest,
}

/// A release to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    /// Board.
    pub board: String,
    /// Version (semver).
    pub version: String,
    /// Channels it is signed for (at least one).
    pub channels: BTreeSet<String>,
    /// Oldest version it may be applied from.
    pub min_version: Option<String>,
    /// Whether nodes on a newer version may install it when asked by name.
    pub allow_downgrade: bool,
    /// Chunk size of its chunk index.
    pub chunk_size: u64,
    /// The image.
    pub image: ImageFile,
    /// The serialized chunk index (checked against the image by the caller).
    pub chunk_index: Vec<u8>,
}

/// Checks every rule of a release that does not need the repository.
pub fn check_release(release: &NewRelease) -> Result<(), RepoError> {
    check_identity(&release.board, &release.version)?;
    if release.channels.is_empty() {
        return Err(RepoError::NoChannel);
    }
    for c in &release.channels {
        check_channel(c)?;
    }
    if let Some(v) = &release.min_version {
        check_version(v)?;
    }
    check_chunk_size(release.chunk_size)?;
    let (_, index_name) = release_names(&release.board, &release.version);
    let index_len = release.chunk_index.len() as u64;
    if index_len > MAX_CHUNK_INDEX_LEN {
        return Err(RepoError::TooLarge {
            name: index_name,
            length: index_len,
            limit: MAX_CHUNK_INDEX_LEN,
        });
    }
    Ok(())
}

/// What `add` published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The image target.
    pub image: String,
    /// The chunk index target.
    pub chunk_index: String,
    /// Channels.
    pub channels: BTreeSet<String>,
    /// The new targets version.
    pub targets_version: u64,
}

impl fmt::Display for Added {
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

/// A target entry for bytes of `length` and `sha256`.
pub(crate) fn target(
    length: u64,
    sha256: Sha256Digest,
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

fn tough_name(name: &str) -> Result<TargetName, RepoError> {
    TargetName::new(name).map_err(|_| RepoError::BadTargetName {
        name: name.to_owned(),
        source: TargetNameError::Traversal(name.to_owned()),
    })
}

/// Signs `release` into the repository: new targets (next version), snapshot
/// and timestamp. Releases are immutable: a board/version already present is
/// refused.
pub fn add(
    current: &Current,
    release: &NewRelease,
    keys: &KeyRing,
    expiries: &Expiries,
    now: SystemTime,
) -> Result<(Publication, Added), RepoError> {
    check_release(release)?;
    let (image_name, index_name) = release_names(&release.board, &release.version);
    for name in [&image_name, &index_name] {
        if current
            .targets()
            .signed
            .targets
            .contains_key(&tough_name(name)?)
        {
            return Err(RepoError::AlreadyPublished { name: name.clone() });
        }
    }
    let custom = ImageTargetCustom {
        version: release.version.clone(),
        board: release.board.clone(),
        channels: release.channels.clone(),
        chunk_size: release.chunk_size,
        chunk_index: index_name.clone(),
        min_version: release.min_version.clone(),
        allow_downgrade: release.allow_downgrade,
    };
    let index_sha = Sha256Digest::of(&release.chunk_index);
    let index_len = release.chunk_index.len() as u64;
    let mut targets = current.targets().signed.clone();
    targets.version = next_version(targets.version);
    targets.expires = expires_at(now, expiries.targets);
    targets.targets.insert(
        tough_name(&image_name)?,
        target(
            release.image.length,
            release.image.sha256,
            custom_map(&custom),
        ),
    );
    targets.targets.insert(
        tough_name(&index_name)?,
        target(index_len, index_sha, HashMap::new()),
    );
    let version = targets.version;
    let files = vec![
        NewTarget {
            name: image_name.clone(),
            length: release.image.length,
            sha256: release.image.sha256,
            content: TargetContent::File(release.image.path.clone()),
        },
        NewTarget {
            name: index_name.clone(),
            length: index_len,
            sha256: index_sha,
            content: TargetContent::Bytes(release.chunk_index.clone()),
        },
    ];
    let publication = Publication::of_targets(targets, files, current, keys, expiries, now)?;
    Ok((
        publication,
        Added {
            image: image_name,
            chunk_index: index_name,
            channels: custom.channels,
            targets_version: version.get(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use moho_release::target_name::MAX_TARGET_NAME_LEN;

    #[test]
    fn the_longest_accepted_release_names_fill_the_target_name_limit() {
        let board = "amd64-generic";
        // board + '/' + version + '/' + "root.img.chunks" = 255 bytes.
        let fill = MAX_TARGET_NAME_LEN - board.len() - 2 - CHUNKS_FILE.len();
        let version = format!("9.0.0-{}", "a".repeat(fill - 6));
        check_identity(board, &version).unwrap();
        let longer = format!("{version}a");
        match check_identity(board, &longer) {
            Err(RepoError::BadTargetName { name, source }) => {
                assert!(name.ends_with(CHUNKS_FILE), "{name}");
                assert_eq!(source, TargetNameError::Length(256));
            }
            other => panic!("one byte over the limit was accepted: {other:?}"),
        }
    }

    #[test]
    fn names_versions_and_channels_nodes_refuse_are_refused() {
        assert!(matches!(
            check_identity("amd64", "1.0"),
            Err(RepoError::BadVersion { .. })
        ));
        assert!(matches!(
            check_identity("amd/64", "1.0.0"),
            Err(RepoError::BadBoard { .. })
        ));
        // The longest board a node can name in its check-in, and one more.
        check_identity(&"b".repeat(64), "1.0.0").unwrap();
        assert!(matches!(
            check_identity(&"b".repeat(65), "1.0.0"),
            Err(RepoError::BoardNodesCannotName { .. })
        ));
        assert!(matches!(
            check_channel("../stable"),
            Err(RepoError::BadChannel { .. })
        ));
        assert!(matches!(
            check_chunk_size(1000),
            Err(RepoError::BadChunkSize(1000))
        ));
    }
}
