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
use crate::app::AppState;
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
        })
        .collect()
}

/// Checks that every image and chunk index file of every release is present
/// under `root/targets/` with its signed length and SHA-256 (blocking).
pub fn check_target_files(root: &Path, repo: &VerifiedRepository) -> Result<(), RepoError> {
    for r in repo.releases() {
        let index = repo.target(&r.custom().chunk_index)?;
        for info in [r.image(), index] {
            let path = root.join("targets").join(info.path());
            let bad = |problem: String| RepoError::Target {
                name: info.name().to_owned(),
                problem,
            };
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

/// Loads the served repository and replaces the database's release list.
pub async fn sync(app: &AppState) -> Result<Vec<SyncedRelease>, RepoError> {
    let trusted_root = app
        .config
        .trusted_root
        .clone()
        .ok_or(RepoError::NoTrustedRoot)?;
    let root = served_root(&app.config.repo_dir);
    let now = SystemTime::from(app.clock.now());
    let repo = tokio::task::spawn_blocking(move || {
        load(&root, &trusted_root, &TrustedState::default(), now)
    })
    .await
    .map_err(|e| RepoError::BadUpload(format!("verification task failed: {e}")))??;
    let list = releases(&repo);
    app.db.sync_releases(&list).await?;
    app.caches.clear();
    *app.repo_state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(repo.trusted_state());
    Ok(list)
}
