//! The boot selector's decisions, without I/O: which slot to boot, and which
//! to try next when booting the chosen one failed (DESIGN §4).
//!
//! The first choice is exactly `moho_core::selection::select_boot`, the rule
//! `update-agent slots boot` applies. When the chosen slot then cannot be
//! booted (its tries decrement cannot be written, its filesystem does not
//! mount, it has no kernel, `kexec` refuses the kernel), that slot is taken
//! out of the running for this boot and the same rule is applied to what is
//! left: a slot that is eligible, else the other slot that booted
//! successfully before. A slot whose image is only half written (cleared:
//! priority 0, not successful) is never a candidate, so a failed good slot
//! never leads to booting a partial image.

use std::fmt;

use moho_core::selection::{BootChoice, NoBootableSlot, select_boot};
use moho_core::slot_attrs::SlotAttributes;
use moho_core::slot_table::{SlotName, SlotTable};

/// One slot that could not be booted this time, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    /// The slot.
    pub slot: SlotName,
    /// What went wrong, for the console.
    pub why: String,
}

/// Nothing is left to boot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NothingToBoot {
    /// The table itself has no bootable slot.
    #[error("{0}")]
    Table(NoBootableSlot),
    /// Every slot the rule allows was tried and failed.
    #[error("{}", describe_failures(.0))]
    AllFailed(Vec<FailedAttempt>),
}

fn describe_failures(failed: &[FailedAttempt]) -> String {
    let tried: Vec<String> = failed
        .iter()
        .map(|f| format!("slot {}: {}", f.slot, f.why))
        .collect();
    format!(
        "every bootable slot failed ({}); the other slot holds no image that may boot",
        tried.join("; ")
    )
}

/// The slot to boot now, given the slots that already failed during this
/// boot. With no failures this is [`select_boot`] itself.
pub fn choose(table: &SlotTable, failed: &[FailedAttempt]) -> Result<BootChoice, NothingToBoot> {
    if failed.is_empty() {
        return select_boot(table).map_err(NothingToBoot::Table);
    }
    let mut masked = table.clone();
    for f in failed {
        masked.get_mut(f.slot).attrs = SlotAttributes::from_raw(0);
    }
    match select_boot(&masked) {
        Ok(choice) => {
            // Only the chosen slot's fields may change (a try used up); the
            // failed slots keep what the disk says.
            let mut next = table.clone();
            next.get_mut(choice.slot).attrs = choice.table.attrs(choice.slot);
            Ok(BootChoice {
                slot: choice.slot,
                reason: choice.reason,
                table: next,
            })
        }
        Err(_) => Err(NothingToBoot::AllFailed(failed.to_vec())),
    }
}

/// One line describing both slots, for the console.
pub fn describe_table(table: &SlotTable) -> TableLine<'_> {
    TableLine(table)
}

/// See [`describe_table`].
#[derive(Debug)]
pub struct TableLine<'a>(&'a SlotTable);

