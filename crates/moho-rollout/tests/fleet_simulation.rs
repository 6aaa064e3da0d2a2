//! Fleet simulation (issue 5 acceptance): 10,000 virtual nodes on a virtual
//! clock go through a whole rollout decided by the pure rollout functions.
//!
//! Checked as an operator would: the share of nodes offered the update
//! tracks the ramp within ±1 point at each step, the concurrency cap is never
//! exceeded, nothing is offered outside the calendar windows (checked against
//! the local wall clock, independently of the window code), injected 20 %
//! failures pause the rollout before 50 nodes failed, and a revert brings
//! every node that took the release back to the previous version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jiff::{SignedDuration, Timestamp};
use moho_rollout::decide::VersionRelation;
use moho_rollout::line::{LineIndex, place_in_line};
use moho_rollout::policy::RolloutPolicy;
use moho_rollout::state::{Action, RolloutState, RolloutStats, RolloutStatus, apply_action};
use moho_rollout::{
    Attempt, InFlightPhase, NodeDecision, NodeFacts, RolloutView, TickEvent, decide, tick,
};

const NODES: usize = 10_000;
const OLD: &str = "1.0.0";
const NEW: &str = "1.1.0";
const MAX_IN_FLIGHT: u64 = 200;
/// Nodes ask every 10 minutes, spread evenly over those minutes.
const CHECK_EVERY_MIN: usize = 10;

