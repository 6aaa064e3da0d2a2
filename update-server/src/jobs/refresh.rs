//! Re-signing of the online metadata: checks periodically whether the
//! snapshot or timestamp is close to expiry and, with the online keys at
//! hand, re-signs and publishes it (`crate::repository::sync::refresh_if_due`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Checks every `every` until `stop` is cancelled (a pass in progress
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
        match crate::repository::sync::refresh_if_due(&state).await {
            Ok(true) => tracing::info!("re-signed snapshot and timestamp metadata"),
            Ok(false) => {}
            Err(e) => tracing::error!("re-signing the online metadata failed: {e}"),
        }
    }
}
