//! The chunk index: an image cut into fixed-size chunks, each with its SHA-256.
//!
//! Published next to each image as its own TUF target (so it is covered by the
//! targets signature), it lets an agent check every chunk *before* writing it,
//! resume an interrupted download at any chunk boundary, and copy chunks it
//! already holds instead of downloading them (DESIGN §3 step 5).
//!
//! Wire format: one compact JSON object, canonical so that the same image and
//! chunk size always give the same bytes:
//!
//! ```json
//! {"format":"moho-chunk-index-v1","chunk_size":4194304,"image_length":8388609,
//!  "image_sha256":"<64 hex>","chunks":["<64 hex>","<64 hex>","<64 hex>"]}
//! ```
//!
//! Every chunk is `chunk_size` bytes except the last, which holds the rest.

use std::io::{self, Read};
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::digest::{Sha256Digest, Sha256Hasher};

/// The `format` field of a version-1 chunk index.
pub const CHUNK_INDEX_FORMAT: &str = "moho-chunk-index-v1";
/// Smallest accepted chunk size: 4 KiB.
pub const MIN_CHUNK_SIZE: u64 = 4096;
/// Largest accepted chunk size: 1 GiB (an agent holds one chunk in memory).
pub const MAX_CHUNK_SIZE: u64 = 1 << 30;
/// Longest accepted serialized index: 64 MiB, enough for a 4 TiB image at 4 MiB chunks.
pub const MAX_CHUNK_INDEX_LEN: u64 = 64 << 20;

/// Why bytes are not a valid chunk index, or an index cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkIndexError {
    /// Not JSON of the chunk index shape.
    #[error("malformed: {0}")]
    Malformed(String),
    /// An unknown `format`.
    #[error("format {0:?} is not {CHUNK_INDEX_FORMAT:?}")]
    Format(String),
    /// Not a power of two within bounds.
    #[error("chunk size {0} is not a power of two between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE}")]
    ChunkSize(u64),
    /// A zero-length image.
    #[error("image is empty")]
    EmptyImage,
    /// The number of chunks does not cover the image exactly.
    #[error(
        "{actual} chunk hashes for an image of {image_length} bytes in {chunk_size}-byte chunks (expected {expected})"
    )]
    ChunkCount {
        /// The image length.
        image_length: u64,
        /// The chunk size.
        chunk_size: u64,
        /// Chunks needed.
        expected: u64,
        /// Chunks listed.
        actual: u64,
    },
}

/// Whether `size` is an acceptable chunk size.
pub fn chunk_size_is_valid(size: u64) -> bool {
    size.is_power_of_two() && (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size)
}

/// A parsed, self-consistent chunk index (not yet tied to a signed image:
/// see [`VerifiedRelease::verify_chunk_index`](crate::VerifiedRelease::verify_chunk_index)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkIndex {
    format: String,
    chunk_size: u64,
    image_length: u64,
    image_sha256: Sha256Digest,
    chunks: Vec<Sha256Digest>,
}

impl ChunkIndex {
    /// Reads a whole image from `reader` and indexes it.
    ///
    /// The reader is the caller's (a file, a pipe, a slot device limited with
    /// `take`); this function opens nothing itself.
    pub fn build(mut reader: impl Read, chunk_size: u64) -> Result<Self, BuildError> {
        if !chunk_size_is_valid(chunk_size) {
            return Err(BuildError::Index(ChunkIndexError::ChunkSize(chunk_size)));
        }
        let buf_len = usize::try_from(chunk_size)
            .map_err(|_| BuildError::Index(ChunkIndexError::ChunkSize(chunk_size)))?;
        let mut buf = vec![0u8; buf_len];
        let mut whole = Sha256Hasher::new();
        let mut chunks = Vec::new();
        let mut length = 0u64;
        loop {
            let n = read_full(&mut reader, &mut buf).map_err(|source| BuildError::Read {
                offset: length,
                source,
            })?;
            if n == 0 {
                break;
            }
            let data = &buf[..n];
            whole.update(data);
            chunks.push(Sha256Digest::of(data));
            length += n as u64;
            if n < buf.len() {
                break;
            }
        }
        if length == 0 {
            return Err(BuildError::Index(ChunkIndexError::EmptyImage));
        }
        Ok(Self {
            format: CHUNK_INDEX_FORMAT.to_owned(),
            chunk_size,
            image_length: length,
            image_sha256: whole.finish(),
            chunks,
        })
    }

