//! The slot service: show, predict and change the slot table, for the
//! `slots` CLI, `mark-good`, and the daemon (rollback, cancel, abandoning a
//! failed trial).
//!
//! Every operation reads the table through [`SlotDisk`], computes the change
//! with the pure functions of `moho_core::transitions` and commits it in one
//! compare-and-swap write. A refused change writes nothing.

use std::fmt;

use moho_core::selection::{BootReason, NoBootableSlot, select_boot};
use moho_core::slot_table::{SlotName, SlotTable};
use moho_core::transitions::{self, FieldChange, TransitionError};
use moho_disk::{DiskError, SlotDisk};

use crate::booted::{Booted, BootedError, detect_booted};
use crate::slots_view::SlotsView;
use crate::system::SystemView;

/// What a slot operation needs: the disk, the running system, and the
/// booted-slot override.
pub struct SlotService<'a> {
    /// The disk holding the slots.
    pub disk: &'a mut dyn SlotDisk,
    /// The running system.
    pub system: &'a dyn SystemView,
    /// `--booted`, if given.
    pub booted_override: Option<SlotName>,
}

impl fmt::Debug for SlotService<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotService")
            .field("disk", &self.disk.path())
            .field("booted_override", &self.booted_override)
            .finish()
    }
}

/// Why a slot command failed.
#[derive(Debug, thiserror::Error)]
pub enum SlotsError {
    /// Reading or writing the disk failed.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// The booted-slot hints could not be read.
    #[error("{disk}: cannot tell the booted slot: {source}")]
    Booted {
        /// The disk.
        disk: String,
        /// Why.
        source: BootedError,
    },
    /// The command needs the booted slot and it is unknown.
    #[error(
        "{disk}: cannot tell which slot is booted (no moho.slot= or root=PARTUUID= on the \
         kernel command line, and / is not on this disk); {needed_for} needs it: pass --booted A|B"
    )]
    BootedUnknown {
        /// The disk.
        disk: String,
        /// The command that needed it.
        needed_for: &'static str,
    },
    /// The change would break an invariant; nothing was written.
    #[error("{disk}: {source}; nothing written")]
    Refused {
        /// The disk.
        disk: String,
        /// The invariant.
        source: TransitionError,
    },
    /// No slot can be booted.
    #[error("{disk}: {source}")]
    NoBootable {
        /// The disk.
        disk: String,
        /// The table.
        source: Box<NoBootableSlot>,
    },
}

/// A committed change to one or both slots.
#[derive(Debug, Clone)]
pub struct SlotChange {
    /// What was done.
    pub action: String,
    /// The table before.
    pub before: SlotTable,
    /// The table after.
    pub after: SlotTable,
}

impl fmt::Display for SlotChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.action)?;
        for n in SlotName::ALL {
            let (b, a) = (self.before.attrs(n), self.after.attrs(n));
            let mut fields = Vec::new();
            if a.priority() != b.priority() {
                fields.push(format!("priority {} -> {}", b.priority(), a.priority()));
            }
            if a.tries() != b.tries() {
                fields.push(format!("tries {} -> {}", b.tries(), a.tries()));
            }
            if a.successful() != b.successful() {
                fields.push(format!(
                    "successful {} -> {}",
                    b.successful(),
                    a.successful()
                ));
            }
            if !fields.is_empty() {
                write!(f, "\n  slot {n}: {}", fields.join(", "))?;
            }
        }
        Ok(())
    }
}

/// The outcome of a simulated boot.
#[derive(Debug, Clone)]
pub struct BootOutcome {
    /// The slot chosen.
    pub slot: SlotName,
    /// Why.
    pub reason: BootReason,
    /// Tries left on it after the boot.
    pub tries_left: u8,
}

