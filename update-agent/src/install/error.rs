//! Why an install stopped. Refusals ([`Refusal`]) happen before anything is
//! written and leave both slots untouched; the other errors leave the
//! booted slot untouched and the inactive slot cleared, never armed.

use moho_core::slot_table::SlotName;
use moho_core::transitions::TransitionError;
use moho_disk::DiskError;
use moho_release::VerifyError;

use super::readback::ReadBackError;
use super::slot_io::SlotIoError;
use super::stream::StreamError;
use crate::atomic_file::AtomicFileError;
use crate::denylist::DenyListError;
use crate::os_release::OsReleaseError;
use crate::repo_client::RepoError;
use crate::service::disk::NodeDiskError;
use crate::state::KeeperError;

/// A pre-flight check that failed: nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// DESIGN §3.1.
    #[error(
        "booted slot {booted} is not marked successful, so slot {inactive} is the fallback \
         and must not be overwritten (run mark-good once the system is healthy)"
    )]
    BootedNotSuccessful {
        /// Booted slot.
        booted: SlotName,
        /// Inactive slot.
        inactive: SlotName,
    },
    /// The image does not fit.
    #[error("image {target} is {image} bytes but slot {slot} holds only {slot_len}")]
    SlotTooSmall {
        /// The image.
        target: String,
        /// Its length.
        image: u64,
        /// The slot.
        slot: SlotName,
        /// Its length.
        slot_len: u64,
    },
    /// On the local deny list.
    #[error(
        "version {version} is on the local deny list ({reason}, {count} time(s)); clear it with `update-agent denylist --clear {version}`"
    )]
    Denied {
        /// The version.
        version: String,
        /// Why.
        reason: String,
        /// How often.
        count: u32,
    },
    /// The release cannot be applied to this node (board, channel, downgrade, ...).
    #[error("{0}")]
    Release(VerifyError),
    /// No release with that version for this board.
    #[error("no release {version} for board {board} in the repository")]
    NoSuchVersion {
        /// The version.
        version: String,
        /// The board.
        board: String,
    },
}

/// An install that stopped.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Refused before writing anything.
    #[error("{disk}: refusing to install: {refusal}")]
    Refused {
        /// The disk.
        disk: String,
        /// Why.
        refusal: Refusal,
    },
    /// The repository could not be loaded or does not verify.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A signed file did not verify.
    #[error("{0}")]
    Verify(#[from] VerifyError),
    /// Streaming the image failed.
    #[error("writing slot {slot}: {source}")]
    Stream {
        /// The slot.
        slot: SlotName,
        /// Why.
        source: StreamError,
    },
    /// The slot does not read back as the signed image.
    #[error("verifying slot {slot}: {source}")]
    ReadBack {
        /// The slot.
        slot: SlotName,
        /// Why.
        source: ReadBackError,
    },
    /// Slot I/O outside the stream.
    #[error(transparent)]
    SlotIo(#[from] SlotIoError),
    /// The partition table.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// A slot transition refused.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The booted version.
    #[error(transparent)]
    OsRelease(#[from] OsReleaseError),
    /// The deny list.
    #[error(transparent)]
    DenyList(#[from] DenyListError),
    /// The slots' bytes could not be reached.
    #[error(transparent)]
    NodeDisk(#[from] NodeDiskError),
    /// The journal.
    #[error(transparent)]
    Journal(#[from] AtomicFileError),
    /// The state's owner could not record a step (a transition out of
    /// order, or the state file).
    #[error(transparent)]
    State(#[from] KeeperError),
}