    /// Parses and checks serialized bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ChunkIndexError> {
        let index: Self =
            serde_json::from_slice(bytes).map_err(|e| ChunkIndexError::Malformed(e.to_string()))?;
        index.check()?;
        Ok(index)
    }

    fn check(&self) -> Result<(), ChunkIndexError> {
        if self.format != CHUNK_INDEX_FORMAT {
            return Err(ChunkIndexError::Format(self.format.clone()));
        }
        if !chunk_size_is_valid(self.chunk_size) {
            return Err(ChunkIndexError::ChunkSize(self.chunk_size));
        }
        if self.image_length == 0 {
            return Err(ChunkIndexError::EmptyImage);
        }
        let expected = self.image_length.div_ceil(self.chunk_size);
        let actual = self.chunks.len() as u64;
        if actual != expected {
            return Err(ChunkIndexError::ChunkCount {
                image_length: self.image_length,
                chunk_size: self.chunk_size,
                expected,
                actual,
            });
        }
        Ok(())
    }

    /// The serialized form (compact JSON and a final newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Chunk size, bytes.
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// Image length, bytes.
    pub fn image_length(&self) -> u64 {
        self.image_length
    }

    /// SHA-256 of the whole image.
    pub fn image_sha256(&self) -> Sha256Digest {
        self.image_sha256
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> u64 {
        self.chunks.len() as u64
    }

    /// SHA-256 of chunk `index`, if it exists.
    pub fn chunk_sha256(&self, index: u64) -> Option<Sha256Digest> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.chunks.get(i))
            .copied()
    }

    /// Byte range of chunk `index` in the image, if it exists.
    pub fn chunk_range(&self, index: u64) -> Option<Range<u64>> {
        if index >= self.chunk_count() {
            return None;
        }
        let start = index * self.chunk_size;
        Some(start..(start + self.chunk_size).min(self.image_length))
    }

    /// The chunk whose SHA-256 is `digest`, if any (to reuse chunks a node already holds).
    pub fn find_chunk(&self, digest: &Sha256Digest) -> Option<u64> {
        self.chunks
            .iter()
            .position(|c| c == digest)
            .map(|i| i as u64)
    }
}

/// Why an index could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The image or chunk size is not acceptable.
    #[error(transparent)]
    Index(ChunkIndexError),
    /// Reading the image failed.
    #[error("read failed at byte {offset}: {source}")]
    Read {
        /// Where.
        offset: u64,
        /// Why.
        source: io::Error,
    },
}

/// Reads until `buf` is full or the reader is exhausted; returns bytes read.
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // small test images
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn image(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn indexes_full_and_partial_chunks() {
        let img = image(2 * 4096 + 10);
        let idx = ChunkIndex::build(&img[..], 4096).unwrap();
        assert_eq!(idx.chunk_count(), 3);
        assert_eq!(idx.image_length(), img.len() as u64);
        assert_eq!(idx.image_sha256(), Sha256Digest::of(&img));
        assert_eq!(idx.chunk_range(2), Some(8192..8202));
        assert_eq!(idx.chunk_sha256(2), Some(Sha256Digest::of(&img[8192..])));
        assert_eq!(idx.chunk_range(3), None);
        assert_eq!(idx.find_chunk(&Sha256Digest::of(&img[4096..8192])), Some(1));
    }

    #[test]
    fn refuses_bad_chunk_sizes_and_empty_images() {
        for size in [0, 1000, 4095, 6000, 2 << 30] {
            assert!(matches!(
                ChunkIndex::build(&[1u8][..], size),
                Err(BuildError::Index(ChunkIndexError::ChunkSize(s))) if s == size
            ));
        }
        assert!(matches!(
            ChunkIndex::build(&[][..], 4096),
            Err(BuildError::Index(ChunkIndexError::EmptyImage))
        ));
    }

    #[test]
    fn parse_refuses_inconsistent_indexes() {
        let idx = ChunkIndex::build(&image(9000)[..], 4096).unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&idx.to_bytes()).unwrap();
        v["chunks"].as_array_mut().unwrap().pop();
        let err = ChunkIndex::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(
            err,
            ChunkIndexError::ChunkCount {
                expected: 3,
                actual: 2,
                ..
            }
        ));

        let mut v: serde_json::Value = serde_json::from_slice(&idx.to_bytes()).unwrap();
        v["format"] = "moho-chunk-index-v9".into();
        assert!(matches!(
            ChunkIndex::parse(&serde_json::to_vec(&v).unwrap()),
            Err(ChunkIndexError::Format(_))
        ));

        let mut v: serde_json::Value = serde_json::from_slice(&idx.to_bytes()).unwrap();
        v["extra"] = 1.into();
        assert!(matches!(
            ChunkIndex::parse(&serde_json::to_vec(&v).unwrap()),
            Err(ChunkIndexError::Malformed(_))
        ));
        assert!(matches!(
            ChunkIndex::parse(b"{"),
            Err(ChunkIndexError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn round_trips_and_covers_the_image(len in 1usize..40_000, shift in 12u32..15) {
            let img = image(len);
            let size = 1u64 << shift;
            let idx = ChunkIndex::build(&img[..], size).unwrap();
            let bytes = idx.to_bytes();
            prop_assert_eq!(ChunkIndex::parse(&bytes).unwrap(), idx.clone());
            // The chunks tile the image exactly and each hash is its chunk's.
            let mut next = 0u64;
            for i in 0..idx.chunk_count() {
                let r = idx.chunk_range(i).unwrap();
                prop_assert_eq!(r.start, next);
                let data = &img[r.start as usize..r.end as usize];
                prop_assert_eq!(idx.chunk_sha256(i).unwrap(), Sha256Digest::of(data));
                next = r.end;
            }
            prop_assert_eq!(next, len as u64);
        }
    }
}
