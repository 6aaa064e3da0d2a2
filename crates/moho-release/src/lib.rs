//! Node-side verification of Moho releases (DESIGN §5): the code the agent,
//! the server and `image-tools verify` share to decide whether a signed TUF
//! repository, a release in it and the bytes of an image can be trusted.
//!
//! No I/O, no async, no clock: the caller supplies metadata bytes (through a
//! [`MetadataSource`] or by driving a [`RepositoryLoad`] itself), target
//! bytes and the current time.
//!
//! ```text
//! trusted root.json + TrustedState + now
//!     └─ load_repository(source) ─► VerifiedRepository      (TUF client workflow)
//!            ├─ releases()        ─► ReleaseTarget...        (listing: ImageTargetCustom)
//!            └─ release_for(name, NodeContext) ─► VerifiedRelease   (board, channel, versions)
//!                   └─ verify_chunk_index(bytes) ─► VerifiedChunkIndex
//!                          ├─ verify_chunk(i, data)      (before writing chunk i)
//!                          └─ verify_image(reader)        (whole image, after writing)
//! ```
//!
//! Every refusal is a [`VerifyError`] variant naming the attack.
//!
//! - [`load`] — the client workflow as an I/O-free state machine.
//! - [`source`] — the metadata source trait, an in-memory source, the driver loop.
//! - [`repository`] — the verified repository, its targets, the rollback state.
//! - [`release`] — the release descriptor and image/chunk checks.
//! - [`chunk_index`] — the chunk index format.
//! - [`target_name`] — the `<board>/<version>/<file>` rule.
//! - [`layout`] — where a target's file is (`dir/HASH.basename`, and the legacy layout).
//! - [`content_range`] — the `206` answer a range request accepts.
//! - [`digest`] — SHA-256.
//! - [`error`] — the refusals.

pub mod chunk_index;
pub mod content_range;
pub mod digest;
pub mod error;
pub mod layout;
pub mod load;
pub mod release;
pub mod repository;
mod signatures;
pub mod source;
pub mod target_name;

pub use chunk_index::{ChunkIndex, ChunkIndexError};
pub use content_range::{ContentRangeError, check_partial_content};
pub use digest::Sha256Digest;
pub use error::{FetchError, VerifyError};
pub use layout::Layout;
pub use load::{Limits, LoadStep, MetadataRequest, RepositoryLoad};
pub use release::{NodeContext, VerifiedChunkIndex, VerifiedRelease};
pub use repository::{
    Expiry, ReleaseTarget, TargetInfo, TrustedMetadata, TrustedState, VerifiedRepository,
};
pub use source::{
    MemorySource, MetadataSource, load_for_publishing, load_repository, load_repository_with,
};
pub use target_name::{TargetNameError, validate_target_name};
