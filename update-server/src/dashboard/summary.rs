//! The fleet summary behind the overview: every node counted by channel,
//! group, board, version and state in one pass, and each open rollout's
//! attempts by phase. With a million nodes that pass takes a noticeable
//! fraction of a second, so it is cached for `summary_ttl` and then served
//! stale while one background task recomputes it (stale-while-revalidate);
//! only a summary older than six TTLs (or a zero TTL, as in tests) is
//! computed while the request waits. The page says how old its figures are.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use moho_rollout::RolloutStatus;

use super::progress::Progress;
use crate::state::AppState;
use crate::store::{FleetRow, StoreError};

/// One computed summary.
#[derive(Debug, Clone, Default)]
pub struct FleetSummary {
    /// When it was computed.
    pub at: Timestamp,
    /// Nodes grouped.
    pub rows: Vec<FleetRow>,
    /// Progress of each active or paused rollout, by id.
    pub progress: HashMap<i64, Progress>,
}

/// The cache.
#[derive(Debug, Default)]
pub struct SummaryCache {
    current: Mutex<Option<Arc<FleetSummary>>>,
    gate: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
}

impl SummaryCache {
    fn get_current(&self) -> Option<Arc<FleetSummary>> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(&self, s: Arc<FleetSummary>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(s);
    }
}

/// Nodes not seen for this many check intervals count as stale.
pub const STALE_INTERVALS: i32 = 3;

async fn compute(app: &AppState) -> Result<FleetSummary, StoreError> {
    let now = app.clock.now();
    let stale_before = now
        .checked_sub(app.config.check_interval * STALE_INTERVALS)
        .unwrap_or(Timestamp::MIN);
    let rows = app.db.fleet_rows(stale_before).await?;
    let mut progress = HashMap::new();
    for r in app.db.rollouts().await? {
        if matches!(
            r.state.status,
            RolloutStatus::Active | RolloutStatus::Paused { .. }
        ) {
            let timeout_start = now
                .checked_sub(r.policy.update_timeout)
                .unwrap_or(Timestamp::MIN);
            let phases = app.db.attempt_phases(r.id, timeout_start).await?;
            progress.insert(r.id, Progress::from_rows(&phases));
        }
    }
    Ok(FleetSummary {
        at: now,
        rows,
        progress,
    })
}

/// Computes the summary now (at server start, so the first visitor does
/// not wait for it).
pub async fn warm(app: &AppState) {
    let cache = &app.dashboard.summary;
    let _one = cache.gate.lock().await;
    match compute(app).await {
        Ok(s) => cache.store(Arc::new(s)),
        Err(e) => tracing::warn!("dashboard summary not computed: {e}"),
    }
}

/// The summary, fresh within the TTL or recomputed as described above.
pub async fn summary(app: &AppState) -> Result<Arc<FleetSummary>, StoreError> {
    let cache = &app.dashboard.summary;
    let ttl = app.config.summary_ttl;
    let age_ok = |s: &FleetSummary, limit: jiff::SignedDuration| {
        let now = app.clock.now();
        now >= s.at && now.duration_since(s.at) < limit
    };
    if let Some(s) = cache.get_current() {
        if age_ok(&s, ttl) {
            return Ok(s);
        }
        if age_ok(&s, ttl * 6) {
            if !cache.refreshing.swap(true, Ordering::AcqRel) {
                let app = app.clone();
                tokio::spawn(async move {
                    let cache = &app.dashboard.summary;
                    let _one = cache.gate.lock().await;
                    match compute(&app).await {
                        Ok(fresh) => cache.store(Arc::new(fresh)),
                        Err(e) => tracing::warn!("dashboard summary refresh failed: {e}"),
                    }
                    cache.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(s);
        }
    }
    let _one = cache.gate.lock().await;
    if let Some(s) = cache.get_current()
        && age_ok(&s, ttl)
    {
        return Ok(s);
    }
    let fresh = Arc::new(compute(app).await?);
    cache.store(fresh.clone());
    Ok(fresh)
}
