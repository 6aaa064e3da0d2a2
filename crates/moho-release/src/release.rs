//! The release descriptor a node acts on, and the checks on image bytes.
//!
//! [`VerifiedRelease`] is made only by
//! [`VerifiedRepository::release_for`](crate::VerifiedRepository::release_for):
//! signed metadata, right board, signed for the node's channel, newer than
//! what runs and applicable from it. [`VerifiedChunkIndex`] is made only from
//! a `VerifiedRelease` and chunk index bytes matching their signed target and
//! describing exactly the signed image. Chunks and whole images are then
//! checked against it before the agent writes or trusts a byte.

use std::collections::BTreeSet;
use std::io::Read;
use std::ops::Range;

use semver::Version;

use crate::chunk_index::{ChunkIndex, read_full};
use crate::digest::{Sha256Digest, Sha256Hasher};
use crate::error::VerifyError;
use crate::repository::{ReleaseTarget, TargetInfo};

/// What a node is: the facts a release is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeContext {
    /// The node's board, e.g. `amd64-generic`.
    pub board: String,
    /// The channel the node follows, e.g. `stable`.
    pub channel: String,
    /// The version the node runs; `None` for a node with no Moho image yet
    /// (then neither the downgrade nor the minimum-version rule applies).
    pub current_version: Option<Version>,
}

/// A release a node may install: only made by verifying (see module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRelease {
    image: TargetInfo,
    chunk_index: TargetInfo,
    version: Version,
    min_version: Option<Version>,
    board: String,
    channels: BTreeSet<String>,
    chunk_size: u64,
}

impl VerifiedRelease {
    pub(crate) fn check(
        release: &ReleaseTarget,
        chunk_index: &TargetInfo,
        node: &NodeContext,
    ) -> Result<Self, VerifyError> {
        let name = release.image().name().to_owned();
        let custom = release.custom();
        if custom.board != node.board {
            return Err(VerifyError::WrongBoard {
                name,
                board: custom.board.clone(),
                node_board: node.board.clone(),
            });
        }
        if !custom.channels.contains(&node.channel) {
            return Err(VerifyError::ChannelNotSigned {
                name,
                channel: node.channel.clone(),
                signed: custom
                    .channels
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
            });
        }
        if let Some(current) = &node.current_version {
            if release.version() <= current && !custom.allow_downgrade {
                return Err(VerifyError::Downgrade {
                    name,
                    version: release.version().to_string(),
                    current: current.to_string(),
                });
            }
            if let Some(min) = release.min_version()
                && current < min
            {
                return Err(VerifyError::BelowMinVersion {
                    name,
                    min_version: min.to_string(),
                    current: current.to_string(),
                });
            }
        }
        Ok(Self {
            image: release.image().clone(),
            chunk_index: chunk_index.clone(),
            version: release.version().clone(),
            min_version: release.min_version().cloned(),
            board: custom.board.clone(),
            channels: custom.channels.clone(),
            chunk_size: custom.chunk_size,
        })
    }

    /// The image target.
    pub fn image(&self) -> &TargetInfo {
        &self.image
    }

    /// The chunk index target.
    pub fn chunk_index(&self) -> &TargetInfo {
        &self.chunk_index
    }

    /// Release version.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// Oldest version it may be applied from.
    pub fn min_version(&self) -> Option<&Version> {
        self.min_version.as_ref()
    }

    /// Board.
    pub fn board(&self) -> &str {
        &self.board
    }

    /// Channels it is signed for.
    pub fn channels(&self) -> &BTreeSet<String> {
        &self.channels
    }

