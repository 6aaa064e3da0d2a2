//! Loads the served repository through the full TUF client workflow and
//! lists its releases, then records them in the database: only what the
//! release keys signed can ever be offered to a node. The served metadata
//! is the database's ([`super::stored`]); a sync imports the directory's
//! when nothing is stored yet or the directory is managed by someone else
//! and holds newer metadata.

use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use moho_release::{TrustedState, VerifiedRepository, load_repository};
use sha2::{Digest, Sha256};

use super::publish::{Prepared, read_metadata_dir};
use super::source::DirSource;
use super::{RepoError, io_err, served_root};
use crate::state::AppState;
use crate::store::{Generation, SyncedRelease};

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

/// What a sync found to serve.
enum Found {
    /// The stored generation, verified.
    Stored(Generation, VerifiedRepository),
    /// The directory's metadata, newer than the stored one (or nothing is
    /// stored): imported into the database by the sync.
    Disk(Prepared),
}

/// Verifies the stored metadata and, when nothing is stored yet or the
/// directory is managed by someone else (no `DIR/current`), the directory's
/// (on a blocking thread); picks the newer.
async fn find(app: &AppState) -> Result<Found, RepoError> {
    let trusted_root = app
        .config
        .trusted_root
        .clone()
        .ok_or(RepoError::NoTrustedRoot)?;
    let stored = app.db.served_metadata().await?;
    let dir = app.config.repo_dir.clone();
    let now = SystemTime::from(app.clock.now());
    tokio::task::spawn_blocking(move || {
        let trusted = TrustedState::default();
        let managed = dir.join("current").exists();
        let stored = stored.map(|(g, files)| {
            super::stored::verify_files(&files, &trusted_root, &trusted, now).map(|r| (g, r))
        });
        let disk = (stored.is_none() || !managed).then(|| {
            let root = served_root(&dir);
            let repo = load(&root, &trusted_root, &trusted, now)?;
            let metadata = read_metadata_dir(&root.join("metadata"))?;
            Ok::<_, RepoError>(Prepared {
                number: 0,
                repo,
                metadata,
            })
        });
        match (stored, disk) {
            (Some(Ok((g, stored))), Some(Ok(disk)))
                if disk.repo.trusted_state().timestamp_version()
                    <= stored.trusted_state().timestamp_version() =>
            {
                Ok(Found::Stored(g, stored))
            }
            (_, Some(Ok(disk))) => Ok(Found::Disk(disk)),
            (Some(Ok((g, stored))), _) => Ok(Found::Stored(g, stored)),
            (Some(Err(e)), _) | (None, Some(Err(e))) => Err(e),
            (None, None) => Err(RepoError::BadUpload("nothing to sync".to_owned())),
        }
    })
    .await
    .map_err(|e| RepoError::BadUpload(format!("verification task failed: {e}")))?
}

/// What the server keeps of a repository it just verified and synced.
fn remember(app: &AppState, repo: &VerifiedRepository) {
    app.caches.clear();
    app.remember_repo(repo);
}

/// Stores `disk`'s metadata as the served generation with its release
/// list, audited as `actor`/`action`; `None` when another publication got
/// there first.
async fn import(
    app: &AppState,
    disk: &Prepared,
    actor: &str,
    action: &str,
) -> Result<Option<Vec<SyncedRelease>>, RepoError> {
    let state = disk.repo.trusted_state();
    let list = releases(&disk.repo);
    let before = serde_json::to_value(app.db.releases().await?).ok();
    let mut change = app
        .db
        .change(actor, action, "releases", app.clock.now())
        .await?;
    let stored = app
        .db
        .publish_metadata(
            change.tx(),
            &disk.metadata,
            state.timestamp_version(),
            state.snapshot_version(),
            app.clock.now(),
        )
        .await?;
    if stored.is_err() {
        change.abandon().await?;
        return Ok(None);
    }
    app.db.replace_releases(change.tx(), &list).await?;
    change
        .commit(before.as_ref(), Some(&releases_json(&list)))
        .await?;
    Ok(Some(list))
}

