//! The server's answer to one check-in: gathers the node's rollouts, the
//! release facts from the signed repository, holds and attempts, asks the
//! pure rollout maths, and records a new attempt atomically under the caps.

use jiff::{SignedDuration, Timestamp};
use moho_protocol::node::{NodeAction, WaitCode};
use moho_rollout::decide::retry_after;
use moho_rollout::version::{parse_version, relation};
use moho_rollout::{
    Attempt, NodeDecision, NodeFacts, RolloutStatus, RolloutView, VersionRelation, WaitReason,
    decide, effective_hold, place_in_line,
};

use crate::app::AppState;
use crate::cache::release_key;
use crate::error::ApiError;
use crate::store::{AttemptStatus, NodeRecord};

fn wait(code: WaitCode, reason: impl Into<String>, after: SignedDuration) -> NodeAction {
    NodeAction::Wait {
        retry_after_secs: u64::try_from(after.as_secs()).unwrap_or(60).max(60),
        code,
        reason: reason.into(),
    }
}

fn explain(reason: &WaitReason, version: &str) -> (WaitCode, String) {
    match reason {
        WaitReason::UpToDate => (
            WaitCode::UpToDate,
            format!("already runs {version} or newer"),
        ),
        WaitReason::AttemptFailed => (
            WaitCode::AttemptFailed,
            format!("the attempt at {version} failed"),
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

/// Decides what `node` should do at `now`.
pub async fn for_node(
    app: &AppState,
    node: &NodeRecord,
    now: Timestamp,
) -> Result<NodeAction, ApiError> {
    let cfg = &app.config;
    let interval = cfg.check_interval;
    let releases = app.caches.releases(&app.db, cfg, now).await?;
    let holds = app.caches.holds(&app.db, cfg, now).await?;
    let hold = effective_hold(&holds, &node.id, &node.group, now);
    let mut rollouts = app
        .caches
        .scope(&app.db, cfg, &node.channel, &node.group, &node.board, now)
        .await?;
    // Newest release first.
    rollouts.sort_by(|a, b| {
        parse_version(&b.record.version)
            .ok()
            .cmp(&parse_version(&a.record.version).ok())
    });
    let mut first_wait: Option<NodeAction> = None;
    let mut note = |action: NodeAction| {
        if first_wait.is_none() {
            first_wait = Some(action);
        }
    };
    for live in &rollouts {
        let r = &live.record;
        // Only targets signed for this node's channel and board.
        let Some(release) = releases
            .iter()
            .find(|x| x.version == r.version && x.board == node.board)
        else {
            continue;
        };
        if !release.present || !release.channels.contains(&node.channel) {
            continue;
        }
        let Ok(rel) = relation(&node.version, &r.version) else {
            note(wait(
                WaitCode::UpToDate,
                format!(
                    "booted version {:?} is not a semantic version",
                    node.version
                ),
                interval,
            ));
            continue;
        };
        if r.state.status == RolloutStatus::Reverted && rel == VersionRelation::Same {
            return Ok(NodeAction::Revert {
                from_version: r.version.clone(),
            });
        }
        if rel != VersionRelation::Older {
            continue;
        }
        if let Some(min) = &release.min_version
            && relation(&node.version, min).is_ok_and(|x| x == VersionRelation::Older)
        {
            note(wait(
                WaitCode::UpToDate,
                format!("{} applies only from {min} on", r.version),
                interval,
            ));
            continue;
        }
        if let Some(h) = hold
            && !h.allows(&r.version).unwrap_or(false)
        {
            note(wait(
                WaitCode::Held,
                format!("held until {}", h.until),
                interval,
            ));
            continue;
        }
        let place = place_in_line(&node.id, &release_key(&r.board, &r.version));
        let cutoff = live.index.cutoff(r.policy.share_at(r.state.step));
        // Nodes the ramp has not reached have no attempt: skip the lookup
        // (most check-ins of a large fleet during a rollout).
        let attempt = if !cutoff.admits(place) {
            Attempt::None
        } else {
            match app.db.attempt(r.id, &node.id).await? {
                None => Attempt::None,
                Some(a) => match a.status {
                    AttemptStatus::InFlight => Attempt::InFlight {
                        started: a.started_at,
                    },
                    AttemptStatus::Healthy => Attempt::Healthy,
                    AttemptStatus::Failed => Attempt::Failed,
                },
            }
        };
        let facts = NodeFacts {
            place,
            version: rel,
            attempt,
        };
        let view = RolloutView {
            policy: &r.policy,
            state: &r.state,
            stats: &live.stats,
            cutoff,
        };
        match decide(&view, &facts, now) {
            NodeDecision::Install { new_attempt } => {
                if !new_attempt || app.db.start_attempt(r, &node.id, now).await? {
                    app.metrics.offers.inc();
                    return Ok(NodeAction::Install {
                        target: release.target.clone(),
                        version: r.version.clone(),
                    });
                }
                note(wait(
                    WaitCode::Capacity,
                    format!("the rollout of {} is at its cap", r.version),
                    interval,
                ));
            }
            NodeDecision::Revert => {
                return Ok(NodeAction::Revert {
                    from_version: r.version.clone(),
                });
            }
            NodeDecision::Wait(reason) => {
                let (code, text) = explain(&reason, &r.version);
                note(wait(code, text, retry_after(&reason, now, interval)));
            }
        }
    }
    Ok(first_wait.unwrap_or_else(|| {
        wait(
            WaitCode::NoRollout,
            "no rollout offers this node anything newer",
            interval,
        )
    }))
}
