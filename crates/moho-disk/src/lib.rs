//! GPT I/O for Moho disks: the "disk" external system of DESIGN §1.
//!
//! - [`device`]: opening a disk image file or block device, its size and
//!   logical sector size, flushing.
//! - [`gpt_read`]: reading both GPT copies, checking each one's header and
//!   entry-array CRCs, and choosing the copy to trust.
//! - [`gpt_place`]: where both copies belong on a disk of a given size
//!   (moving the backup to the end of a grown disk), pure.
//! - [`gpt_commit`]: writing an edited table back so that a torn write always
//!   leaves one valid copy (backup first, then primary, each flushed).
//! - [`slot_disk`]: the narrow [`SlotDisk`] trait the agent uses, its GPT
//!   implementation and a recording fake.
//! - [`create`]: writing a fresh Moho layout onto an empty disk.
//! - [`kernel`]: bringing the kernel's partition view up to date (BLKRRPART,
//!   or BLKPG add/delete where the kernel does not parse GPT itself).
//!
//! The pure rules (which slot boots, which changes are allowed) live in
//! `moho-core`; this crate only reads and writes.

pub mod backup_window;
pub mod create;
pub mod device;
pub mod error;
pub mod gpt_commit;
pub mod gpt_place;
pub mod gpt_read;
pub mod kernel;
pub mod slot_disk;

pub use error::DiskError;
pub use gpt_read::{CopyHealth, TableHealth};
pub use slot_disk::{FakeSlotDisk, GptSlotDisk, SlotDisk, SlotDiskCall, SlotExtent};
