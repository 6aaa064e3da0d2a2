//! What one node is offered at a check-in, over every rollout of its scope
//! (channel, group, board): the pure decision the server makes between
//! gathering the facts and writing the result (DESIGN §6).
//!
//! The order of checks, per rollout, newest release first:
//! 0. a node that staged (or has on trial) the rollout's release is told to
//!    cancel it when the rollout was aborted or reverted or a hold stops
//!    it ([`Offer::Cancel`], DESIGN §3.13; a cancel only ever removes, so
//!    it needs no signature check);
//! 1. the release must be present in the signed repository, for the node's
//!    board, and signed for the node's channel — otherwise the rollout is
//!    ignored (a compromised database cannot offer what was not signed);
//! 2. a reverted rollout sends nodes running its release back
//!    ([`Offer::Revert`]);
//! 3. only a release newer than the booted version is considered;
//! 4. the release's minimum version, then the node's hold or pin;
//! 5. the rollout itself ([`crate::decide`]: lifecycle, attempt, ramp,
//!    window, caps).
//!
//! The first install or revert wins; otherwise the node waits for the
//! reason of the newest rollout that had one. The caller writes once: an
//! install that starts an attempt is recorded under the caps, and if the
//! caps refuse it (another replica or request took the last place), the
//! caller marks that candidate [`Candidate::capped`] and decides again.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::decide::{
    Attempt, NodeDecision, NodeFacts, RolloutView, VersionRelation, WaitReason, Withdrawal, decide,
    retry_after, withdrawn,
};
use crate::holds::Hold;
use crate::version::{parse_version, relation};

/// The node, as it described itself in this check-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo<'a> {
    /// Channel.
    pub channel: &'a str,
    /// Board.
    pub board: &'a str,
    /// Booted version.
    pub version: &'a str,
    /// The version staged or on trial (check-in state `staged`/`trial`).
    pub staged: Option<&'a str>,
}

/// A release as the signed repository lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseFacts<'a> {
    /// Board.
    pub board: &'a str,
    /// TUF target name of the image.
    pub target: &'a str,
    /// Channels it is signed for.
    pub channels: &'a [String],
    /// Oldest version it may be applied from.
    pub min_version: Option<&'a str>,
    /// Whether the repository still holds it.
    pub present: bool,
}

/// One rollout of the node's scope with what is known about this node.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The rollout's id (handed back in the offer).
    pub rollout: i64,
    /// The release version it rolls out.
    pub version: &'a str,
    /// Policy, state, counters and current cutoff.
    pub view: RolloutView<'a>,
    /// The release in the signed repository (`None`: not listed).
    pub release: Option<ReleaseFacts<'a>>,
    /// The node's place in line for this release.
    pub place: u64,
    /// The node's attempt at this rollout.
    pub attempt: Attempt,
    /// The caps refused to record a new attempt a moment ago.
    pub capped: bool,
}

/// Everything a check-in's answer depends on.
#[derive(Debug, Clone)]
pub struct OfferFacts<'a> {
    /// The node.
    pub node: NodeInfo<'a>,
    /// The hold or pin governing the node now, if any
    /// ([`crate::holds::effective_hold`]).
    pub hold: Option<&'a Hold>,
    /// The rollouts of the node's scope, in any order.
    pub candidates: Vec<Candidate<'a>>,
    /// How long an idle node waits before asking again.
    pub check_interval: SignedDuration,
}

/// Why a node gets nothing now. None of these is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum WaitWhy {
    /// No rollout offers the node anything newer.
    NoRollout,
    /// The booted version is not a semantic version: nothing compares.
    UnknownVersion {
        /// The version as reported.
        booted: String,
    },
    /// The release applies only from a newer version on.
    BelowMinimum {
        /// The release.
        version: String,
        /// Its minimum version.
        min_version: String,
    },
    /// A hold or pin keeps the node where it is.
    Held {
        /// When it expires.
        until: Timestamp,
    },
    /// The rollout of `version` says wait.
    Rollout {
        /// The release.
        version: String,
        /// Why.
        reason: WaitReason,
    },
    /// The caps refused the attempt when it was recorded.
    Capped {
        /// The release.
        version: String,
    },
}

