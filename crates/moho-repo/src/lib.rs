//! Editing and signing the Moho release repository (DESIGN §5): the
//! publisher's side of the TUF repository whose nodes' side is
//! `moho-release`. Shared by `image-tools` (the release engineer's `repo`
//! commands) and `update-server` (re-signing the online roles), so that
//! neither binary depends on the other.
//!
//! ```text
//! Current::load(source, trusted root)          the nodes' checks, expiry aside
//!   └─ init | add | promote | refresh | rotate (current, keys, expiries, now)
//!        ─► Publication (signed, in memory)
//!             └─ verify(base, root, now)       as a node would load the result
//!                  └─ RepoDir::publish / the server's staged switch   (the only writes)
//! ```
//!
//! No runtime, no clock: `now` is an argument of every edit; signing drives
//! `tough`'s async signer with a plain `block_on`. I/O only where a caller
//! asks for it: key files ([`keys`]) and repository directories ([`dir`]).
//!
//! - [`current`] — the repository an edit starts from.
//! - [`init`], [`add`], [`promote`], [`refresh`], [`rotate`] — the edits.
//! - [`publication`] — what an edit publishes, and the check before writing.
//! - [`sign`] — versions, expiries, signatures.
//! - [`dir`] — a repository directory and the order of its writes.
//! - [`migrate`] — the legacy target layout to the TUF specification's, in place.
//! - [`keys`] — ed25519 key files.
//! - [`error`] — refusals and failures.

pub mod add;
pub mod current;
pub mod dir;
pub mod error;
pub mod init;
pub mod keys;
pub mod migrate;
pub mod promote;
pub mod publication;
pub mod refresh;
pub mod rotate;
pub mod sign;

pub use add::{Added, ImageFile, NewRelease, add};
pub use current::Current;
pub use dir::{DirSource, RepoDir};
pub use error::RepoError;
pub use init::{Initialized, Thresholds, init};
pub use keys::{KeyError, KeyFile, KeyRing};
pub use migrate::{Migration, migrate};
pub use promote::{Promoted, promote};
pub use publication::{NewTarget, Publication, TargetContent};
pub use refresh::{Refreshed, refresh};
pub use rotate::{NewThresholds, Rotated, rotate};
pub use sign::{Expiries, expires_at};
