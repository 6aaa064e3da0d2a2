//! The checked changes the agent and the slot CLI make to a [`SlotTable`].
//!
//! Each function takes the current table and the booted slot and returns the
//! table to commit, or a [`TransitionError`] saying why the change would be
//! unsafe. None of them touches the disk: the caller writes the result with
//! one commit. The invariants of DESIGN §3 enforced here:
//!
//! - §3.1: the fallback (inactive) slot is never touched while the booted
//!   slot is not marked successful ([`clear_inactive`], [`arm_inactive`],
//!   [`set_fields`] without `force`).
//! - §3.4: a slot is armed only after it was cleared, so a slot whose image
//!   is being written can never be chosen ([`arm_inactive`] insists on a
//!   cleared slot).
//! - §3.7: arming gives the new slot `tries` boot attempts (1–15), leaves it
//!   unsuccessful and puts it above the booted slot.
//!
//! Priorities are normalised the way `cgpt prioritize` does: the slot that
//! should boot next gets 2, the other 1.

use crate::slot_attrs::{AttrValueError, MAX_NIBBLE, SlotAttributes};
use crate::slot_table::{SlotName, SlotTable};

const NEXT_PRIORITY: u8 = 2;
const FALLBACK_PRIORITY: u8 = 1;

/// Why a slot change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// DESIGN §3.1: the booted slot is unblessed, so the other slot is the
    /// only known-good fallback and must not be touched.
    #[error(
        "refusing to modify slot {inactive}: booted slot {booted} is not marked successful, \
         so slot {inactive} is the fallback (mark {booted} good first)"
    )]
    BootedNotSuccessful {
        /// The booted slot.
        booted: SlotName,
        /// The slot that would have been modified.
        inactive: SlotName,
    },
    /// Arm asked for a tries count outside 1–15.
    #[error("tries {tries} is out of range for arming slot {slot} (1-15)")]
    TriesOutOfRange {
        /// The slot that would have been armed.
        slot: SlotName,
        /// The rejected count.
        tries: u8,
    },
    /// Arm on a slot that was not cleared first (DESIGN §3.4).
    #[error(
        "refusing to arm slot {slot}: it was not cleared before its image was written \
         (priority {priority}, tries {tries}, successful {successful})"
    )]
    NotCleared {
        /// The slot.
        slot: SlotName,
        /// Its priority.
        priority: u8,
        /// Its tries.
        tries: u8,
        /// Its successful bit.
        successful: bool,
    },
    /// Rollback to a slot that never booted successfully.
    #[error("refusing to roll back to slot {target}: it is not marked successful")]
    RollbackTargetNotSuccessful {
        /// The slot that would have become the next boot.
        target: SlotName,
    },
    /// Cancel when the inactive slot holds no armed update.
    #[error(
        "nothing to cancel: slot {slot} is not armed (priority {priority}, successful {successful})"
    )]
    NothingArmed {
        /// The inactive slot.
        slot: SlotName,
        /// Its priority.
        priority: u8,
        /// Its successful bit.
        successful: bool,
    },
    /// Abandon on a slot that is not on trial (it booted successfully).
    #[error("refusing to abandon slot {slot}: it is marked successful, not on trial")]
    NotOnTrial {
        /// The booted slot.
        slot: SlotName,
    },
    /// Mark-good on a slot with priority 0: it may hold a half-written image.
    #[error(
        "refusing to mark slot {slot} good: it has priority 0 (cleared or never armed), \
         so its image may be incomplete"
    )]
    NotBootable {
        /// The slot.
        slot: SlotName,
    },
    /// A raw value that does not fit its field.
    #[error("slot {slot}: {source}")]
    Value {
        /// The slot being set.
        slot: SlotName,
        /// The field and value.
        source: AttrValueError,
    },
}

/// DESIGN §3.4: priority 0, tries 0, not successful, before any image byte
/// is written.
pub fn clear_inactive(table: &SlotTable, booted: SlotName) -> Result<SlotTable, TransitionError> {
    let inactive = booted.other();
    require_booted_good(table, booted)?;
    let mut next = table.clone();
    next.get_mut(inactive).attrs = cleared(table.attrs(inactive));
    Ok(next)
}

