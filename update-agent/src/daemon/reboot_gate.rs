//! Whether a staged update may reboot the node now (DESIGN §7), as a pure
//! function of the strategy, the clock and what logind reports; and, when
//! it may not, the reason shown as `RebootBlockedBy`.
//!
//! Order of the gates: the strategy (window open, or an operator's
//! `update-agent reboot`), then logged-in users and block inhibitors, each
//! for a bounded time counted from the moment the strategy first allowed the
//! reboot, and last the FleetLock slot, so a node never holds a fleet-wide
//! reboot slot while it waits for local reasons.

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use moho_rollout::window::{WindowState, Windows};
use serde::Serialize;

/// The reboot strategy, resolved for the gate.
#[derive(Debug, Clone)]
pub enum Strategy {
    /// As soon as an update is staged.
    Immediate,
    /// Inside the windows only.
    Windows(Windows),
    /// After taking a FleetLock slot of `group`.
    FleetLock {
        /// Lock group.
        group: String,
    },
    /// Only when an operator asks.
    Off,
}

/// A logind block inhibitor on shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inhibitor {
    /// Who holds it.
    pub who: String,
    /// Why.
    pub why: String,
}

/// Everything the decision depends on.
#[derive(Debug, Clone)]
pub struct GateInput<'a> {
    /// The time.
    pub now: Timestamp,
    /// The strategy.
    pub strategy: &'a Strategy,
    /// A failed trial going back to its fallback (DESIGN §3.12): not an
    /// update waiting for its window, and it already holds its FleetLock
    /// slot, so only users and inhibitors (bounded) hold it back.
    pub rescue: bool,
    /// An operator asked for the reboot (`update-agent reboot`): windows
    /// and `off` no longer hold it back; users, inhibitors and the lock do.
    pub requested: bool,
    /// When the strategy first allowed this reboot (`None`: not yet).
    pub allowed_since: Option<Timestamp>,
    /// Users with sessions.
    pub users: &'a [String],
    /// Block inhibitors on shutdown.
    pub inhibitors: &'a [Inhibitor],
    /// How long users may delay the reboot.
    pub max_user_delay: Duration,
    /// How long block inhibitors may delay it.
    pub max_inhibitor_wait: Duration,
    /// The FleetLock refused us on the last try (with its message).
    pub lock_refused: Option<&'a str>,
}

/// Why a staged reboot waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Blocker {
    /// Strategy `off`: waiting for `update-agent reboot`.
    AwaitingCommand,
    /// Outside every reboot window.
    WindowClosed {
        /// When the next window opens.
        opens_at: Timestamp,
    },
    /// Users are logged in.
    UsersLoggedIn {
        /// Who.
        users: Vec<String>,
        /// When the agent reboots regardless.
        until: Timestamp,
    },
    /// A block inhibitor is held.
    Inhibited {
        /// The inhibitors.
        by: Vec<Inhibitor>,
        /// When the agent reboots regardless.
        until: Timestamp,
    },
    /// Every FleetLock slot of the group is held by other nodes.
    LockHeld {
        /// The group.
        group: String,
        /// The lock server's message.
        detail: String,
    },
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AwaitingCommand => {
                f.write_str("reboot strategy is off: waiting for `update-agent reboot`")
            }
            Self::WindowClosed { opens_at } => write!(f, "reboot window closed until {opens_at}"),
            Self::UsersLoggedIn { users, until } => write!(
                f,
                "users logged in ({}): waiting until {until} at most",
                users.join(", ")
            ),
            Self::Inhibited { by, until } => {
                let who: Vec<String> = by
                    .iter()
                    .map(|i| format!("{} ({})", i.who, i.why))
                    .collect();
                write!(
                    f,
                    "inhibited by {}: waiting until {until} at most",
                    who.join(", ")
                )
            }
            Self::LockHeld { group, detail } => {
                write!(
                    f,
                    "reboot lock of group {group} held by other nodes: {detail}"
                )
            }
        }
    }
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub verdict: Verdict,
    /// The value of `allowed_since` to pass next time.
    pub allowed_since: Option<Timestamp>,
}

