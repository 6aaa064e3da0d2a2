//! The served metadata lives in the database (`store/repo_meta.rs`), so
//! every replica serves the same timestamp, snapshot and targets at any
//! moment. This module puts a verified publication there: in one
//! transaction that holds every other publication off, the new generation's
//! metadata is stored (refused if another replica served a timestamp at
//! least as new meanwhile), the release list replaced, the generation's
//! targets switched in on disk (`DIR/current`, shared storage with
//! replicas), and the audit entry written by the caller's commit. Target
//! files are in place before the metadata naming them becomes visible.

use std::time::SystemTime;

use moho_release::{MemorySource, TrustedState, VerifiedRepository, load_repository};

use super::RepoError;
use super::publish::{Prepared, activate, discard};
use super::sync::releases;
use crate::state::AppState;
use crate::store::{Change, Generation};

/// A source over metadata files held in memory (the stored generation).
pub fn source_of(files: &[(String, Vec<u8>)]) -> MemorySource {
    let mut source = MemorySource::new();
    for (name, bytes) in files {
        source.insert(name.clone(), bytes.clone());
    }
    source
}

/// Verifies stored metadata files against the trusted root.
pub fn verify_files(
    files: &[(String, Vec<u8>)],
    trusted_root: &[u8],
    trusted: &TrustedState,
    now: SystemTime,
) -> Result<VerifiedRepository, RepoError> {
    Ok(load_repository(
        &source_of(files),
        trusted_root,
        trusted,
        now,
    )?)
}

/// Inside `change`: makes `prepared` the served publication (metadata in
/// the database, releases, targets on disk). The caller commits `change`
/// with its audit entry; until then no replica serves any of it. On an
/// error the prepared generation is dropped.
pub async fn publish(
    app: &AppState,
    change: &mut Change,
    prepared: &Prepared,
) -> Result<Generation, RepoError> {
    let result = publish_inner(app, change, prepared).await;
    if result.is_err() {
        let dir = app.config.repo_dir.clone();
        let n = prepared.number;
        let _ = tokio::task::spawn_blocking(move || discard(&dir, n)).await;
    }
    result
}

async fn publish_inner(
    app: &AppState,
    change: &mut Change,
    prepared: &Prepared,
) -> Result<Generation, RepoError> {
    let state = prepared.repo.trusted_state();
    let generation = app
        .db
        .publish_metadata(
            change.tx(),
            &prepared.metadata,
            state.timestamp_version(),
            state.snapshot_version(),
            app.clock.now(),
        )
        .await?
        .map_err(|s| RepoError::Superseded {
            ours: state.timestamp_version(),
            served: s.served.timestamp_version,
        })?;
    app.db
        .replace_releases(change.tx(), &releases(&prepared.repo))
        .await?;
    let dir = app.config.repo_dir.clone();
    let n = prepared.number;
    tokio::task::spawn_blocking(move || activate(&dir, n))
        .await
        .map_err(|e| RepoError::BadUpload(format!("activation task failed: {e}")))??;
    Ok(generation)
}
