//! The boot-time choice of a slot: the CoreOS GRUB `gptprio.next` rule, plus
//! Moho's no-eligible-slot fallback (DESIGN §4).
//!
//! A slot is eligible when its priority is above 0 and it either has tries
//! left or was marked successful. The eligible slot with the highest priority
//! wins; a tie goes to the lower partition number. If the winner has tries
//! left, one is used up and the table must be written before booting it.
//!
//! If no slot is eligible, the selector boots the slot that last booted
//! successfully (the successful bit is that record) and says so; only a disk
//! with no successful slot at all has nothing to boot.

use std::fmt;

use crate::slot_table::{SlotName, SlotTable};

/// Why the selector chose the slot it chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootReason {
    /// The normal rule picked an eligible slot.
    Eligible,
    /// Nothing was eligible; this slot booted successfully before.
    FallbackLastGood,
}

/// The selector's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootChoice {
    /// The slot to boot.
    pub slot: SlotName,
    /// Why.
    pub reason: BootReason,
    /// The table to write before booting (tries decremented), or the same
    /// table when nothing changes.
    pub table: SlotTable,
}

impl BootChoice {
    /// Whether the table must be written before the slot is booted.
    pub fn needs_write(&self, before: &SlotTable) -> bool {
        self.table != *before
    }
}

/// No slot is eligible and none ever booted successfully.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct NoBootableSlot {
    /// The table the selector looked at.
    pub table: SlotTable,
}

impl fmt::Display for NoBootableSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no bootable slot:")?;
        for name in SlotName::ALL {
            let a = self.table.attrs(name);
            write!(
                f,
                " {name} (partition {}) priority {} tries {} successful {};",
                self.table.get(name).partition,
                a.priority(),
                a.tries(),
                a.successful()
            )?;
        }
        write!(f, " none is eligible and none ever booted successfully")
    }
}

/// Picks the slot to boot and computes the table to write first.
pub fn select_boot(table: &SlotTable) -> Result<BootChoice, NoBootableSlot> {
    if let Some(slot) = best(table, |n| table.attrs(n).is_eligible()) {
        let mut next = table.clone();
        let entry = next.get_mut(slot);
        entry.attrs = entry.attrs.with_one_try_used();
        return Ok(BootChoice {
            slot,
            reason: BootReason::Eligible,
            table: next,
        });
    }
    match best(table, |n| table.attrs(n).successful()) {
        Some(slot) => Ok(BootChoice {
            slot,
            reason: BootReason::FallbackLastGood,
            table: table.clone(),
        }),
        None => Err(NoBootableSlot {
            table: table.clone(),
        }),
    }
}

/// The slot the selector would boot next, without changing anything.
pub fn next_boot(table: &SlotTable) -> Result<SlotName, NoBootableSlot> {
    select_boot(table).map(|c| c.slot)
}

/// Among the slots passing `keep`, the highest priority, ties to the lower
/// partition number.
fn best(table: &SlotTable, keep: impl Fn(SlotName) -> bool) -> Option<SlotName> {
    SlotName::ALL
        .into_iter()
        .filter(|&n| keep(n))
        .min_by_key(|&n| {
            (
                std::cmp::Reverse(table.attrs(n).priority()),
                table.get(n).partition,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot_table::fixtures::table;

    #[test]
    fn highest_priority_eligible_wins_and_uses_a_try() {
        let t = table((1, 0, true), (2, 1, false));
        let c = select_boot(&t).unwrap();
        assert_eq!(c.slot, SlotName::B);
        assert_eq!(c.reason, BootReason::Eligible);
        assert_eq!(c.table.attrs(SlotName::B).tries(), 0);
        assert!(c.needs_write(&t));
        // The next boot: B has no tries and is not successful, so A.
        let c2 = select_boot(&c.table).unwrap();
        assert_eq!(c2.slot, SlotName::A);
        assert!(!c2.needs_write(&c.table));
    }

    #[test]
    fn ties_go_to_the_lower_partition_number() {
        let mut t = table((3, 0, true), (3, 0, true));
        assert_eq!(next_boot(&t).unwrap(), SlotName::A);
        // Swap partition numbers: B now sits on the lower partition.
        t.a.partition = 5;
        assert_eq!(next_boot(&t).unwrap(), SlotName::B);
    }

    #[test]
    fn successful_slot_without_tries_is_eligible() {
        let t = table((1, 0, true), (0, 0, false));
        let c = select_boot(&t).unwrap();
        assert_eq!(c.slot, SlotName::A);
        assert!(!c.needs_write(&t));
    }

    #[test]
    fn falls_back_to_the_last_good_slot_when_nothing_is_eligible() {
        let t = table((0, 0, true), (2, 0, false));
        let c = select_boot(&t).unwrap();
        assert_eq!(c.slot, SlotName::A);
        assert_eq!(c.reason, BootReason::FallbackLastGood);
        assert!(!c.needs_write(&t));
    }

    #[test]
    fn no_successful_slot_and_nothing_eligible_is_an_error() {
        let t = table((0, 0, false), (1, 0, false));
        let err = select_boot(&t).unwrap_err();
        assert!(
            err.to_string()
                .contains("B (partition 3) priority 1 tries 0")
        );
    }
}
