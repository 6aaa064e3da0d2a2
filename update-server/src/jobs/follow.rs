//! Following the served metadata on every replica, leader or not: what a
//! replica shows about the repository it serves (the metadata's expiry in
//! `/metrics` and the dashboard's alert, the rollback state its own
//! publications start from) comes from the last publication it verified.
//! Another replica's publication (the leader's re-signing, an upload
//! committed there) is in the shared database at once; every `every` this
//! job asks the database for the served generation's number (one indexed
//! row) and, when it changed, verifies that generation and remembers it.

use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::repository::RepoError;
use crate::state::AppState;

/// One pass: verifies and remembers the served generation if it is not
/// the one this replica last followed; returns whether it was new.
pub async fn follow_once(state: &AppState) -> Result<bool, RepoError> {
    let Some(trusted_root) = state.config.trusted_root.clone() else {
        return Ok(false);
    };
    let Some(served) = state.db.served_generation().await? else {
        return Ok(false);
    };
    if state.followed_generation() == Some(served.number) {
        return Ok(false);
    }
    let Some((generation, files)) = state.db.served_metadata().await? else {
        return Ok(false);
    };
    let trusted = state
        .repo_state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .unwrap_or_default();
    let now = SystemTime::from(state.clock.now());
    let repo = tokio::task::spawn_blocking(move || {
        crate::repository::stored::verify_files(&files, &trusted_root, &trusted, now)
    })
    .await
    .map_err(|e| RepoError::BadUpload(format!("verification task failed: {e}")))??;
    state.caches.clear();
    state.remember_repo(&repo);
    state.set_followed_generation(generation.number);
    Ok(true)
}

/// Follows every `every` until `stop` is cancelled.
pub async fn run(state: AppState, every: Duration, stop: CancellationToken) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        match follow_once(&state).await {
            Ok(_) => failing = false,
            // Said once, not every few seconds.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!("cannot verify the served metadata another replica published: {e}");
            }
            Err(_) => {}
        }
    }
}
