//! What the last boot did with a staged update (DESIGN §3.9–3.11), from the
//! persisted agent state, the booted slot and the slot table alone: the
//! staged slot booted (on trial, or already marked good), the selector fell
//! back from it, or no reboot has happened yet.

use moho_core::slot_table::{SlotName, SlotTable};

use crate::state::{AgentState, Event};

/// The finding, as the state machine event that records it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootFinding {
    /// Nothing staged, or nothing has changed: no event.
    Unchanged,
    /// An event to apply, in order.
    Events(Vec<Event>),
}

/// Assesses the boot. `booted_version` is the version running now.
pub fn assess(
    state: &AgentState,
    booted: SlotName,
    table: &SlotTable,
    booted_version: Option<&str>,
) -> BootFinding {
    let staged = match state {
        AgentState::UpdatedNeedReboot(s) | AgentState::Rebooting(s) => s,
        AgentState::PendingMarkGood(s) => {
            let attrs = table.attrs(s.slot);
            return if s.slot == booted {
                // Marked good by `update-agent mark-good` while we were away?
                if attrs.successful() {
                    BootFinding::Events(vec![Event::MarkedGood])
                } else {
                    BootFinding::Unchanged
                }
            } else if attrs.successful() {
                // Marked good, then an operator rolled back: not a failure.
                BootFinding::Events(vec![Event::MarkedGood, Event::Cleared])
            } else {
                // The trial boot never reached boot-complete.target (a
                // health check failed, or it hung) and the selector fell
                // back on the next boot.
                BootFinding::Events(vec![Event::RolledBack {
                    booted_version: booted_version.unwrap_or("unknown").to_owned(),
                }])
            };
        }
        _ => return BootFinding::Unchanged,
    };
    let attrs = table.attrs(staged.slot);
    if staged.slot == booted {
        let mut events = vec![Event::BootedStaged];
        if attrs.successful() && !staged.revert {
            events.push(Event::MarkedGood);
        }
        return BootFinding::Events(events);
    }
    if attrs.tries() == 0 && !attrs.successful() {
        // The selector used the slot's last try and we are back on the
        // other slot: that boot failed.
        return BootFinding::Events(vec![Event::RolledBack {
            booted_version: booted_version.unwrap_or("unknown").to_owned(),
        }]);
    }
    match state {
        // Restarted in the same boot, before the reboot happened.
        AgentState::Rebooting(s) => BootFinding::Events(vec![Event::StillStaged(s.clone())]),
        _ => BootFinding::Unchanged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moho_core::slot_attrs::SlotAttributes;
    use moho_core::slot_table::SlotEntry;

    use crate::state::Staged;

    fn table(b: (u8, u8, bool)) -> SlotTable {
        let entry = |p: u32, label: &str, (prio, tries, ok): (u8, u8, bool)| SlotEntry {
            partition: p,
            label: label.into(),
            partuuid: uuid::Uuid::from_u128(u128::from(p)),
            attrs: SlotAttributes::default()
                .with_priority(prio)
                .and_then(|a| a.with_tries(tries))
                .map(|a| a.with_successful(ok))
                .unwrap(),
        };
        SlotTable {
            a: entry(3, "ROOT-A", (1, 0, true)),
            b: entry(4, "ROOT-B", b),
        }
    }

    fn staged() -> Staged {
        Staged {
            target: "amd64/1.1.0/root.img".into(),
            version: "1.1.0".into(),
            slot: SlotName::B,
            revert: false,
        }
    }

    #[test]
    fn booting_the_staged_slot_puts_it_on_trial() {
        let s = AgentState::Rebooting(staged());
        // The selector used B's one try and booted it.
        let f = assess(&s, SlotName::B, &table((2, 0, false)), Some("1.1.0"));
        assert_eq!(f, BootFinding::Events(vec![Event::BootedStaged]));
    }

    #[test]
    fn a_staged_slot_already_marked_good_is_reported_healthy() {
        let s = AgentState::UpdatedNeedReboot(staged());
        let f = assess(&s, SlotName::B, &table((2, 0, true)), Some("1.1.0"));
        assert_eq!(
            f,
            BootFinding::Events(vec![Event::BootedStaged, Event::MarkedGood])
        );
        let pending = AgentState::PendingMarkGood(staged());
        let f = assess(&pending, SlotName::B, &table((2, 0, true)), Some("1.1.0"));
        assert_eq!(f, BootFinding::Events(vec![Event::MarkedGood]));
        let f = assess(&pending, SlotName::B, &table((2, 0, false)), Some("1.1.0"));
        assert_eq!(f, BootFinding::Unchanged);
    }

    #[test]
    fn a_trial_boot_that_never_got_marked_good_and_fell_back_is_a_rollback() {
        // The daemon saw the trial boot (pending-mark-good), a health check
        // failed, the machine rebooted and the selector fell back to A.
        let pending = AgentState::PendingMarkGood(staged());
        let f = assess(&pending, SlotName::A, &table((2, 0, false)), Some("1.0.0"));
        assert_eq!(
            f,
            BootFinding::Events(vec![Event::RolledBack {
                booted_version: "1.0.0".into()
            }])
        );
        let (s, actions) = pending
            .on(Event::RolledBack {
                booted_version: "1.0.0".into(),
            })
            .unwrap();
        assert_eq!(s, AgentState::Idle);
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, crate::state::machine::Action::Deny { .. }))
        );
    }

    #[test]
    fn back_on_the_old_slot_with_the_new_one_out_of_tries_is_a_rollback() {
        for s in [
            AgentState::Rebooting(staged()),
            AgentState::UpdatedNeedReboot(staged()),
        ] {
            let f = assess(&s, SlotName::A, &table((2, 0, false)), Some("1.0.0"));
            assert_eq!(
                f,
                BootFinding::Events(vec![Event::RolledBack {
                    booted_version: "1.0.0".into()
                }])
            );
        }
    }

    #[test]
    fn no_reboot_yet_leaves_the_update_staged() {
        let armed = table((2, 1, false));
        let f = assess(
            &AgentState::UpdatedNeedReboot(staged()),
            SlotName::A,
            &armed,
            Some("1.0.0"),
        );
        assert_eq!(f, BootFinding::Unchanged);
        let f = assess(
            &AgentState::Rebooting(staged()),
            SlotName::A,
            &armed,
            Some("1.0.0"),
        );
        assert_eq!(f, BootFinding::Events(vec![Event::StillStaged(staged())]));
        assert_eq!(
            assess(&AgentState::Idle, SlotName::A, &armed, None),
            BootFinding::Unchanged
        );
    }
}
