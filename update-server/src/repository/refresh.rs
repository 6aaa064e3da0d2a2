//! Automatic re-signing of the online roles: when the server holds the
//! snapshot and timestamp keys (`--online-keys DIR`), it re-signs them
//! before they expire, with `image-tools`' own `repo refresh`, and publishes
//! the result through the same verified, atomic path as an upload. The
//! offline root and targets keys are never needed here.

use std::path::Path;
use std::time::{Duration, SystemTime};

use image_tools::cli::{OnlineExpiry, RepoRefreshArgs};
use moho_release::{Expiry, TrustedState, VerifiedRepository};

use super::publish::{commit, new_upload, staging_dir};
use super::{RepoError, io_err, served_root};

/// Re-sign when the timestamp has less than this left.
pub const TIMESTAMP_MARGIN: Duration = Duration::from_secs(12 * 3600);
/// Re-sign when the snapshot has less than this left.
pub const SNAPSHOT_MARGIN: Duration = Duration::from_secs(2 * 86_400);

/// Whether the online metadata is close enough to expiry to re-sign.
pub fn due(expiry: &Expiry, now: SystemTime) -> bool {
    let left = |t: SystemTime| t.duration_since(now).unwrap_or(Duration::ZERO);
    left(expiry.timestamp) < TIMESTAMP_MARGIN || left(expiry.snapshot) < SNAPSHOT_MARGIN
}

/// Re-signs snapshot and timestamp of the served repository with the keys in
/// `keys` and serves the result (blocking).
pub fn refresh(
    repo_dir: &Path,
    keys: &Path,
    trusted_root: &[u8],
    trusted: &TrustedState,
    now: SystemTime,
) -> Result<VerifiedRepository, RepoError> {
    let served = served_root(repo_dir).join("metadata");
    let work = repo_dir.join(format!("refresh-{}", uuid::Uuid::new_v4().simple()));
    let work_meta = work.join("metadata");
    std::fs::create_dir_all(&work_meta).map_err(io_err(&work_meta))?;
    let result = (|| {
        // Copies, not links: refresh rewrites timestamp.json in place.
        for entry in std::fs::read_dir(&served).map_err(io_err(&served))? {
            let entry = entry.map_err(io_err(&served))?;
            std::fs::copy(entry.path(), work_meta.join(entry.file_name()))
                .map_err(io_err(&entry.path()))?;
        }
        image_tools::repo_refresh::run(&RepoRefreshArgs {
            repo: work.clone(),
            keys: keys.to_owned(),
            online_expiry: OnlineExpiry {
                snapshot_expires: Duration::from_secs(7 * 86_400),
                timestamp_expires: Duration::from_secs(86_400),
            },
        })
        .map_err(|e| {
            RepoError::BadUpload(format!(
                "re-signing with the keys in {}: {e}",
                keys.display()
            ))
        })?;
        let id = new_upload(repo_dir)?;
        let staged = staging_dir(repo_dir, &id)?.join("metadata");
        std::fs::rename(&work_meta, &staged).map_err(io_err(&staged))?;
        commit(repo_dir, &id, trusted_root, trusted, now)
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}