/// Reboot now, or wait and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Reboot; take the FleetLock slot first when `take_lock`.
    Reboot {
        /// Strategy `fleet_lock`: `pre-reboot` must succeed first.
        take_lock: bool,
    },
    /// Not now.
    Wait(Blocker),
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Decides.
pub fn decide(input: &GateInput<'_>) -> Decision {
    let wait = |blocker, allowed_since| Decision {
        verdict: Verdict::Wait(blocker),
        allowed_since,
    };
    if !input.requested && !input.rescue {
        match input.strategy {
            Strategy::Off => return wait(Blocker::AwaitingCommand, None),
            Strategy::Windows(w) => {
                if let WindowState::Closed { opens_at } = w.state_at(input.now) {
                    return wait(Blocker::WindowClosed { opens_at }, None);
                }
            }
            Strategy::Immediate | Strategy::FleetLock { .. } => {}
        }
    }
    let since = input.allowed_since.unwrap_or(input.now);
    let users_until = plus(since, input.max_user_delay);
    if !input.users.is_empty() && input.now < users_until {
        let mut users = input.users.to_vec();
        users.sort();
        users.dedup();
        return wait(
            Blocker::UsersLoggedIn {
                users,
                until: users_until,
            },
            Some(since),
        );
    }
    let inhibit_until = plus(since, input.max_inhibitor_wait);
    if !input.inhibitors.is_empty() && input.now < inhibit_until {
        return wait(
            Blocker::Inhibited {
                by: input.inhibitors.to_vec(),
                until: inhibit_until,
            },
            Some(since),
        );
    }
    let take_lock = match input.strategy {
        Strategy::FleetLock { .. } if input.rescue => false,
        Strategy::FleetLock { group } => {
            if let Some(detail) = input.lock_refused {
                return wait(
                    Blocker::LockHeld {
                        group: group.clone(),
                        detail: detail.to_owned(),
                    },
                    Some(since),
                );
            }
            true
        }
        _ => false,
    };
    Decision {
        verdict: Verdict::Reboot { take_lock },
        allowed_since: Some(since),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moho_rollout::window::{Window, WindowSpec};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn berlin_sunday_night() -> Strategy {
        // Sundays 02:30 for 1h, Europe/Berlin: on 2026-03-29 the clocks jump
        // from 02:00 to 03:00, so that night the window starts at 03:30 CEST.
        Strategy::Windows(Windows::new(vec![
            Window::from_spec(&WindowSpec {
                days: vec!["sun".into()],
                start: "02:30".into(),
                length: "1h".into(),
                time_zone: "Europe/Berlin".into(),
            })
            .unwrap(),
        ]))
    }

    fn input<'a>(strategy: &'a Strategy, now: &str) -> GateInput<'a> {
        GateInput {
            now: ts(now),
            strategy,
            rescue: false,
            requested: false,
            allowed_since: None,
            users: &[],
            inhibitors: &[],
            max_user_delay: Duration::from_secs(3600),
            max_inhibitor_wait: Duration::from_secs(600),
            lock_refused: None,
        }
    }

    #[test]
    fn immediate_reboots_at_once() {
        let s = Strategy::Immediate;
        let d = decide(&input(&s, "2026-11-22T10:00:00Z"));
        assert_eq!(d.verdict, Verdict::Reboot { take_lock: false });
    }

    #[test]
    fn off_waits_for_the_operator_and_reboots_when_asked() {
        let s = Strategy::Off;
        let mut i = input(&s, "2026-11-22T10:00:00Z");
        assert_eq!(decide(&i).verdict, Verdict::Wait(Blocker::AwaitingCommand));
        i.requested = true;
        assert_eq!(decide(&i).verdict, Verdict::Reboot { take_lock: false });
    }

    #[test]
    fn a_closed_window_names_when_it_opens_across_a_dst_change() {
        let s = berlin_sunday_night();
        // Saturday noon UTC before the spring-forward night.
        let d = decide(&input(&s, "2026-03-28T12:00:00Z"));
        // 02:30 falls in the gap and moves forward by it: 03:30 CEST = 01:30 UTC.
        assert_eq!(
            d.verdict,
            Verdict::Wait(Blocker::WindowClosed {
                opens_at: ts("2026-03-29T01:30:00Z")
            })
        );
        assert_eq!(
            decide(&input(&s, "2026-03-29T01:30:00Z")).verdict,
            Verdict::Reboot { take_lock: false }
        );
        // A week later, in summer time: 02:30 CEST = 00:30 UTC.
        let d = decide(&input(&s, "2026-03-30T00:00:00Z"));
        assert_eq!(
            d.verdict,
            Verdict::Wait(Blocker::WindowClosed {
                opens_at: ts("2026-04-05T00:30:00Z")
            })
        );
    }

    #[test]
    fn an_operator_request_overrides_a_closed_window() {
        let s = berlin_sunday_night();
        let mut i = input(&s, "2026-03-28T12:00:00Z");
        i.requested = true;
        assert_eq!(decide(&i).verdict, Verdict::Reboot { take_lock: false });
    }

    #[test]
    fn logged_in_users_delay_the_reboot_for_a_bounded_time() {
        let s = Strategy::Immediate;
        let users = ["alice".to_owned(), "bob".to_owned(), "alice".to_owned()];
        let mut i = input(&s, "2026-11-22T10:00:00Z");
        i.users = &users;
        let d = decide(&i);
        assert_eq!(
            d.verdict,
            Verdict::Wait(Blocker::UsersLoggedIn {
                users: vec!["alice".into(), "bob".into()],
                until: ts("2026-11-22T11:00:00Z")
            })
        );
        // The delay counts from the first time the strategy allowed it.
        i.allowed_since = d.allowed_since;
        i.now = ts("2026-11-22T10:59:59Z");
        assert!(matches!(decide(&i).verdict, Verdict::Wait(_)));
        i.now = ts("2026-11-22T11:00:00Z");
        assert_eq!(decide(&i).verdict, Verdict::Reboot { take_lock: false });
    }

    #[test]
    fn block_inhibitors_are_respected_then_overridden() {
        let s = Strategy::Immediate;
        let inh = [Inhibitor {
            who: "backup".into(),
            why: "writing a snapshot".into(),
        }];
        let mut i = input(&s, "2026-11-22T10:00:00Z");
        i.inhibitors = &inh;
        let d = decide(&i);
        let Verdict::Wait(b) = &d.verdict else {
            panic!("expected a wait")
        };
        assert_eq!(
            b.to_string(),
            "inhibited by backup (writing a snapshot): waiting until 2026-11-22T10:10:00Z at most"
        );
        i.allowed_since = d.allowed_since;
        i.now = ts("2026-11-22T10:10:00Z");
        assert_eq!(decide(&i).verdict, Verdict::Reboot { take_lock: false });
    }

    #[test]
    fn a_failed_trial_reboots_outside_its_window_without_the_lock_but_lets_users_finish() {
        for s in [
            berlin_sunday_night(),
            Strategy::Off,
            Strategy::FleetLock { group: "db".into() },
        ] {
            let mut i = input(&s, "2026-03-28T12:00:00Z");
            i.rescue = true;
            assert_eq!(decide(&i).verdict, Verdict::Reboot { take_lock: false });
            let users = ["alice".to_owned()];
            i.users = &users;
            let d = decide(&i);
            assert!(
                matches!(d.verdict, Verdict::Wait(Blocker::UsersLoggedIn { .. })),
                "{d:?}"
            );
            i.allowed_since = d.allowed_since;
            i.now = ts("2026-03-28T13:00:00Z");
            assert_eq!(decide(&i).verdict, Verdict::Reboot { take_lock: false });
        }
    }

    #[test]
    fn fleet_lock_asks_for_the_lock_last_and_reports_a_refusal() {
        let s = Strategy::FleetLock { group: "db".into() };
        let mut i = input(&s, "2026-11-22T10:00:00Z");
        assert_eq!(decide(&i).verdict, Verdict::Reboot { take_lock: true });
        i.lock_refused = Some("all 1 slots held");
        assert_eq!(
            decide(&i).verdict,
            Verdict::Wait(Blocker::LockHeld {
                group: "db".into(),
                detail: "all 1 slots held".into()
            })
        );
        // Users are checked before the lock is even asked for.
        let users = ["root".to_owned()];
        i.lock_refused = None;
        i.users = &users;
        assert!(matches!(
            decide(&i).verdict,
            Verdict::Wait(Blocker::UsersLoggedIn { .. })
        ));
    }
}