fn policy() -> RolloutPolicy {
    serde_json::from_value(serde_json::json!({
        "steps": [
            {"percent": 1, "hold": "1h"}, {"percent": 5, "hold": "1h"},
            {"percent": 10, "hold": "1h"}, {"percent": 25, "hold": "1h"},
            {"percent": 50, "hold": "1h"}, {"percent": 100}
        ],
        "max_in_flight": MAX_IN_FLIGHT,
        "windows": [{"days": ["mon-sun"], "start": "06:00", "length": "16h", "time_zone": "America/New_York"}],
        "auto_pause": {"max_failure_percent": 10, "min_sample": 20},
        "health_gate": {"min_healthy_percent": 99},
        "update_timeout": "2h"
    }))
    .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Busy {
    /// Installing; done at the time, then healthy or rolled back.
    Updating { done: Timestamp, fails: bool },
    /// Rebooting into the previous slot after a revert.
    Reverting { done: Timestamp },
}

#[derive(Debug)]
struct Node {
    id: String,
    place: u64,
    version: &'static str,
    attempt: Attempt,
    busy: Option<Busy>,
    fails: bool,
    took_release: bool,
}

/// The server side of the simulation: state, counters, and what it saw.
struct Sim {
    policy: RolloutPolicy,
    state: RolloutState,
    stats: RolloutStats,
    index: LineIndex,
    nodes: Vec<Node>,
    now: Timestamp,
    offers_outside_window: Vec<Timestamp>,
    max_in_flight_seen: u64,
    step_checks: Vec<(f64, f64)>,
    failed_when_paused: Option<u64>,
}

fn small_hash(id: &str, salt: &str) -> u64 {
    place_in_line(id, salt)
}

impl Sim {
    fn new(failure_percent: u64) -> Self {
        let start: Timestamp = "2026-03-07T05:00:00Z".parse().unwrap(); // midnight in New York
        let nodes: Vec<Node> = (0..NODES)
            .map(|i| {
                let id = format!("node-{i:05}");
                Node {
                    place: place_in_line(&id, NEW),
                    fails: small_hash(&id, "failure-injection") % 100 < failure_percent,
                    id,
                    version: OLD,
                    attempt: Attempt::None,
                    busy: None,
                    took_release: false,
                }
            })
            .collect();
        let index = LineIndex::new(nodes.iter().map(|n| n.place));
        Sim {
            policy: policy(),
            state: RolloutState::new(start),
            stats: RolloutStats {
                scope_size: NODES as u64,
                ..Default::default()
            },
            index,
            nodes,
            now: start,
            offers_outside_window: Vec::new(),
            max_in_flight_seen: 0,
            step_checks: Vec::new(),
            failed_when_paused: None,
        }
    }

    fn local_hour(&self) -> i8 {
        let tz = moho_rollout::window::time_zone("America/New_York").unwrap();
        self.now.to_zoned(tz).hour()
    }

    /// One virtual minute: finish work that is due, let a tenth of the
    /// fleet check in, then let the rollout tick.
    fn minute(&mut self, minute: usize) {
        let now = self.now;
        for n in &mut self.nodes {
            match n.busy {
                Some(Busy::Updating { done, fails }) if done <= now => {
                    n.busy = None;
                    self.stats.in_flight -= 1;
                    if fails {
                        // Booted the new slot, failed health checks, fell back.
                        n.attempt = Attempt::Failed;
                        self.stats.failed += 1;
                    } else {
                        n.version = NEW;
                        n.attempt = Attempt::Healthy;
                        n.took_release = true;
                        self.stats.healthy += 1;
                    }
                }
                Some(Busy::Reverting { done }) if done <= now => {
                    n.busy = None;
                    n.version = OLD;
                }
                _ => {}
            }
        }
        let cutoff = self.index.cutoff(self.policy.share_at(self.state.step));
        let in_window = (6..22).contains(&self.local_hour());
        for i in (minute % CHECK_EVERY_MIN..NODES).step_by(CHECK_EVERY_MIN) {
            if self.nodes[i].busy.is_some() {
                continue;
            }
            let n = &self.nodes[i];
            let facts = NodeFacts {
                place: n.place,
                version: if n.version == NEW {
                    VersionRelation::Same
                } else {
                    VersionRelation::Older
                },
                attempt: n.attempt,
            };
            let view = RolloutView {
                policy: &self.policy,
                state: &self.state,
                stats: &self.stats,
                cutoff,
            };
            match decide(&view, &facts, now) {
                NodeDecision::Install { new_attempt: true } => {
                    if !in_window {
                        self.offers_outside_window.push(now);
                    }
                    let n = &mut self.nodes[i];
                    let minutes = 15 + i64::try_from(small_hash(&n.id, "duration") % 20).unwrap();
                    let done = now.checked_add(SignedDuration::from_mins(minutes)).unwrap();
                    n.busy = Some(Busy::Updating {
                        done,
                        fails: n.fails,
                    });
                    n.attempt = Attempt::InFlight {
                        started: now,
                        phase: InFlightPhase::Installing,
                    };
                    self.stats.offered += 1;
                    self.stats.in_flight += 1;
                    self.max_in_flight_seen = self.max_in_flight_seen.max(self.stats.in_flight);
                }
                NodeDecision::Install { new_attempt: false } => {}
                NodeDecision::Revert => {
                    let done = now.checked_add(SignedDuration::from_mins(5)).unwrap();
                    self.nodes[i].busy = Some(Busy::Reverting { done });
                }
                NodeDecision::Wait(_) => {}
            }
        }
        let share_before = self.policy.share_at(self.state.step);
        let (next, event) = tick(&self.policy, self.state, &self.stats, now);
        match event {
            Some(TickEvent::Advanced { .. }) => {
                let offered = self.stats.offered as f64 * 100.0 / NODES as f64;
                self.step_checks.push((share_before.percent(), offered));
            }
            Some(TickEvent::AutoPaused { failed, .. }) => self.failed_when_paused = Some(failed),
            None => {}
        }
        self.state = next;
        self.now = now.checked_add(SignedDuration::from_mins(1)).unwrap();
    }

    fn run_minutes(&mut self, minutes: usize, until: impl Fn(&Sim) -> bool) {
        for m in 0..minutes {
            if until(self) {
                return;
            }
            self.minute(m);
        }
    }

    fn offered_percent(&self) -> f64 {
        self.stats.offered as f64 * 100.0 / NODES as f64
    }
}

#[test]
fn healthy_fleet_follows_the_ramp_within_caps_and_windows() {
    let mut sim = Sim::new(0);
    let four_days = 4 * 24 * 60;
    sim.run_minutes(four_days, |s| s.nodes.iter().all(|n| n.version == NEW));

    assert!(
        sim.nodes.iter().all(|n| n.version == NEW),
        "rollout did not finish in four days"
    );
    assert!(
        sim.offers_outside_window.is_empty(),
        "offers outside the window at {:?}",
        sim.offers_outside_window
    );
    assert!(
        sim.max_in_flight_seen <= MAX_IN_FLIGHT,
        "{} nodes updating at once",
        sim.max_in_flight_seen
    );
    assert_eq!(
        sim.max_in_flight_seen, MAX_IN_FLIGHT,
        "the cap should have been the limit at some point"
    );
    // One check per step left (five steps before the last).
    assert_eq!(sim.step_checks.len(), 5, "{:?}", sim.step_checks);
    for (ramp, offered) in &sim.step_checks {
        assert!(
            (ramp - offered).abs() <= 1.0,
            "ramp {ramp}% but {offered}% offered"
        );
    }
    assert!((sim.offered_percent() - 100.0).abs() < f64::EPSILON);
}

#[test]
fn ramp_never_runs_ahead_of_its_step() {
    let mut sim = Sim::new(0);
    for m in 0..(2 * 24 * 60) {
        sim.minute(m);
        let share = sim.policy.share_at(sim.state.step).percent();
        assert!(
            sim.offered_percent() <= share + 1e-9,
            "{}% offered at step {share}%",
            sim.offered_percent()
        );
    }
}

#[test]
fn injected_failures_pause_early_and_revert_brings_nodes_back() {
    let mut sim = Sim::new(20);
    sim.run_minutes(2 * 24 * 60, |_| false);

    assert!(
        matches!(sim.state.status, RolloutStatus::Paused { .. }),
        "rollout should have paused itself: {:?}",
        sim.state
    );
    let failed_at_pause = sim.failed_when_paused.unwrap();
    assert!(
        failed_at_pause < 50,
        "paused only after {failed_at_pause} failures"
    );
    // Attempts in flight at the pause finish, but nothing new starts.
    assert!(
        sim.stats.failed < 50,
        "{} nodes failed in total",
        sim.stats.failed
    );
    assert!(
        sim.offered_percent() <= 1.0,
        "{}% offered despite failures",
        sim.offered_percent()
    );
    let took: Vec<usize> = (0..NODES).filter(|i| sim.nodes[*i].took_release).collect();
    assert!(!took.is_empty(), "some nodes should have taken the release");
    assert!(took.iter().all(|i| sim.nodes[*i].version == NEW));

    sim.state = apply_action(sim.state, Action::Revert, sim.now).unwrap();
    sim.run_minutes(24 * 60, |_| false);
    let still_new = sim.nodes.iter().filter(|n| n.version == NEW).count();
    assert_eq!(
        still_new, 0,
        "{still_new} nodes still run the reverted release"
    );
    assert!(
        took.iter()
            .all(|i| sim.nodes[*i].version == OLD && sim.nodes[*i].busy.is_none())
    );
}
