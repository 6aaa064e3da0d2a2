//! Retention: forgets nodes that have not checked in for the configured
//! time (`--node-retention-days`), with their attempts, events and FleetLock
//! slots; node events older than `--event-retention-days`; audit entries
//! older than `--audit-retention-days`. Each pruning is audited as actor
//! `system` in the transaction that does it.

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
    // Check-ins written behind first (before the transaction takes the
    // writer): a node seen since is not stale.
    state.check_ins.flush().await?;
    let mut change = state
        .db
        .change("system", "nodes.retention", "nodes", now)
        .await?;
    let removed = state.db.prune_nodes(change.tx(), before).await?;
    if removed > 0 {
        let after = serde_json::json!({"retention_secs": keep.as_secs(), "removed": removed});
        change.commit(None, Some(&after)).await?;
        state.hot.forget_seen_before(before);
        tracing::info!("forgot {removed} node(s) not seen for {keep:#}");
    } else {
        change.abandon().await?;
    }
    Ok(removed)
}

/// What one [`prune_all`] pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Nodes.
    pub nodes: u64,
    /// Node events.
    pub events: u64,
    /// Audit entries.
    pub audit: u64,
}

/// What [`prune_older`] deletes.
#[derive(Debug, Clone, Copy)]
enum Old {
    Events,
    Audit,
}

/// Deletes `what` older than now − `keep`, with an audit entry `action`
/// (nothing, not even the entry, when nothing was old).
async fn prune_older(
    state: &AppState,
    keep: Option<jiff::SignedDuration>,
    what: Old,
) -> Result<u64, StoreError> {
    let Some(keep) = keep else { return Ok(0) };
    let (action, subject) = match what {
        Old::Events => ("events.retention", "events"),
        Old::Audit => ("audit.retention", "audit"),
    };
    let now = state.clock.now();
    let before = now.checked_sub(keep).unwrap_or(jiff::Timestamp::MIN);
    let mut change = state.db.change("system", action, subject, now).await?;
    let removed = match what {
        Old::Events => state.db.prune_events(change.tx(), before).await?,
        Old::Audit => state.db.prune_audit(change.tx(), before).await?,
    };
    if removed > 0 {
        let after = serde_json::json!({"retention_secs": keep.as_secs(), "removed": removed});
        change.commit(None, Some(&after)).await?;
        tracing::info!("{action}: removed {removed} {subject} entries older than {keep:#}");
    } else {
        change.abandon().await?;
    }
    Ok(removed)
}

/// One whole retention pass: stale nodes, old events, old audit entries.
pub async fn prune_all(state: &AppState) -> Result<Pruned, StoreError> {
    let nodes = prune_stale(state).await?;
    let events = prune_older(state, state.config.event_retention, Old::Events).await?;
    let audit = prune_older(state, state.config.audit_retention, Old::Audit).await?;
    Ok(Pruned {
        nodes,
        events,
        audit,
    })
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
        if !state.is_leader() {
            continue;
        }
        if let Err(e) = prune_all(&state).await {
            tracing::error!("retention pass failed: {e}");
        }
    }
}
