//! Pure logic shared by every Moho component.
//!
//! Nothing in this crate performs I/O, reads the clock or spawns tasks: the
//! disk, the network and time are the callers' business, and every decision
//! here is a function of its arguments so that it can be tested exhaustively.
//!
//! - [`slot_attrs`]: the GPT attribute codec (priority, tries, successful).
//! - [`slot_table`]: the two root slots of a disk as the selector sees them.
//! - [`selection`]: the boot-time choice (`gptprio.next`) and its fallback.
//! - [`transitions`]: the checked updates the agent makes to the slot table.
//! - [`layout`]: the disk layout of DESIGN §2 (labels, type GUIDs, geometry).
//! - [`release`]: the custom metadata a signed image target carries.
//! - [`report`]: one-line rendering of an error chain.
//! - [`cmdline`]: what the kernel command line says about the booted slot.
//! - [`boot_files`]: what a slot's `/boot` holds and the command line its kernel gets.
//! - [`state_growth`]: how far `STATE` grows to fill a grown disk.

pub mod boot_files;
pub mod cmdline;
pub mod layout;
pub mod release;
pub mod report;
pub mod selection;
pub mod slot_attrs;
pub mod slot_table;
pub mod state_growth;
pub mod transitions;

pub use selection::{BootChoice, BootReason, NoBootableSlot, select_boot};
pub use slot_attrs::{AttrValueError, SlotAttributes};
pub use slot_table::{SlotEntry, SlotName, SlotTable};
pub use transitions::TransitionError;
