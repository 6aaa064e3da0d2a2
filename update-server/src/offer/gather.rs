//! Step 1 of a check-in's answer: every fact the decision reads, fetched
//! before it runs (from the caches, which may lag `stats_ttl` behind the
//! database, and the node's attempts from the database).

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use moho_protocol::admin::ReleaseView;
use moho_rollout::offer::{Candidate, NodeInfo, OfferFacts, ReleaseFacts};
use moho_rollout::{Attempt, Hold, InFlightPhase, RolloutView, effective_hold, place_in_line};

use crate::cache::{LiveRollout, release_key};
use crate::state::AppState;
use crate::store::{AttemptStatus, NodeRecord, Phase, StoreError};

/// What [`gather`] read, owned; [`Gathered::facts`] lends it to the
/// decision.
#[derive(Debug)]
pub struct Gathered {
    releases: Arc<Vec<ReleaseView>>,
    holds: Vec<Hold>,
    /// The rollouts of the node's scope, each with the node's place in line
    /// and attempt.
    pub rollouts: Vec<(LiveRollout, u64, Attempt)>,
}

/// Reads the facts for `node` at `now`.
pub async fn gather(
    app: &AppState,
    node: &NodeRecord,
    now: Timestamp,
) -> Result<Gathered, StoreError> {
    let cfg = &app.config;
    let releases = app.caches.releases(&app.db, cfg, now).await?;
    let holds = app.caches.holds(&app.db, cfg, now).await?;
    let scope = app
        .caches
        .scope(&app.db, cfg, &node.channel, &node.group, &node.board, now)
        .await?;
    let mut rollouts = Vec::with_capacity(scope.len());
    for live in scope {
        let r = &live.record;
        let place = place_in_line(&node.id, &release_key(&r.board, &r.version));
        let cutoff = live.index.cutoff(r.policy.share_at(r.state.step));
        // The attempt matters only to a node the ramp has reached, or to
        // one that may be sent back: skip the lookup for the rest (most
        // check-ins of a large fleet during a rollout).
        let attempt = if cutoff.admits(place) {
            match app.db.attempt(r.id, &node.id).await? {
                None => Attempt::None,
                Some(a) => match a.status {
                    AttemptStatus::InFlight => Attempt::InFlight {
                        started: a.started_at,
                        phase: match a.phase {
                            Phase::Offered | Phase::Downloading => InFlightPhase::Installing,
                            _ => InFlightPhase::Staged,
                        },
                    },
                    AttemptStatus::Cancelled => Attempt::Cancelled,
                    // An unsigned success ended the attempt like a healthy
                    // report: nothing more to offer this node.
                    AttemptStatus::Healthy | AttemptStatus::Succeeded => Attempt::Healthy,
                    AttemptStatus::Failed => Attempt::Failed,
                },
            }
        } else {
            Attempt::None
        };
        rollouts.push((live, place, attempt));
    }
    Ok(Gathered {
        releases,
        holds,
        rollouts,
    })
}

impl Gathered {
    /// The decision's view of the facts at `now`.
    pub fn facts<'a>(
        &'a self,
        node: &'a NodeRecord,
        staged: Option<&'a str>,
        now: Timestamp,
        check_interval: SignedDuration,
    ) -> OfferFacts<'a> {
        let candidates = self
            .rollouts
            .iter()
            .map(|(live, place, attempt)| {
                let r = &live.record;
                Candidate {
                    rollout: r.id,
                    version: &r.version,
                    view: RolloutView {
                        policy: &r.policy,
                        state: &r.state,
                        stats: &live.stats,
                        cutoff: live.index.cutoff(r.policy.share_at(r.state.step)),
                    },
                    // Only a release of the kind the node's updater
                    // installs (a Moho image or a Flatcar payload).
                    release: self
                        .releases
                        .iter()
                        .find(|x| {
                            x.version == r.version
                                && x.board == node.board
                                && x.kind == node.kind.release_kind()
                        })
                        .map(|x| ReleaseFacts {
                            board: &x.board,
                            target: &x.target,
                            channels: &x.channels,
                            min_version: x.min_version.as_deref(),
                            present: x.present,
                        }),
                    place: *place,
                    attempt: *attempt,
                    capped: false,
                }
            })
            .collect();
        OfferFacts {
            node: NodeInfo {
                channel: &node.channel,
                board: &node.board,
                version: &node.version,
                staged,
            },
            hold: effective_hold(&self.holds, &node.id, &node.group, now),
            candidates,
            check_interval,
        }
    }

    /// The rollout record a candidate came from.
    pub fn rollout(&self, id: i64) -> Option<&LiveRollout> {
        self.rollouts
            .iter()
            .map(|(l, _, _)| l)
            .find(|l| l.record.id == id)
    }
}