/// The answer for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// Install `target` (release `version`) of rollout `rollout`.
    Install {
        /// The rollout.
        rollout: i64,
        /// Release version.
        version: String,
        /// TUF target name of the image.
        target: String,
        /// Whether this starts an attempt (recorded under the caps) or
        /// repeats the answer to a node already updating.
        new_attempt: bool,
    },
    /// Boot back into the previous slot: rollout `rollout` of
    /// `from_version` was reverted.
    Revert {
        /// The rollout.
        rollout: i64,
        /// The reverted version.
        from_version: String,
    },
    /// The node's staged (or trial) release `version` of rollout
    /// `rollout` was withdrawn: clear the armed slot (on trial: fall back).
    Cancel {
        /// The rollout.
        rollout: i64,
        /// The staged version.
        version: String,
        /// Why.
        why: Withdrawal,
    },
    /// Nothing now; ask again after `retry_after`.
    Wait {
        /// Why.
        why: WaitWhy,
        /// When to ask again (at least a minute).
        retry_after: SignedDuration,
    },
}

/// Decides what the node is offered at `now`.
pub fn choose(facts: &OfferFacts<'_>, now: Timestamp) -> Offer {
    let interval = facts.check_interval.max(SignedDuration::from_mins(1));
    let node = &facts.node;
    let mut order: Vec<&Candidate<'_>> = facts.candidates.iter().collect();
    // Newest release first; versions that do not parse last.
    order.sort_by(|a, b| {
        parse_version(b.version)
            .ok()
            .cmp(&parse_version(a.version).ok())
    });
    let mut first_wait: Option<(WaitWhy, SignedDuration)> = None;
    let mut note = |why: WaitWhy, after: SignedDuration| {
        first_wait.get_or_insert((why, after));
    };
    for c in order {
        if node.staged == Some(c.version) {
            let held_until = facts
                .hold
                .filter(|h| !h.allows(c.version).unwrap_or(false))
                .map(|h| h.until);
            if let Some(why) = withdrawn(c.view.state, held_until) {
                return Offer::Cancel {
                    rollout: c.rollout,
                    version: c.version.to_owned(),
                    why,
                };
            }
        }
        let Some(release) = c.release.filter(|r| {
            r.present && r.board == node.board && r.channels.iter().any(|ch| ch == node.channel)
        }) else {
            continue;
        };
        let Ok(rel) = relation(node.version, c.version) else {
            note(
                WaitWhy::UnknownVersion {
                    booted: node.version.to_owned(),
                },
                interval,
            );
            continue;
        };
        if rel != VersionRelation::Older {
            if let NodeDecision::Revert = decide(&c.view, &node_facts(c, rel), now) {
                return Offer::Revert {
                    rollout: c.rollout,
                    from_version: c.version.to_owned(),
                };
            }
            continue;
        }
        if let Some(min) = release.min_version
            && relation(node.version, min).is_ok_and(|x| x == VersionRelation::Older)
        {
            note(
                WaitWhy::BelowMinimum {
                    version: c.version.to_owned(),
                    min_version: min.to_owned(),
                },
                interval,
            );
            continue;
        }
        if let Some(h) = facts.hold
            && !h.allows(c.version).unwrap_or(false)
        {
            note(WaitWhy::Held { until: h.until }, interval);
            continue;
        }
        match decide(&c.view, &node_facts(c, rel), now) {
            NodeDecision::Install { new_attempt } if new_attempt && c.capped => note(
                WaitWhy::Capped {
                    version: c.version.to_owned(),
                },
                interval,
            ),
            NodeDecision::Install { new_attempt } => {
                return Offer::Install {
                    rollout: c.rollout,
                    version: c.version.to_owned(),
                    target: release.target.to_owned(),
                    new_attempt,
                };
            }
            NodeDecision::Revert => {
                return Offer::Revert {
                    rollout: c.rollout,
                    from_version: c.version.to_owned(),
                };
            }
            NodeDecision::Wait(reason) => note(
                WaitWhy::Rollout {
                    version: c.version.to_owned(),
                    reason,
                },
                retry_after(&reason, now, interval),
            ),
        }
    }
    let (why, retry_after) = first_wait.unwrap_or((WaitWhy::NoRollout, interval));
    Offer::Wait { why, retry_after }
}