impl fmt::Display for TableLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = SlotName::ALL
            .iter()
            .map(|&n| {
                let e = self.0.get(n);
                format!(
                    "{n} (partition {}) priority {} tries {} successful {}",
                    e.partition,
                    e.attrs.priority(),
                    e.attrs.tries(),
                    u8::from(e.attrs.successful())
                )
            })
            .collect();
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moho_core::selection::BootReason;
    use moho_core::slot_table::SlotEntry;
    use uuid::Uuid;

    fn table(a: (u8, u8, bool), b: (u8, u8, bool)) -> SlotTable {
        let e = |n: u32, l: &str, (p, t, s): (u8, u8, bool)| SlotEntry {
            partition: n,
            label: l.into(),
            partuuid: Uuid::from_u128(u128::from(n)),
            attrs: SlotAttributes::default().with_fields(p, t, s).unwrap(),
        };
        SlotTable {
            a: e(2, "ROOT-A", a),
            b: e(3, "ROOT-B", b),
        }
    }

    fn failed(slot: SlotName) -> FailedAttempt {
        FailedAttempt {
            slot,
            why: "mount failed".into(),
        }
    }

    #[test]
    fn without_failures_it_is_the_shared_rule() {
        for (a, b) in [
            ((1, 0, true), (2, 1, false)),
            ((1, 0, true), (2, 0, false)),
            ((0, 0, true), (0, 0, false)),
            ((2, 3, false), (1, 0, true)),
        ] {
            let t = table(a, b);
            assert_eq!(choose(&t, &[]).unwrap(), select_boot(&t).unwrap());
        }
    }

    #[test]
    fn a_trial_slot_that_fails_to_mount_falls_back_to_the_good_one() {
        // B was armed; its try is already written when the mount fails.
        let armed = table((1, 0, true), (2, 1, false));
        let first = choose(&armed, &[]).unwrap();
        assert_eq!(first.slot, SlotName::B);
        let on_disk = first.table;
        let next = choose(&on_disk, &[failed(SlotName::B)]).unwrap();
        assert_eq!(next.slot, SlotName::A);
        assert_eq!(next.reason, BootReason::Eligible);
        assert!(!next.needs_write(&on_disk), "booting A writes nothing");
    }

    #[test]
    fn a_failed_trial_slot_keeps_its_remaining_tries_on_disk() {
        let t = table((1, 0, true), (2, 3, false));
        let on_disk = choose(&t, &[]).unwrap().table;
        assert_eq!(on_disk.attrs(SlotName::B).tries(), 2);
        let next = choose(&on_disk, &[failed(SlotName::B)]).unwrap();
        assert_eq!(next.slot, SlotName::A);
        assert_eq!(next.table.attrs(SlotName::B), on_disk.attrs(SlotName::B));
    }

    #[test]
    fn a_good_slot_that_fails_never_leads_to_a_cleared_slot() {
        // B is being written (cleared); A's kernel cannot be loaded.
        let t = table((1, 0, true), (0, 0, false));
        let err = choose(&t, &[failed(SlotName::A)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "every bootable slot failed (slot A: mount failed); the other slot holds no image that may boot"
        );
    }

    #[test]
    fn when_the_good_slot_fails_an_armed_slot_gets_its_try() {
        // Rolled back by hand to A (priority 2), B armed below it.
        let t = table((2, 0, true), (1, 2, false));
        let next = choose(&t, &[failed(SlotName::A)]).unwrap();
        assert_eq!(next.slot, SlotName::B);
        assert!(next.needs_write(&t));
        assert_eq!(next.table.attrs(SlotName::B).tries(), 1);
        assert_eq!(next.table.attrs(SlotName::A), t.attrs(SlotName::A));
    }

    #[test]
    fn an_old_good_slot_with_priority_zero_is_the_last_resort() {
        // Nothing eligible but A, and A fails: B booted successfully once.
        let t = table((1, 0, true), (0, 0, true));
        let next = choose(&t, &[failed(SlotName::A)]).unwrap();
        assert_eq!(
            (next.slot, next.reason),
            (SlotName::B, BootReason::FallbackLastGood)
        );
    }

    #[test]
    fn both_failed_is_reported_with_both_reasons() {
        let t = table((1, 0, true), (2, 0, true));
        let err = choose(
            &t,
            &[
                failed(SlotName::B),
                FailedAttempt {
                    slot: SlotName::A,
                    why: "kexec: bad kernel".into(),
                },
            ],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("slot B: mount failed; slot A: kexec: bad kernel"),
            "{err}"
        );
    }

    #[test]
    fn the_table_line_shows_every_field() {
        let t = table((1, 0, true), (2, 1, false));
        assert_eq!(
            describe_table(&t).to_string(),
            "A (partition 2) priority 1 tries 0 successful 1; B (partition 3) priority 2 tries 1 successful 0"
        );
    }
}