    /// Chunk size, bytes.
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// Checks fetched chunk index bytes: they must be the signed chunk index
    /// target, and describe exactly the signed image.
    pub fn verify_chunk_index(&self, bytes: &[u8]) -> Result<VerifiedChunkIndex, VerifyError> {
        let name = self.chunk_index.name().to_owned();
        self.chunk_index.verify_bytes(bytes).map_err(|e| {
            let detail = match e {
                VerifyError::TargetLengthMismatch {
                    expected, actual, ..
                } => {
                    format!("{actual} bytes, the signed length is {expected}")
                }
                VerifyError::TargetHashMismatch {
                    expected, actual, ..
                } => {
                    format!("sha-256 {actual}, the signed hash is {expected}")
                }
                other => other.to_string(),
            };
            VerifyError::ChunkIndexAltered {
                name: name.clone(),
                detail,
            }
        })?;
        let index = ChunkIndex::parse(bytes).map_err(|source| VerifyError::ChunkIndex {
            name: name.clone(),
            source,
        })?;
        let mismatch =
            |field, index_value: String, signed_value: String| VerifyError::ChunkIndexMismatch {
                name: name.clone(),
                field,
                index_value,
                signed_value,
            };
        if index.image_length() != self.image.length() {
            return Err(mismatch(
                "image length",
                index.image_length().to_string(),
                self.image.length().to_string(),
            ));
        }
        if index.image_sha256() != self.image.sha256() {
            return Err(mismatch(
                "image sha-256",
                index.image_sha256().to_string(),
                self.image.sha256().to_string(),
            ));
        }
        if index.chunk_size() != self.chunk_size {
            return Err(mismatch(
                "chunk size",
                index.chunk_size().to_string(),
                self.chunk_size.to_string(),
            ));
        }
        Ok(VerifiedChunkIndex {
            image: self.image.name().to_owned(),
            index,
        })
    }
}

/// A chunk index that matches its signed target and the signed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChunkIndex {
    image: String,
    index: ChunkIndex,
}

impl VerifiedChunkIndex {
    /// The index itself (chunk ranges and hashes).
    pub fn index(&self) -> &ChunkIndex {
        &self.index
    }

    /// Byte range of chunk `index` in the image.
    pub fn chunk_range(&self, index: u64) -> Option<Range<u64>> {
        self.index.chunk_range(index)
    }

    /// Checks one chunk before it is written: `data` must be exactly chunk
    /// `index` of the signed image.
    pub fn verify_chunk(&self, index: u64, data: &[u8]) -> Result<(), VerifyError> {
        let (Some(range), Some(expected)) = (
            self.index.chunk_range(index),
            self.index.chunk_sha256(index),
        ) else {
            return Err(VerifyError::ChunkLength {
                name: self.image.clone(),
                index,
                expected: 0,
                actual: data.len() as u64,
            });
        };
        if data.len() as u64 != range.end - range.start {
            return Err(VerifyError::ChunkLength {
                name: self.image.clone(),
                index,
                expected: range.end - range.start,
                actual: data.len() as u64,
            });
        }
        if Sha256Digest::of(data) != expected {
            return Err(VerifyError::ChunkMismatch {
                name: self.image.clone(),
                index,
                offset: range.start,
                end: range.end,
            });
        }
        Ok(())
    }

    /// Reads exactly the image's length from `reader` (a downloaded file, or a
    /// slot device read back after writing) and checks every chunk and the
    /// whole-image hash. Bytes after the image are not read.
    pub fn verify_image(&self, mut reader: impl Read) -> Result<(), VerifyError> {
        let mut buf = vec![0u8; usize::try_from(self.index.chunk_size()).unwrap_or(usize::MAX)];
        let mut whole = Sha256Hasher::new();
        for i in 0..self.index.chunk_count() {
            let range = self.index.chunk_range(i).unwrap_or_default();
            let want = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
            let n =
                read_full(&mut reader, &mut buf[..want]).map_err(|source| VerifyError::Read {
                    name: self.image.clone(),
                    offset: range.start,
                    source,
                })?;
            if n < want {
                return Err(VerifyError::TargetLengthMismatch {
                    name: self.image.clone(),
                    expected: self.index.image_length(),
                    actual: range.start + n as u64,
                });
            }
            self.verify_chunk(i, &buf[..n])?;
            whole.update(&buf[..n]);
        }
        let actual = whole.finish();
        if actual != self.index.image_sha256() {
            return Err(VerifyError::TargetHashMismatch {
                name: self.image.clone(),
                expected: self.index.image_sha256(),
                actual,
            });
        }
        Ok(())
    }
}
