//! The answer to one check-in, in three steps (DESIGN §6):
//!
//! 1. [`gather`]: read every fact the answer depends on — the node's
//!    rollouts with their counters and line index, the signed releases,
//!    holds, and the node's attempts — from the caches and the database;
//! 2. decide: [`moho_rollout::offer::choose`], a pure function of those
//!    facts and `now`, with no awaits inside;
//! 3. [`write`]: record what the decision starts (a new attempt, under the
//!    caps) in one transaction. If the caps refuse it, the candidate is
//!    marked capped and step 2 runs again on the same facts.
//!
//! [`for_node`] runs them for any front end: the Moho node protocol maps
//! the [`Offer`] to its wire answer with [`node_action`]; the Omaha endpoint
//! answers an install with its version and everything else with `noupdate`.

pub mod gather;
pub mod write;

use jiff::{SignedDuration, Timestamp};
use moho_protocol::node::{NodeAction, WaitCode};
use moho_rollout::offer::{Offer, WaitWhy, choose};
use moho_rollout::{WaitReason, Withdrawal};

use crate::state::AppState;
use crate::store::{NodeRecord, PendingCheckIn, StoreError};

/// Gathers, decides and writes the answer for `node` at `now`. `staged` is
/// the version the node has staged or on trial (its check-in's
/// `staged_version` in state `staged` or `trial`; `None` from Omaha).
/// `pending` is the node's own check-in when it was accepted from memory
/// and is still being written behind: an answer that writes waits for it
/// first (step 3).
pub async fn for_node(
    app: &AppState,
    node: &NodeRecord,
    staged: Option<&str>,
    mut pending: Option<PendingCheckIn>,
    now: Timestamp,
) -> Result<Offer, StoreError> {
    let gathered = gather::gather(app, node, now).await?;
    let mut facts = gathered.facts(node, staged, now, app.config.check_interval);
    // Each refusal marks one more candidate capped: at most one round per
    // candidate, then the answer is a wait.
    for _ in 0..=facts.candidates.len() {
        let offer = choose(&facts, now);
        match write::record(app, &gathered, &offer, &node.id, &mut pending, now).await? {
            write::Recorded::Done => {
                if matches!(offer, Offer::Install { .. }) {
                    app.metrics.offers.inc();
                }
                return Ok(offer);
            }
            write::Recorded::Capped { rollout } => {
                for c in facts.candidates.iter_mut().filter(|c| c.rollout == rollout) {
                    c.capped = true;
                }
            }
        }
    }
    Ok(choose(&facts, now))
}

/// The Moho node protocol's answer for an offer.
pub fn node_action(offer: Offer) -> NodeAction {
    match offer {
        Offer::Install {
            version, target, ..
        } => NodeAction::Install { target, version },
        Offer::Revert { from_version, .. } => NodeAction::Revert { from_version },
        Offer::Cancel { version, why, .. } => {
            let reason = match why {
                Withdrawal::Aborted => format!("the rollout of {version} was aborted"),
                Withdrawal::Reverted => format!("the rollout of {version} was reverted"),
                Withdrawal::Held { until } => {
                    format!("{version} is held for this node until {until}")
                }
            };
            NodeAction::Cancel { version, reason }
        }
        Offer::Wait { why, retry_after } => {
            let (code, reason) = explain(&why);
            NodeAction::Wait {
                retry_after_secs: secs(retry_after),
                code,
                reason,
            }
        }
    }
}

fn secs(d: SignedDuration) -> u64 {
    u64::try_from(d.as_secs()).unwrap_or(60).max(60)
}

/// The wire code and a sentence for an operator reading the agent's log.
pub fn explain(why: &WaitWhy) -> (WaitCode, String) {
    match why {
        WaitWhy::NoRollout => (
            WaitCode::NoRollout,
            "no rollout offers this node anything newer".to_owned(),
        ),
        WaitWhy::UnknownVersion { booted } => (
            WaitCode::UpToDate,
            format!("booted version {booted:?} is not a semantic version"),
        ),
        WaitWhy::BelowMinimum {
            version,
            min_version,
        } => (
            WaitCode::UpToDate,
            format!("{version} applies only from {min_version} on"),
        ),
        WaitWhy::Held { until } => (WaitCode::Held, format!("held until {until}")),
        WaitWhy::Capped { version } => (
            WaitCode::Capacity,
            format!("the rollout of {version} is at its cap"),
        ),
        WaitWhy::Rollout { version, reason } => rollout_wait(reason, version),
    }
}

fn rollout_wait(reason: &WaitReason, version: &str) -> (WaitCode, String) {
    match reason {
        WaitReason::UpToDate => (
            WaitCode::UpToDate,
            format!("already runs {version} or newer"),
        ),
        WaitReason::AttemptFailed => (
            WaitCode::AttemptFailed,
            format!("the attempt at {version} failed"),
        ),
        WaitReason::Cancelled => (
            WaitCode::Stopped,
            format!("this node cancelled {version}; only a new rollout offers it again"),
        ),
        WaitReason::Paused => (
            WaitCode::Paused,
            format!("the rollout of {version} is paused"),
        ),
        WaitReason::Aborted | WaitReason::Reverted => (
            WaitCode::Stopped,
            format!("the rollout of {version} was stopped"),
        ),
        WaitReason::NotYetInLine { share } => (
            WaitCode::NotYetInLine,
            format!("the rollout of {version} is at {share} and has not reached this node"),
        ),
        WaitReason::WindowClosed { opens_at } => (
            WaitCode::WindowClosed,
            format!("the rollout of {version} waits for its window opening at {opens_at}"),
        ),
        WaitReason::ConcurrencyCap { in_flight, max } => (
            WaitCode::Capacity,
            format!("{in_flight} of at most {max} nodes are updating to {version}"),
        ),
        WaitReason::PeriodCap { max } => (
            WaitCode::Capacity,
            format!("{max} nodes already started {version} this period"),
        ),
    }
}