fn node_facts(c: &Candidate<'_>, version: VersionRelation) -> NodeFacts {
    NodeFacts {
        place: c.place,
        version,
        attempt: c.attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holds::{HoldKind, HoldTarget};
    use crate::line::Cutoff;
    use crate::policy::RolloutPolicy;
    use crate::state::{RolloutState, RolloutStats, RolloutStatus};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    struct World {
        policy: RolloutPolicy,
        active: RolloutState,
        reverted: RolloutState,
        stats: RolloutStats,
        stable: Vec<String>,
    }

    fn world() -> World {
        let t0 = ts("2026-01-05T12:00:00Z");
        World {
            policy: RolloutPolicy::immediate(),
            active: RolloutState::new(t0),
            reverted: RolloutState {
                status: RolloutStatus::Reverted,
                ..RolloutState::new(t0)
            },
            stats: RolloutStats::default(),
            stable: vec!["stable".to_owned()],
        }
    }

    fn candidate<'a>(w: &'a World, id: i64, version: &'a str) -> Candidate<'a> {
        Candidate {
            rollout: id,
            version,
            view: RolloutView {
                policy: &w.policy,
                state: &w.active,
                stats: &w.stats,
                cutoff: Cutoff::EVERYONE,
            },
            release: Some(ReleaseFacts {
                board: "amd64",
                target: "amd64/x/root.img",
                channels: &w.stable,
                min_version: None,
                present: true,
            }),
            place: 7,
            attempt: Attempt::None,
            capped: false,
        }
    }

    fn facts<'a>(version: &'a str, candidates: Vec<Candidate<'a>>) -> OfferFacts<'a> {
        OfferFacts {
            node: NodeInfo {
                channel: "stable",
                board: "amd64",
                version,
                staged: None,
            },
            hold: None,
            candidates,
            check_interval: SignedDuration::from_mins(10),
        }
    }

    const NOW: &str = "2026-01-05T12:30:00Z";

    #[test]
    fn newest_signed_release_wins_and_unsigned_ones_are_ignored() {
        let w = world();
        let mut unsigned = candidate(&w, 3, "3.0.0");
        unsigned.release = None;
        let mut other_channel = candidate(&w, 4, "4.0.0");
        let beta = vec!["beta".to_owned()];
        if let Some(r) = &mut other_channel.release {
            r.channels = &beta;
        }
        let f = facts(
            "1.0.0",
            vec![
                candidate(&w, 1, "1.5.0"),
                unsigned,
                candidate(&w, 2, "2.0.0"),
                other_channel,
            ],
        );
        assert!(matches!(
            choose(&f, ts(NOW)),
            Offer::Install { rollout: 2, new_attempt: true, ref version, .. } if version == "2.0.0"
        ));
    }

    #[test]
    fn a_capped_write_falls_back_to_the_next_rollout_and_then_waits() {
        let w = world();
        let mut newest = candidate(&w, 2, "2.0.0");
        newest.capped = true;
        let f = facts("1.0.0", vec![newest, candidate(&w, 1, "1.5.0")]);
        assert!(matches!(
            choose(&f, ts(NOW)),
            Offer::Install { rollout: 1, .. }
        ));
        let f = facts("1.0.0", vec![newest]);
        assert_eq!(
            choose(&f, ts(NOW)),
            Offer::Wait {
                why: WaitWhy::Capped {
                    version: "2.0.0".into()
                },
                retry_after: SignedDuration::from_mins(10)
            }
        );
    }

    #[test]
    fn revert_min_version_and_holds_are_checked_in_order() {
        let w = world();
        let mut reverted = candidate(&w, 5, "2.0.0");
        reverted.view.state = &w.reverted;
        assert!(matches!(
            choose(&facts("2.0.0", vec![reverted]), ts(NOW)),
            Offer::Revert { rollout: 5, ref from_version } if from_version == "2.0.0"
        ));
        // Not on the reverted release: nothing to do.
        assert!(matches!(
            choose(&facts("1.0.0", vec![reverted]), ts(NOW)),
            Offer::Wait {
                why: WaitWhy::Rollout { .. },
                ..
            }
        ));

        let mut needs = candidate(&w, 6, "3.0.0");
        if let Some(r) = &mut needs.release {
            r.min_version = Some("2.0.0");
        }
        assert!(matches!(
            choose(&facts("1.0.0", vec![needs]), ts(NOW)),
            Offer::Wait {
                why: WaitWhy::BelowMinimum { .. },
                ..
            }
        ));

        let pin = Hold {
            target: HoldTarget::Group("default".into()),
            kind: HoldKind::Pin {
                version: "2.5.0".into(),
            },
            until: ts("2026-02-01T00:00:00Z"),
        };
        let mut f = facts(
            "2.0.0",
            vec![candidate(&w, 7, "3.0.0"), candidate(&w, 8, "2.5.0")],
        );
        f.hold = Some(&pin);
        // The pin stops 3.0.0, allows 2.5.0.
        assert!(matches!(
            choose(&f, ts(NOW)),
            Offer::Install { rollout: 8, .. }
        ));
        let mut f = facts("2.0.0", vec![candidate(&w, 7, "3.0.0")]);
        f.hold = Some(&pin);
        assert!(matches!(
            choose(&f, ts(NOW)),
            Offer::Wait {
                why: WaitWhy::Held { .. },
                ..
            }
        ));
    }

    #[test]
    fn a_staged_release_is_cancelled_when_its_rollout_is_aborted_or_a_hold_stops_it() {
        let w = world();
        let aborted = RolloutState {
            status: RolloutStatus::Aborted,
            ..w.active
        };
        let mut c = candidate(&w, 9, "2.0.0");
        c.view.state = &aborted;
        let mut f = facts("1.0.0", vec![c]);
        // Not staged: an aborted rollout is a wait.
        assert!(matches!(choose(&f, ts(NOW)), Offer::Wait { .. }));
        f.node.staged = Some("2.0.0");
        assert_eq!(
            choose(&f, ts(NOW)),
            Offer::Cancel {
                rollout: 9,
                version: "2.0.0".into(),
                why: Withdrawal::Aborted
            }
        );
        // Staged something else: this rollout's abort does not concern it.
        f.node.staged = Some("1.5.0");
        assert!(matches!(choose(&f, ts(NOW)), Offer::Wait { .. }));

        let hold = Hold {
            target: HoldTarget::Group("default".into()),
            kind: HoldKind::Hold,
            until: ts("2026-02-01T00:00:00Z"),
        };
        let mut f = facts("1.0.0", vec![candidate(&w, 3, "2.0.0")]);
        f.node.staged = Some("2.0.0");
        f.hold = Some(&hold);
        assert_eq!(
            choose(&f, ts(NOW)),
            Offer::Cancel {
                rollout: 3,
                version: "2.0.0".into(),
                why: Withdrawal::Held { until: hold.until }
            }
        );
        // Active, no hold: the staged node keeps its release.
        f.hold = None;
        assert!(matches!(
            choose(&f, ts(NOW)),
            Offer::Install {
                new_attempt: true,
                ..
            }
        ));
    }

    #[test]
    fn nothing_to_offer_is_a_wait_with_the_check_interval() {
        let w = world();
        assert_eq!(
            choose(&facts("1.0.0", vec![]), ts(NOW)),
            Offer::Wait {
                why: WaitWhy::NoRollout,
                retry_after: SignedDuration::from_mins(10)
            }
        );
        // Already on the newest: up to date, no rollout has anything.
        assert!(matches!(
            choose(&facts("2.0.0", vec![candidate(&w, 1, "2.0.0")]), ts(NOW)),
            Offer::Wait {
                why: WaitWhy::NoRollout,
                ..
            }
        ));
        assert!(matches!(
            choose(&facts("garbage", vec![candidate(&w, 1, "2.0.0")]), ts(NOW)),
            Offer::Wait {
                why: WaitWhy::UnknownVersion { .. },
                ..
            }
        ));
    }
}