/// DESIGN §3.7: the freshly written and verified inactive slot gets `tries`
/// attempts, successful 0, and a priority above the booted slot.
pub fn arm_inactive(
    table: &SlotTable,
    booted: SlotName,
    tries: u8,
) -> Result<SlotTable, TransitionError> {
    let inactive = booted.other();
    require_booted_good(table, booted)?;
    if tries == 0 || tries > MAX_NIBBLE {
        return Err(TransitionError::TriesOutOfRange {
            slot: inactive,
            tries,
        });
    }
    let current = table.attrs(inactive);
    if current != cleared(current) {
        return Err(TransitionError::NotCleared {
            slot: inactive,
            priority: current.priority(),
            tries: current.tries(),
            successful: current.successful(),
        });
    }
    let mut next = table.clone();
    next.get_mut(inactive).attrs = fields(inactive, current, NEXT_PRIORITY, tries, false)?;
    let booted_attrs = table.attrs(booted);
    next.get_mut(booted).attrs =
        booted_attrs
            .with_priority(FALLBACK_PRIORITY)
            .map_err(|source| TransitionError::Value {
                slot: booted,
                source,
            })?;
    Ok(next)
}

/// DESIGN §3.10: the slot booted and passed its health checks. Tries are
/// reset and the slot keeps (or, after a fallback boot, regains) a priority
/// of at least 1.
///
/// `slot` is normally the booted slot. Marking the other slot is allowed only
/// when it is armed (priority above 0); a cleared slot may hold a partial
/// image and must never become bootable this way.
pub fn mark_good(
    table: &SlotTable,
    booted: Option<SlotName>,
    slot: SlotName,
) -> Result<SlotTable, TransitionError> {
    let current = table.attrs(slot);
    if Some(slot) != booted && current.priority() == 0 {
        return Err(TransitionError::NotBootable { slot });
    }
    let priority = current.priority().max(FALLBACK_PRIORITY);
    let mut next = table.clone();
    next.get_mut(slot).attrs = fields(slot, current, priority, 0, true)?;
    Ok(next)
}

/// Makes the other slot the next boot; it must have booted successfully.
pub fn rollback(table: &SlotTable, booted: SlotName) -> Result<SlotTable, TransitionError> {
    let target = booted.other();
    let target_attrs = table.attrs(target);
    if !target_attrs.successful() {
        return Err(TransitionError::RollbackTargetNotSuccessful { target });
    }
    let mut next = table.clone();
    next.get_mut(target).attrs = fields(target, target_attrs, NEXT_PRIORITY, 0, true)?;
    let booted_attrs = table.attrs(booted);
    next.get_mut(booted).attrs =
        booted_attrs
            .with_priority(FALLBACK_PRIORITY)
            .map_err(|source| TransitionError::Value {
                slot: booted,
                source,
            })?;
    Ok(next)
}

/// Withdraws an armed, not yet successful update from the inactive slot.
pub fn cancel_armed(table: &SlotTable, booted: SlotName) -> Result<SlotTable, TransitionError> {
    let inactive = booted.other();
    let current = table.attrs(inactive);
    if current.priority() == 0 || current.successful() {
        return Err(TransitionError::NothingArmed {
            slot: inactive,
            priority: current.priority(),
            successful: current.successful(),
        });
    }
    let mut next = table.clone();
    next.get_mut(inactive).attrs = cleared(current);
    Ok(next)
}