impl SlotService<'_> {
    fn disk_name(&self) -> String {
        self.disk.path().display().to_string()
    }

    fn booted(&self, table: &SlotTable) -> Result<Option<Booted>, SlotsError> {
        detect_booted(self.system, self.booted_override, table, self.disk.path()).map_err(
            |source| SlotsError::Booted {
                disk: self.disk_name(),
                source,
            },
        )
    }

    fn require_booted(
        &self,
        table: &SlotTable,
        needed_for: &'static str,
    ) -> Result<SlotName, SlotsError> {
        self.booted(table)?
            .map(|b| b.slot)
            .ok_or_else(|| SlotsError::BootedUnknown {
                disk: self.disk_name(),
                needed_for,
            })
    }

    fn refused(&self, source: TransitionError) -> SlotsError {
        SlotsError::Refused {
            disk: self.disk_name(),
            source,
        }
    }

    fn commit(
        &mut self,
        before: SlotTable,
        after: SlotTable,
        action: String,
    ) -> Result<SlotChange, SlotsError> {
        self.disk.commit_slots(&before, &after)?;
        Ok(SlotChange {
            action,
            before,
            after,
        })
    }

    /// `slots`: the table.
    pub fn show(&mut self) -> Result<SlotsView, SlotsError> {
        let table = self.disk.read_slots()?;
        let booted = self.booted(&table)?;
        Ok(SlotsView::new(
            &self.disk_name(),
            &table,
            booted,
            &self.disk.health(),
        ))
    }

    /// `slots next`: the slot the selector would boot; writes nothing.
    pub fn next_boot(&mut self) -> Result<SlotName, SlotsError> {
        let table = self.disk.read_slots()?;
        select_boot(&table)
            .map(|c| c.slot)
            .map_err(|source| SlotsError::NoBootable {
                disk: self.disk_name(),
                source: Box::new(source),
            })
    }

    /// `slots boot`: what the boot selector does: choose, use up a try,
    /// write, and report the slot.
    pub fn boot(&mut self) -> Result<BootOutcome, SlotsError> {
        let table = self.disk.read_slots()?;
        let choice = select_boot(&table).map_err(|source| SlotsError::NoBootable {
            disk: self.disk_name(),
            source: Box::new(source),
        })?;
        if choice.needs_write(&table) {
            self.disk.commit_slots(&table, &choice.table)?;
        }
        Ok(BootOutcome {
            slot: choice.slot,
            reason: choice.reason,
            tries_left: choice.table.attrs(choice.slot).tries(),
        })
    }

    /// `slots mark-good [--slot S]`: the booted slot (or `slot`) is healthy.
    pub fn mark_good(&mut self, slot: Option<SlotName>) -> Result<SlotChange, SlotsError> {
        let table = self.disk.read_slots()?;
        let booted = self.booted(&table)?.map(|b| b.slot);
        let slot = match (slot, booted) {
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) => {
                return Err(SlotsError::BootedUnknown {
                    disk: self.disk_name(),
                    needed_for: "mark-good without --slot",
                });
            }
        };
        let after = transitions::mark_good(&table, booted, slot).map_err(|e| self.refused(e))?;
        self.commit(table, after, format!("slot {slot} marked good"))
    }

    /// The booted slot if it is already marked successful, so that
    /// `mark-good` has nothing to do (and need not wait for a daemon busy
    /// writing an update).
    pub fn booted_already_good(&mut self) -> Result<Option<SlotName>, SlotsError> {
        let table = self.disk.read_slots()?;
        let booted = self.booted(&table)?.map(|b| b.slot);
        Ok(booted.filter(|s| table.attrs(*s).successful()))
    }

    /// `slots rollback`: make the other (successful) slot boot next.
    pub fn rollback(&mut self) -> Result<SlotChange, SlotsError> {
        let table = self.disk.read_slots()?;
        let booted = self.require_booted(&table, "rollback")?;
        let after = transitions::rollback(&table, booted).map_err(|e| self.refused(e))?;
        self.commit(
            table,
            after,
            format!(
                "slot {} will boot next (rolled back from {booted})",
                booted.other()
            ),
        )
    }

    /// `update-agent cancel`, or the server's "cancel": withdraws the armed,
    /// not yet booted update from the inactive slot (`cancel_armed`).
    pub fn cancel_armed(&mut self) -> Result<SlotChange, SlotsError> {
        let table = self.disk.read_slots()?;
        let booted = self.require_booted(&table, "cancel")?;
        let after = transitions::cancel_armed(&table, booted).map_err(|e| self.refused(e))?;
        self.commit(
            table,
            after,
            format!("the update in slot {} was cancelled", booted.other()),
        )
    }

    /// A failed trial: the booted slot is taken out of the running and the
    /// other (successful) slot boots next (`abandon_trial`).
    pub fn abandon_trial(&mut self) -> Result<SlotChange, SlotsError> {
        let table = self.disk.read_slots()?;
        let booted = self.require_booted(&table, "abandoning a trial")?;
        let after = transitions::abandon_trial(&table, booted).map_err(|e| self.refused(e))?;
        self.commit(
            table,
            after,
            format!(
                "slot {booted}'s trial abandoned; slot {} boots next",
                booted.other()
            ),
        )
    }

    /// `slots set S ...`: raw field changes (an operator's tool).
    pub fn set(
        &mut self,
        slot: SlotName,
        change: FieldChange,
        force: bool,
    ) -> Result<SlotChange, SlotsError> {
        let table = self.disk.read_slots()?;
        let booted = self.booted(&table)?.map(|b| b.slot);
        let after = transitions::set_fields(&table, booted, slot, change, force)
            .map_err(|e| self.refused(e))?;
        self.commit(table, after, format!("slot {slot} updated"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::FakeSystem;
    use moho_core::slot_attrs::SlotAttributes;
    use moho_core::slot_table::SlotEntry;
    use moho_disk::{FakeSlotDisk, SlotDiskCall};
    use uuid::Uuid;

    fn disk(a: (u8, u8, bool), b: (u8, u8, bool)) -> FakeSlotDisk {
        let e = |n: u32, l: &str, (p, t, s): (u8, u8, bool)| SlotEntry {
            partition: n,
            label: l.into(),
            partuuid: Uuid::from_u128(u128::from(n)),
            attrs: SlotAttributes::default().with_fields(p, t, s).unwrap(),
        };
        FakeSlotDisk::new(SlotTable {
            a: e(2, "ROOT-A", a),
            b: e(3, "ROOT-B", b),
        })
    }

    fn ctx<'a>(
        d: &'a mut FakeSlotDisk,
        sys: &'a FakeSystem,
        booted: Option<SlotName>,
    ) -> SlotService<'a> {
        SlotService {
            disk: d,
            system: sys,
            booted_override: booted,
        }
    }

    #[test]
    fn boot_uses_a_try_and_writes_once() {
        let mut d = disk((1, 0, true), (2, 1, false));
        let sys = FakeSystem::default();
        let out = ctx(&mut d, &sys, None).boot().unwrap();
        assert_eq!((out.slot, out.tries_left), (SlotName::B, 0));
        assert_eq!(d.commits().len(), 1);
        // Next boot: B is spent, A is chosen and nothing is written.
        let out = ctx(&mut d, &sys, None).boot().unwrap();
        assert_eq!(out.slot, SlotName::A);
        assert_eq!(d.commits().len(), 1);
    }

    #[test]
    fn a_refused_change_writes_nothing() {
        let mut d = disk((1, 0, true), (2, 0, false));
        let sys = FakeSystem::default();
        let err = ctx(&mut d, &sys, Some(SlotName::B)).set(
            SlotName::A,
            FieldChange {
                priority: Some(0),
                ..FieldChange::default()
            },
            false,
        );
        let msg = err.unwrap_err().to_string();
        assert!(
            msg.contains("booted slot B is not marked successful"),
            "{msg}"
        );
        assert!(msg.ends_with("nothing written"), "{msg}");
        assert_eq!(d.calls, vec![SlotDiskCall::Read]);
    }

    #[test]
    fn mark_good_defaults_to_the_booted_slot_from_the_cmdline() {
        let mut d = disk((1, 0, true), (2, 0, false));
        let sys = FakeSystem {
            cmdline: "moho.slot=B".into(),
            root: None,
        };
        let change = ctx(&mut d, &sys, None).mark_good(None).unwrap();
        assert!(change.after.attrs(SlotName::B).successful());
        assert!(d.table.b.attrs.successful());
    }

    #[test]
    fn cancel_clears_only_an_armed_update_and_abandon_falls_back() {
        let mut d = disk((1, 0, true), (2, 1, false));
        let sys = FakeSystem::default();
        let change = ctx(&mut d, &sys, Some(SlotName::A)).cancel_armed().unwrap();
        assert_eq!(change.after.attrs(SlotName::B).priority(), 0);
        assert_eq!(d.table.b.attrs.priority(), 0);
        // Nothing armed any more: refused, nothing written.
        let commits = d.commits().len();
        let err = ctx(&mut d, &sys, Some(SlotName::A))
            .cancel_armed()
            .unwrap_err();
        assert!(err.to_string().contains("nothing to cancel"), "{err}");
        assert_eq!(d.commits().len(), commits);

        let mut d = disk((1, 0, true), (2, 0, false));
        let change = ctx(&mut d, &sys, Some(SlotName::B))
            .abandon_trial()
            .unwrap();
        assert_eq!(
            change.to_string(),
            "slot B's trial abandoned; slot A boots next\n  slot A: priority 1 -> 2\n  slot B: priority 2 -> 0"
        );
    }

    #[test]
    fn commands_that_need_the_booted_slot_say_so() {
        let mut d = disk((1, 0, true), (1, 0, true));
        let sys = FakeSystem::default();
        let err = ctx(&mut d, &sys, None).rollback().unwrap_err();
        assert!(matches!(
            err,
            SlotsError::BootedUnknown {
                needed_for: "rollback",
                ..
            }
        ));
        assert!(err.to_string().contains("pass --booted A|B"));
    }
}
