//! The rollout ticker: the one place where a rollout moves on by itself.
//! Every pass reads each active rollout with fresh counters, asks the pure
//! [`moho_rollout::tick`] whether it pauses itself (failure rate) or takes
//! its next ramp step (hold passed, health gate met), and saves the new
//! state with its audit entry (actor `system`) under optimistic concurrency
//! on the rollout's revision: an operator's change made meanwhile wins, and
//! the next pass looks again. Check-ins only read the stored state.

use std::time::Duration;

use jiff::Timestamp;
use moho_rollout::{RolloutStatus, TickEvent, tick};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::store::{RolloutRecord, StoreError};

/// One pass over every active rollout at the state's clock; returns what
/// changed. A rollout that fails to tick is logged and skipped.
pub async fn tick_all(state: &AppState) -> Result<Vec<(i64, TickEvent)>, StoreError> {
    let now = state.clock.now();
    let mut changed = Vec::new();
    for r in state.db.rollouts().await? {
        if r.state.status != RolloutStatus::Active {
            continue;
        }
        let id = r.id;
        match tick_one(state, r, now).await {
            Ok(Some(event)) => changed.push((id, event)),
            Ok(None) => {}
            Err(e) => tracing::warn!(rollout = id, "tick failed: {e}"),
        }
    }
    if !changed.is_empty() {
        state.caches.clear();
    }
    Ok(changed)
}

/// Ticks one rollout at `now`; saves and audits the change if there is one.
async fn tick_one(
    state: &AppState,
    record: RolloutRecord,
    now: Timestamp,
) -> Result<Option<TickEvent>, StoreError> {
    let index = state
        .caches
        .line_index(&state.db, &state.config, &record, now)
        .await?;
    let mut stats = state.db.rollout_stats(&record, now).await?;
    stats.scope_size = index.len() as u64;
    let (next, event) = tick(&record.policy, record.state, &stats, now);
    let Some(event) = event else {
        return Ok(None);
    };
    let (action, cause) = match event {
        TickEvent::AutoPaused { failed, finished } => (
            "rollout.auto_pause",
            serde_json::json!({"failed": failed, "finished": finished}),
        ),
        TickEvent::Advanced { to } => ("rollout.advance", serde_json::json!({"step": to})),
    };
    let id = record.id;
    let mut change = state
        .db
        .change("system", action, format!("rollout/{id}"), now)
        .await?;
    if !state
        .db
        .save_rollout_state(Some(change.tx()), id, record.revision, &next)
        .await?
    {
        // Changed meanwhile (an operator, or another ticker): look again
        // next pass.
        change.abandon().await?;
        return Ok(None);
    }
    let before = serde_json::to_value(record.state).ok();
    let mut after = serde_json::to_value(next).unwrap_or_default();
    after["cause"] = cause;
    change.commit(before.as_ref(), Some(&after)).await?;
    tracing::info!(rollout = id, ?event, "rollout state changed");
    Ok(Some(event))
}

/// Ticks every `every` until `stop` is cancelled (a pass in progress
/// finishes first).
pub async fn run(state: AppState, every: Duration, stop: CancellationToken) {
    let mut interval = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        if !state.is_leader() {
            continue;
        }
        if let Err(e) = tick_all(&state).await {
            tracing::warn!("rollout tick failed: {e}");
        }
    }
}