/// DESIGN §3.12: the booted slot's trial failed (a health check failed, the
/// deadline passed, or the release was withdrawn). The trial slot is taken
/// out of the running (priority 0, tries 0, unsuccessful, like a cleared
/// slot), so no further try of it can follow however many tries it had, and
/// the other slot, which must have booted successfully, boots next.
/// Applying it twice gives the same table.
pub fn abandon_trial(table: &SlotTable, booted: SlotName) -> Result<SlotTable, TransitionError> {
    let fallback = booted.other();
    let trial = table.attrs(booted);
    if trial.successful() {
        return Err(TransitionError::NotOnTrial { slot: booted });
    }
    let good = table.attrs(fallback);
    if !good.successful() {
        return Err(TransitionError::RollbackTargetNotSuccessful { target: fallback });
    }
    let mut next = table.clone();
    next.get_mut(booted).attrs = cleared(trial);
    next.get_mut(fallback).attrs = fields(fallback, good, NEXT_PRIORITY, 0, true)?;
    Ok(next)
}

/// The fields `slots set` may change; `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldChange {
    /// New priority.
    pub priority: Option<u8>,
    /// New tries.
    pub tries: Option<u8>,
    /// New successful bit.
    pub successful: Option<bool>,
}

/// Sets raw fields on one slot (an operator's tool). Touching the inactive
/// slot while the booted one is unblessed needs `force`.
pub fn set_fields(
    table: &SlotTable,
    booted: Option<SlotName>,
    slot: SlotName,
    change: FieldChange,
    force: bool,
) -> Result<SlotTable, TransitionError> {
    if let Some(booted) = booted
        && slot != booted
        && !force
    {
        require_booted_good(table, booted)?;
    }
    let current = table.attrs(slot);
    let mut next = table.clone();
    next.get_mut(slot).attrs = fields(
        slot,
        current,
        change.priority.unwrap_or(current.priority()),
        change.tries.unwrap_or(current.tries()),
        change.successful.unwrap_or(current.successful()),
    )?;
    Ok(next)
}

fn require_booted_good(table: &SlotTable, booted: SlotName) -> Result<(), TransitionError> {
    if table.attrs(booted).successful() {
        Ok(())
    } else {
        Err(TransitionError::BootedNotSuccessful {
            booted,
            inactive: booted.other(),
        })
    }
}

fn cleared(attrs: SlotAttributes) -> SlotAttributes {
    // 0/0/false always fits; keep the foreign bits.
    SlotAttributes::from_raw(attrs.foreign_bits())
}

