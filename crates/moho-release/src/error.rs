//! Why a repository, a release or an image was refused.
//!
//! One variant per attack or defect, so that the agent can report *what* was
//! wrong (a bad signature is not the same event as expired metadata) and the
//! tests can tell the cases apart. Every message names the metadata file or
//! target and the offending value.

use std::io;

use tough::schema::RoleType;

use crate::chunk_index::ChunkIndexError;
use crate::digest::Sha256Digest;
use crate::target_name::TargetNameError;

/// A repository, release or image that must not be trusted, or a fetch that failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The caller's source could not deliver a file (network, disk, ...).
    #[error("{file}: fetch failed: {source}")]
    Fetch {
        /// The metadata file or target path.
        file: String,
        /// Why.
        source: FetchError,
    },
    /// A file the repository must have is missing.
    #[error("{file}: not found in the repository")]
    MissingMetadata {
        /// The metadata file.
        file: String,
    },
    /// A file is larger than it may be (endless-data attack).
    #[error("{file}: larger than the {limit}-byte limit")]
    TooLarge {
        /// The metadata file.
        file: String,
        /// The limit (from signed metadata or the configured maximum).
        limit: u64,
    },
    /// Metadata that is not valid JSON of the expected TUF shape.
    #[error("{file}: malformed metadata: {reason}")]
    Malformed {
        /// The metadata file (`trusted root` for the caller's root).
        file: String,
        /// What the parser said.
        reason: String,
    },
    /// A signature by a key the role does not trust, and not enough trusted ones.
    #[error(
        "{file}: signed by key {keyid}, which is not a {role} key, and no threshold of {role} keys signed it"
    )]
    UnknownKey {
        /// The metadata file.
        file: String,
        /// The role whose keys were required.
        role: RoleType,
        /// The unknown key id (hex).
        keyid: String,
    },
    /// A signature by a trusted key that does not verify (tampered metadata).
    #[error(
        "{file}: bad signature by {role} key {keyid}: the content was altered or the signature forged"
    )]
    BadSignature {
        /// The metadata file.
        file: String,
        /// The role.
        role: RoleType,
        /// The key id (hex).
        keyid: String,
    },
    /// The same key signed more than once; it counts once.
    #[error(
        "{file}: key {keyid} signed more than once; duplicate signatures do not count towards the {role} threshold"
    )]
    DuplicateSignature {
        /// The metadata file.
        file: String,
        /// The role.
        role: RoleType,
        /// The key id (hex).
        keyid: String,
    },
    /// Valid signatures, but fewer than the role's threshold.
    #[error("{file}: {valid} valid {role} signature(s), the threshold is {threshold}")]
    ThresholdNotMet {
        /// The metadata file.
        file: String,
        /// The role.
        role: RoleType,
        /// Distinct valid signatures found.
        valid: usize,
        /// Signatures required.
        threshold: u64,
    },
    /// A key type this verifier does not accept (Moho signs with ed25519 only).
    #[error("{file}: {role} key {keyid} is of an unsupported type (only ed25519 is accepted)")]
    UnsupportedKey {
        /// The metadata file.
        file: String,
        /// The role.
        role: RoleType,
        /// The key id (hex).
        keyid: String,
    },
    /// Metadata past its expiry date (freeze attack, or a repository nobody refreshed).
    #[error(
        "{role} metadata expired at {expires} (now {now}): possible freeze attack, or the repository was not refreshed"
    )]
    Expired {
        /// The role.
        role: RoleType,
        /// Its `expires` (RFC 3339).
        expires: String,
        /// The injected current time (RFC 3339).
        now: String,
    },
    /// A metadata version older than the one already trusted (rollback / replay attack).
    #[error(
        "{role} metadata version {offered} is older than the trusted version {trusted}: rollback attack"
    )]
    Rollback {
        /// The role.
        role: RoleType,
        /// The version this node already trusts.
        trusted: u64,
        /// The version offered now.
        offered: u64,
    },
    /// A root in the rotation chain does not carry the version its file name promises.
    #[error("{file}: carries root version {found}, expected {expected}")]
    RootVersionMismatch {
        /// The metadata file (`N.root.json`).
        file: String,
        /// The version required.
        expected: u64,
        /// The version found.
        found: u64,
    },
    /// Metadata whose version differs from the one the referring role signed.
    #[error(
        "{file}: version {found}, but {referrer} lists version {expected}: inconsistent snapshot"
    )]
    VersionMismatch {
        /// The metadata file.
        file: String,
        /// The role that lists it (`timestamp.json` or `snapshot.json`).
        referrer: &'static str,
        /// The version listed.
        expected: u64,
        /// The version found.
        found: u64,
    },
    /// Metadata whose hash differs from the one the referring role signed.
    #[error("{file}: sha-256 {actual}, but {referrer} lists {expected}: the file was altered")]
    MetadataHashMismatch {
        /// The metadata file.
        file: String,
        /// The role that lists it.
        referrer: &'static str,
        /// The hash listed.
        expected: Sha256Digest,
        /// The hash of the bytes received.
        actual: Sha256Digest,
    },
    /// Metadata whose length differs from the one the referring role signed.
    #[error("{file}: {actual} bytes, but {referrer} lists {expected}: the file was altered")]
    MetadataLengthMismatch {
        /// The metadata file.
        file: String,
        /// The role that lists it.
        referrer: &'static str,
        /// The length listed.
        expected: u64,
        /// The length received.
        actual: u64,
    },
    /// Delegated targets roles are not part of Moho's trust model.
    #[error("{file}: delegated targets roles are not supported")]
    DelegationsUnsupported {
        /// The metadata file.
        file: String,
    },
    /// A target name that is not `<board>/<version>/<file>` or tries to leave the targets directory.
    #[error("target {name:?}: {source}")]
    UnsafeTargetName {
        /// The name as signed.
        name: String,
        /// What is wrong with it.
        source: TargetNameError,
    },
    /// The target is not listed in the signed targets metadata.
    #[error("target {name}: not signed in this repository")]
    TargetNotFound {
        /// The name asked for.
        name: String,
    },
    /// The target exists but is not an OS image (it has no image `custom` metadata).
    #[error("target {name}: not an OS image target (no release metadata)")]
    NotAnImage {
        /// The target name.
        name: String,
    },
    /// The `custom` metadata of an image target is not what Moho writes.
    #[error("target {name}: bad release metadata: {reason}")]
    MalformedCustom {
        /// The target name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The release is for another board.
    #[error("target {name}: built for board {board}, this node is {node_board}")]
    WrongBoard {
        /// The target name.
        name: String,
        /// The board it is signed for.
        board: String,
        /// The node's board.
        node_board: String,
    },
    /// The release is not signed for the node's channel.
    #[error("target {name}: not signed for channel {channel} (signed for: {signed})")]
    ChannelNotSigned {
        /// The target name.
        name: String,
        /// The node's channel.
        channel: String,
        /// The channels it is signed for, comma-separated.
        signed: String,
    },
    /// The release is not newer than what the node runs.
    #[error(
        "target {name}: version {version} is not newer than the running {current}: downgrade refused"
    )]
    Downgrade {
        /// The target name.
        name: String,
        /// The release version.
        version: String,
        /// The node's version.
        current: String,
    },
    /// The node runs a version older than the release may be applied from.
    #[error(
        "target {name}: may only be applied from {min_version} or later, this node runs {current}"
    )]
    BelowMinVersion {
        /// The target name.
        name: String,
        /// The release's minimum version.
        min_version: String,
        /// The node's version.
        current: String,
    },
    /// Target bytes of the wrong length.
    #[error("target {name}: {actual} bytes, the signed length is {expected}")]
    TargetLengthMismatch {
        /// The target name.
        name: String,
        /// The signed length.
        expected: u64,
        /// The length received.
        actual: u64,
    },
    /// Target bytes with the wrong hash.
    #[error("target {name}: sha-256 {actual}, the signed hash is {expected}: the file was altered")]
    TargetHashMismatch {
        /// The target name.
        name: String,
        /// The signed hash.
        expected: Sha256Digest,
        /// The hash of the bytes received.
        actual: Sha256Digest,
    },
    /// The chunk index bytes are not the signed chunk index.
    #[error("chunk index {name}: {detail}: the chunk index was altered")]
    ChunkIndexAltered {
        /// The chunk index target name.
        name: String,
        /// Length or hash, signed and received.
        detail: String,
    },
    /// The chunk index is not a valid chunk index.
    #[error("chunk index {name}: {source}")]
    ChunkIndex {
        /// The chunk index target name.
        name: String,
        /// What is wrong.
        source: ChunkIndexError,
    },
    /// The chunk index does not describe the image it is published with.
    #[error(
        "chunk index {name}: its {field} ({index_value}) differs from the signed image target ({signed_value})"
    )]
    ChunkIndexMismatch {
        /// The chunk index target name.
        name: String,
        /// Which field.
        field: &'static str,
        /// What the chunk index says.
        index_value: String,
        /// What the signed image target says.
        signed_value: String,
    },
    /// One chunk of an image does not match the chunk index.
    #[error(
        "image {name}: chunk {index} (bytes {offset}..{end}) does not match the signed chunk index: the image was altered"
    )]
    ChunkMismatch {
        /// The image target name.
        name: String,
        /// Chunk number.
        index: u64,
        /// First byte of the chunk.
        offset: u64,
        /// One past its last byte.
        end: u64,
    },
    /// A chunk number past the end of the image, or a chunk of the wrong size.
    #[error("image {name}: chunk {index} has {actual} bytes, expected {expected}")]
    ChunkLength {
        /// The image target name.
        name: String,
        /// Chunk number.
        index: u64,
        /// The length the index gives (0 if the chunk does not exist).
        expected: u64,
        /// The length supplied.
        actual: u64,
    },
    /// Reading image bytes from the caller's reader failed.
    #[error("image {name}: read failed at byte {offset}: {source}")]
    Read {
        /// The image target name.
        name: String,
        /// Where.
        offset: u64,
        /// Why.
        source: io::Error,
    },
}

/// A failure of the caller's [`MetadataSource`](crate::MetadataSource): not a verdict on the data.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct FetchError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl FetchError {
    /// Wraps any error of the caller's transport.
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self(err.into())
    }
}
