//! Retention: forgets nodes that have not checked in for the configured
//! time (`--node-retention-days`), with their attempts, events and FleetLock
//! slots, audited as actor `system`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::store::StoreError;

/// One retention pass: removes nodes last seen before now − retention and
/// audits it as actor `system`. Returns how many were removed.
pub async fn prune_stale(state: &AppState) -> Result<u64, StoreError> {
    let Some(keep) = state.config.node_retention else {
        return Ok(0);
    };
    let now = state.clock.now();
    let before = now.checked_sub(keep).unwrap_or(jiff::Timestamp::MIN);
    let mut change = state
        .db
        .change("system", "nodes.retention", "nodes", now)
        .await?;
    let removed = state.db.prune_nodes(change.tx(), before).await?;
    if removed > 0 {
        let after = serde_json::json!({"retention_secs": keep.as_secs(), "removed": removed});
        change.commit(None, Some(&after)).await?;
        tracing::info!("forgot {removed} node(s) not seen for {keep:#}");
    } else {
        change.abandon().await?;
    }
    Ok(removed)
}

/// A retention pass every `every` until `stop` is cancelled (a pass in
/// progress finishes first).
pub async fn run(state: AppState, every: Duration, stop: CancellationToken) {
    let mut interval = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        if let Err(e) = prune_stale(&state).await {
            tracing::error!("pruning stale nodes failed: {e}");
        }
    }
}