/// At start: finds what to serve (the stored metadata, or the directory's
/// when it is newer, which is then imported and audited as `system`) and
/// remembers it. The release list was written by the publication that
/// stored the generation, so nothing else is written.
pub async fn sync(app: &AppState) -> Result<Vec<SyncedRelease>, RepoError> {
    for _ in 0..3 {
        match find(app).await? {
            Found::Stored(g, repo) => {
                remember(app, &repo);
                app.set_followed_generation(g.number);
                return Ok(releases(&repo));
            }
            Found::Disk(disk) => {
                if let Some(list) = import(app, &disk, "system", "repository.import").await? {
                    remember(app, &disk.repo);
                    return Ok(list);
                }
            }
        }
    }
    Err(RepoError::BadUpload(
        "the served metadata kept changing during the sync: try again".to_owned(),
    ))
}

/// [`sync`] asked for by `actor`: the release list is written again from
/// the served metadata (or the imported directory), with the audit entry
/// (the list before and after), in one transaction.
pub async fn sync_audited(app: &AppState, actor: &str) -> Result<Vec<SyncedRelease>, RepoError> {
    for _ in 0..3 {
        match find(app).await? {
            Found::Stored(g, repo) => {
                let list = releases(&repo);
                let before = serde_json::to_value(app.db.releases().await?).ok();
                let mut change = app
                    .db
                    .change(actor, "releases.sync", "releases", app.clock.now())
                    .await?;
                if app.db.lock_publications(change.tx()).await? != Some(g) {
                    // Published meanwhile: its list is newer than ours.
                    change.abandon().await?;
                    continue;
                }
                app.db.replace_releases(change.tx(), &list).await?;
                change
                    .commit(before.as_ref(), Some(&releases_json(&list)))
                    .await?;
                remember(app, &repo);
                return Ok(list);
            }
            Found::Disk(disk) => {
                if let Some(list) = import(app, &disk, actor, "releases.sync").await? {
                    remember(app, &disk.repo);
                    return Ok(list);
                }
            }
        }
    }
    Err(RepoError::BadUpload(
        "the served metadata kept changing during the sync: try again".to_owned(),
    ))
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
    let base = app.db.served_metadata().await?.map(|(_, files)| files);
    let lifetime = app.config.timestamp_expiry;
    let prepared = tokio::task::spawn_blocking(move || -> Result<Option<Prepared>, RepoError> {
        let current = match &base {
            Some(files) => super::stored::verify_files(files, &trusted_root, &trusted, now)?,
            None => load(&served_root(&dir), &trusted_root, &trusted, now)?,
        };
        if !super::refresh::due(
            &current.expiry(),
            now,
            super::refresh::timestamp_margin(lifetime),
        ) {
            return Ok(None);
        }
        super::refresh::refresh(
            &dir,
            &keys,
            lifetime,
            base.as_deref(),
            &trusted_root,
            &current.trusted_state(),
            now,
        )
        .map(Some)
    })
    .await
    .map_err(|e| RepoError::BadUpload(format!("refresh task failed: {e}")))??;
    let Some(prepared) = prepared else {
        return Ok(false);
    };
    let after = serde_json::json!({
        "timestamp_version": prepared.repo.trusted_state().timestamp_version(),
        "snapshot_version": prepared.repo.trusted_state().snapshot_version(),
    });
    let mut change = app
        .db
        .change(
            "system",
            "repository.refresh",
            "repository",
            app.clock.now(),
        )
        .await?;
    let generation = super::stored::publish(app, &mut change, &prepared).await?;
    change.commit(None, Some(&after)).await?;
    app.remember_repo(&prepared.repo);
    app.set_followed_generation(generation.number);
    Ok(true)
}
