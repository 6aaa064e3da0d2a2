//! What the last boot did with a staged update (DESIGN §3.9–3.12), from the
//! persisted agent state, the booted slot and the slot table alone: the
//! staged slot booted (on trial, or already marked good), the selector fell
//! back from it (after a failed or abandoned trial), it was cancelled, or no
//! reboot has happened yet.

use jiff::Timestamp;
use moho_core::slot_table::{SlotName, SlotTable};

use super::{AgentState, Event};

/// The finding, as the state machine event that records it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootFinding {
    /// Nothing staged, or nothing has changed: no event.
    Unchanged,
    /// An event to apply, in order.
    Events(Vec<Event>),
}

/// Assesses the boot at `now`. `booted_version` is the version running now.
pub fn assess(
    state: &AgentState,
    booted: SlotName,
    table: &SlotTable,
    booted_version: Option<&str>,
    now: Timestamp,
) -> BootFinding {
    let rolled_back = || {
        BootFinding::Events(vec![Event::RolledBack {
            booted_version: booted_version.unwrap_or("unknown").to_owned(),
        }])
    };
    let staged = match state {
        AgentState::UpdatedNeedReboot(w) => &w.staged,
        AgentState::Rebooting(s) => s,
        AgentState::PendingMarkGood(t) => {
            let attrs = table.attrs(t.staged.slot);
            return if t.staged.slot == booted {
                match (attrs.successful(), t.since) {
                    // Marked good by `update-agent mark-good` while we were away?
                    (true, _) => BootFinding::Events(vec![Event::MarkedGood]),
                    (false, None) => BootFinding::Events(vec![Event::TrialObserved { at: now }]),
                    (false, Some(_)) => BootFinding::Unchanged,
                }
            } else if attrs.successful() {
                // Marked good, then an operator rolled back: not a failure.
                BootFinding::Events(vec![Event::MarkedGood, Event::Cleared])
            } else {
                // The trial boot never reached boot-complete.target (a
                // health check failed, or it hung) and the selector fell
                // back on the next boot.
                rolled_back()
            };
        }
        AgentState::TrialFailed(r) => {
            return if r.staged.slot == booted {
                // Restarted on the failed trial before the reboot: again.
                BootFinding::Events(vec![Event::TrialObserved { at: now }])
            } else {
                rolled_back()
            };
        }
        _ => return BootFinding::Unchanged,
    };
    let attrs = table.attrs(staged.slot);
    if staged.slot == booted {
        let mut events = vec![Event::BootedStaged { at: now }];
        if attrs.successful() && !staged.revert {
            events.push(Event::MarkedGood);
        }
        return BootFinding::Events(events);
    }
    if attrs.successful() && !staged.revert && attrs.priority() < table.attrs(booted).priority() {
        // The staged slot booted and was marked good while no agent ran on
        // it (`update-agent slots mark-good`), then the other slot was put
        // first (`slots rollback`): its release came up, this is no
        // failure, and nothing is staged any more.
        return BootFinding::Events(vec![Event::BootedStaged { at: now }, Event::MarkedGood]);
    }
    if attrs.priority() == 0 && attrs.tries() == 0 && !attrs.successful() && !staged.revert {
        // Cleared without a reboot: a cancel that was written but not recorded.
        return BootFinding::Events(vec![Event::Cleared]);
    }
    if attrs.tries() == 0 && !attrs.successful() {
        // The selector used the slot's last try and we are back on the
        // other slot: that boot failed.
        return rolled_back();
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

    use crate::state::{RebootWait, Rescue, Staged, Trial, TrialFailure, Waiting};

    fn now() -> Timestamp {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    fn pending() -> AgentState {
        AgentState::PendingMarkGood(Trial {
            staged: staged(),
            since: Some(now()),
        })
    }

    fn waiting() -> AgentState {
        AgentState::UpdatedNeedReboot(Waiting::new(staged()))
    }

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
        let f = assess(&s, SlotName::B, &table((2, 0, false)), Some("1.1.0"), now());
        assert_eq!(
            f,
            BootFinding::Events(vec![Event::BootedStaged { at: now() }])
        );
    }

    #[test]
    fn a_staged_slot_already_marked_good_is_reported_healthy() {
        let s = waiting();
        let f = assess(&s, SlotName::B, &table((2, 0, true)), Some("1.1.0"), now());
        assert_eq!(
            f,
            BootFinding::Events(vec![Event::BootedStaged { at: now() }, Event::MarkedGood])
        );
        let f = assess(
            &pending(),
            SlotName::B,
            &table((2, 0, true)),
            Some("1.1.0"),
            now(),
        );
        assert_eq!(f, BootFinding::Events(vec![Event::MarkedGood]));
        let f = assess(
            &pending(),
            SlotName::B,
            &table((2, 0, false)),
            Some("1.1.0"),
            now(),
        );
        assert_eq!(f, BootFinding::Unchanged);
        // A trial an older agent recorded gets its start now.
        let old = AgentState::PendingMarkGood(Trial {
            staged: staged(),
            since: None,
        });
        let f = assess(
            &old,
            SlotName::B,
            &table((2, 0, false)),
            Some("1.1.0"),
            now(),
        );
        assert_eq!(
            f,
            BootFinding::Events(vec![Event::TrialObserved { at: now() }])
        );
    }

    #[test]
    fn a_staged_slot_marked_good_without_us_then_rolled_back_from_is_no_longer_staged() {
        // B booted, `slots mark-good` blessed it with no agent watching,
        // `slots rollback` put A first, A booted: B's release was good.
        let mut t = table((1, 0, true));
        t.a.attrs = t.a.attrs.with_priority(2).unwrap();
        for s in [AgentState::Rebooting(staged()), waiting()] {
            let f = assess(&s, SlotName::A, &t, Some("1.0.0"), now());
            assert_eq!(
                f,
                BootFinding::Events(vec![Event::BootedStaged { at: now() }, Event::MarkedGood]),
                "{s:?}"
            );
            let (next, _) = s.on(Event::BootedStaged { at: now() }).unwrap();
            let (next, _) = next.on(Event::MarkedGood).unwrap();
            assert_eq!(next, AgentState::Idle);
        }
        // An armed B an operator marked good before it booted still boots
        // next (it is first): still staged.
        let ahead = table((2, 1, true));
        let f = assess(&waiting(), SlotName::A, &ahead, Some("1.0.0"), now());
        assert_eq!(f, BootFinding::Unchanged);
    }

    #[test]
    fn a_trial_boot_that_never_got_marked_good_and_fell_back_is_a_rollback() {
        // The daemon saw the trial boot (pending-mark-good), a health check
        // failed, the machine rebooted and the selector fell back to A.
        let pending = pending();
        let f = assess(
            &pending,
            SlotName::A,
            &table((2, 0, false)),
            Some("1.0.0"),
            now(),
        );
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
        for s in [AgentState::Rebooting(staged()), waiting()] {
            let f = assess(&s, SlotName::A, &table((2, 0, false)), Some("1.0.0"), now());
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
        let f = assess(&waiting(), SlotName::A, &armed, Some("1.0.0"), now());
        assert_eq!(f, BootFinding::Unchanged);
        let f = assess(
            &AgentState::Rebooting(staged()),
            SlotName::A,
            &armed,
            Some("1.0.0"),
            now(),
        );
        assert_eq!(f, BootFinding::Events(vec![Event::StillStaged(staged())]));
        assert_eq!(
            assess(&AgentState::Idle, SlotName::A, &armed, None, now()),
            BootFinding::Unchanged
        );
    }

    #[test]
    fn a_cancel_written_but_not_recorded_is_a_cancel_not_a_rollback() {
        let f = assess(
            &waiting(),
            SlotName::A,
            &table((0, 0, false)),
            Some("1.0.0"),
            now(),
        );
        assert_eq!(f, BootFinding::Events(vec![Event::Cleared]));
    }

    #[test]
    fn a_failed_trial_is_a_rollback_once_the_fallback_runs_and_a_retry_before() {
        let failed = AgentState::TrialFailed(Rescue {
            staged: staged(),
            failure: TrialFailure::Withdrawn {
                reason: "rollout aborted".into(),
            },
            reboot: RebootWait::default(),
            asked: true,
        });
        let f = assess(
            &failed,
            SlotName::A,
            &table((0, 0, false)),
            Some("1.0.0"),
            now(),
        );
        assert_eq!(
            f,
            BootFinding::Events(vec![Event::RolledBack {
                booted_version: "1.0.0".into()
            }])
        );
        let f = assess(
            &failed,
            SlotName::B,
            &table((0, 0, false)),
            Some("1.1.0"),
            now(),
        );
        assert_eq!(
            f,
            BootFinding::Events(vec![Event::TrialObserved { at: now() }])
        );
    }
}
