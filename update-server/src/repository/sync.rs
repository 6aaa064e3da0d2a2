//! Loads the served repository through the full TUF client workflow and
//! lists its releases, then records them in the database: only what the
//! release keys signed can ever be offered to a node.

use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use moho_release::{TrustedState, VerifiedRepository, load_repository};
use sha2::{Digest, Sha256};

use super::source::DirSource;
use super::{RepoError, io_err, served_root};
use crate::state::AppState;
use crate::store::SyncedRelease;

/// Loads and verifies the repository at `root` (blocking).
pub fn load(
    root: &Path,
    trusted_root: &[u8],
    trusted: &TrustedState,
    now: SystemTime,
) -> Result<VerifiedRepository, RepoError> {
    let source = DirSource {
        root: root.to_owned(),
    };
    Ok(load_repository(&source, trusted_root, trusted, now)?)
}

/// The releases a verified repository signs.
pub fn releases(repo: &VerifiedRepository) -> Vec<SyncedRelease> {
    repo.releases()
        .map(|r| SyncedRelease {
            version: r.custom().version.clone(),
            board: r.custom().board.clone(),
            target: r.image().name().to_owned(),
            channels: r.custom().channels.iter().cloned().collect(),
            min_version: r.custom().min_version.clone(),
            size: Some(r.image().length()),
        })
        .collect()
}

/// Checks that every image and chunk index file of every release is present
/// under `root/targets/` with its signed length and SHA-256 (blocking), at
/// the TUF specification's path or, in a repository made by older tools,
/// at the legacy one.
pub fn check_target_files(root: &Path, repo: &VerifiedRepository) -> Result<(), RepoError> {
    for r in repo.releases() {
        let index = repo.target(&r.custom().chunk_index)?;
        for info in [r.image(), index] {
            let bad = |problem: String| RepoError::Target {
                name: info.name().to_owned(),
                problem,
            };
            let candidates: Vec<_> = info
                .paths()
                .iter()
                .map(|p| root.join("targets").join(p))
                .collect();
            let path = candidates
                .iter()
                .find(|p| p.is_file())
                .cloned()
                .unwrap_or_else(|| candidates[0].clone());
            let mut f =
                std::fs::File::open(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut len = 0u64;
            loop {
                let n = f.read(&mut buf).map_err(io_err(&path))?;
                if n == 0 {
                    break;
                }
                len += n as u64;
                hasher.update(&buf[..n]);
            }
            if len != info.length() {
                return Err(bad(format!(
                    "{len} bytes, signed length is {}",
                    info.length()
                )));
            }
            if hasher.finalize().as_slice() != info.sha256().as_bytes() {
                return Err(bad("content does not match the signed sha256".to_owned()));
            }
        }
    }
    Ok(())
}

/// Loads and verifies the served repository (on a blocking thread).
async fn verify_served(app: &AppState) -> Result<VerifiedRepository, RepoError> {
    let trusted_root = app
        .config
        .trusted_root
        .clone()
        .ok_or(RepoError::NoTrustedRoot)?;
    let root = served_root(&app.config.repo_dir);
    let now = SystemTime::from(app.clock.now());
    tokio::task::spawn_blocking(move || load(&root, &trusted_root, &TrustedState::default(), now))
        .await
        .map_err(|e| RepoError::BadUpload(format!("verification task failed: {e}")))?
}

/// What the server keeps of a repository it just verified and synced.
fn remember(app: &AppState, repo: &VerifiedRepository) {
    app.caches.clear();
    app.remember_repo(repo);
}

/// Loads the served repository and replaces the database's release list
/// (at start: nobody asked, nothing is audited).
pub async fn sync(app: &AppState) -> Result<Vec<SyncedRelease>, RepoError> {
    let repo = verify_served(app).await?;
    let list = releases(&repo);
    app.db.sync_releases(&list).await?;
    remember(app, &repo);
    Ok(list)
}

/// [`sync`] asked for by `actor`: the new list and the audit entry (with
/// the list before and after) are written together.
pub async fn sync_audited(app: &AppState, actor: &str) -> Result<Vec<SyncedRelease>, RepoError> {
    let repo = verify_served(app).await?;
    let list = releases(&repo);
    let before = serde_json::to_value(app.db.releases().await?).ok();
    let mut change = app
        .db
        .change(actor, "releases.sync", "releases", app.clock.now())
        .await?;
    app.db.replace_releases(change.tx(), &list).await?;
    change
        .commit(before.as_ref(), Some(&releases_json(&list)))
        .await?;
    remember(app, &repo);
    Ok(list)
}

/// The audit log's view of a release list.
pub fn releases_json(list: &[SyncedRelease]) -> serde_json::Value {
    serde_json::Value::Array(
        list.iter()
            .map(|r| serde_json::json!({"version": r.version, "board": r.board, "target": r.target, "channels": r.channels}))
            .collect(),
    )
}

/// Re-signs the online roles if they are close to expiry and the server
/// holds their keys; returns whether it did. Audited as actor `system`.
pub async fn refresh_if_due(app: &AppState) -> Result<bool, RepoError> {
    let (Some(keys), Some(trusted_root)) = (
        app.config.online_keys.clone(),
        app.config.trusted_root.clone(),
    ) else {
        return Ok(false);
    };
    let _guard = app.publish_lock.lock().await;
    let dir = app.config.repo_dir.clone();
    let now = SystemTime::from(app.clock.now());
    let trusted = app
        .repo_state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .unwrap_or_default();
    let repo =
        tokio::task::spawn_blocking(move || -> Result<Option<VerifiedRepository>, RepoError> {
            let current = load(&served_root(&dir), &trusted_root, &trusted, now)?;
            if !super::refresh::due(&current.expiry(), now) {
                return Ok(None);
            }
            super::refresh::refresh(&dir, &keys, &trusted_root, &current.trusted_state(), now)
                .map(Some)
        })
        .await
        .map_err(|e| RepoError::BadUpload(format!("refresh task failed: {e}")))??;
    let Some(repo) = repo else { return Ok(false) };
    app.remember_repo(&repo);
    let after = serde_json::json!({
        "timestamp_version": repo.trusted_state().timestamp_version(),
        "snapshot_version": repo.trusted_state().snapshot_version(),
    });
    app.db
        .change(
            "system",
            "repository.refresh",
            "repository",
            app.clock.now(),
        )
        .await?
        .commit(None, Some(&after))
        .await?;
    Ok(true)
}