fn fields(
    slot: SlotName,
    attrs: SlotAttributes,
    priority: u8,
    tries: u8,
    successful: bool,
) -> Result<SlotAttributes, TransitionError> {
    attrs
        .with_fields(priority, tries, successful)
        .map_err(|source| TransitionError::Value { slot, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::next_boot;
    use crate::slot_table::fixtures::table;

    fn triple(t: &SlotTable, n: SlotName) -> (u8, u8, bool) {
        let a = t.attrs(n);
        (a.priority(), a.tries(), a.successful())
    }

    #[test]
    fn an_abandoned_trial_never_boots_again_and_the_good_slot_boots_next() {
        // B armed with three tries, booted once (one used), failed its check.
        let t = table((1, 0, true), (2, 2, false));
        let next = abandon_trial(&t, SlotName::B).unwrap();
        assert_eq!(triple(&next, SlotName::B), (0, 0, false));
        assert_eq!(triple(&next, SlotName::A), (2, 0, true));
        assert_eq!(next_boot(&next).unwrap(), SlotName::A);
        assert_eq!(abandon_trial(&next, SlotName::B).unwrap(), next);
        // Not on a good slot, and not without a good fallback.
        assert_eq!(
            abandon_trial(&t, SlotName::A).unwrap_err(),
            TransitionError::NotOnTrial { slot: SlotName::A }
        );
        let no_fallback = table((1, 0, false), (2, 0, false));
        assert!(matches!(
            abandon_trial(&no_fallback, SlotName::B),
            Err(TransitionError::RollbackTargetNotSuccessful { .. })
        ));
    }

    #[test]
    fn clear_then_arm_makes_the_new_slot_boot_next_once() {
        let t = table((1, 0, true), (1, 0, true));
        let cleared = clear_inactive(&t, SlotName::A).unwrap();
        assert_eq!(triple(&cleared, SlotName::B), (0, 0, false));
        let armed = arm_inactive(&cleared, SlotName::A, 1).unwrap();
        assert_eq!(triple(&armed, SlotName::B), (2, 1, false));
        assert_eq!(triple(&armed, SlotName::A), (1, 0, true));
        assert_eq!(next_boot(&armed).unwrap(), SlotName::B);
    }

    #[test]
    fn fallback_slot_is_untouchable_while_booted_is_unblessed() {
        let t = table((1, 0, true), (2, 0, false));
        let err = clear_inactive(&t, SlotName::B).unwrap_err();
        assert_eq!(
            err,
            TransitionError::BootedNotSuccessful {
                booted: SlotName::B,
                inactive: SlotName::A
            }
        );
        assert!(err.to_string().contains("mark B good first"));
        assert!(arm_inactive(&t, SlotName::B, 1).is_err());
        let change = FieldChange {
            priority: Some(0),
            ..FieldChange::default()
        };
        assert!(set_fields(&t, Some(SlotName::B), SlotName::A, change, false).is_err());
        assert!(set_fields(&t, Some(SlotName::B), SlotName::A, change, true).is_ok());
    }

    #[test]
    fn arm_needs_a_cleared_slot_and_sane_tries() {
        let t = table((1, 0, true), (1, 0, true));
        assert!(matches!(
            arm_inactive(&t, SlotName::A, 1),
            Err(TransitionError::NotCleared { .. })
        ));
        let c = clear_inactive(&t, SlotName::A).unwrap();
        assert_eq!(
            arm_inactive(&c, SlotName::A, 0).unwrap_err(),
            TransitionError::TriesOutOfRange {
                slot: SlotName::B,
                tries: 0
            }
        );
        assert!(arm_inactive(&c, SlotName::A, 16).is_err());
        assert_eq!(
            triple(&arm_inactive(&c, SlotName::A, 15).unwrap(), SlotName::B),
            (2, 15, false)
        );
    }

    #[test]
    fn mark_good_resets_tries_and_restores_priority() {
        let t = table((0, 0, true), (2, 0, false));
        let g = mark_good(&t, Some(SlotName::A), SlotName::A).unwrap();
        assert_eq!(triple(&g, SlotName::A), (1, 0, true));
        let g = mark_good(&t, Some(SlotName::A), SlotName::B).unwrap();
        assert_eq!(triple(&g, SlotName::B), (2, 0, true));
        let cleared = table((1, 0, true), (0, 0, false));
        assert_eq!(
            mark_good(&cleared, Some(SlotName::A), SlotName::B).unwrap_err(),
            TransitionError::NotBootable { slot: SlotName::B }
        );
    }

    #[test]
    fn rollback_only_to_a_successful_slot() {
        let t = table((1, 0, true), (2, 0, true));
        let r = rollback(&t, SlotName::B).unwrap();
        assert_eq!(next_boot(&r).unwrap(), SlotName::A);
        let bad = table((1, 0, true), (0, 0, false));
        assert_eq!(
            rollback(&bad, SlotName::A).unwrap_err(),
            TransitionError::RollbackTargetNotSuccessful {
                target: SlotName::B
            }
        );
    }

    #[test]
    fn cancel_withdraws_only_an_armed_update() {
        let t = table((1, 0, true), (2, 1, false));
        let c = cancel_armed(&t, SlotName::A).unwrap();
        assert_eq!(triple(&c, SlotName::B), (0, 0, false));
        assert!(matches!(
            cancel_armed(&c, SlotName::A),
            Err(TransitionError::NothingArmed { .. })
        ));
    }

    #[test]
    fn transitions_keep_foreign_bits() {
        let mut t = table((1, 0, true), (1, 0, true));
        t.b.attrs = SlotAttributes::from_raw(t.b.attrs.raw() | 0b101 | (1 << 60));
        let foreign = t.b.attrs.foreign_bits();
        let c = clear_inactive(&t, SlotName::A).unwrap();
        assert_eq!(c.b.attrs.foreign_bits(), foreign);
        let a = arm_inactive(&c, SlotName::A, 3).unwrap();
        assert_eq!(a.b.attrs.foreign_bits(), foreign);
    }
}
