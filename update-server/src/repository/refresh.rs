//! Automatic re-signing of the online roles: when the server holds the
//! snapshot and timestamp keys (`--online-keys DIR`), it re-signs them
//! before they expire with the repository library's `refresh` (the same code
//! as `image-tools repo refresh`), and publishes the result through the same
//! verified, atomic path as an upload. The offline root and targets keys are
//! never needed here.

use std::path::Path;
use std::time::{Duration, SystemTime};

use moho_release::{Expiry, TrustedState, VerifiedRepository};
use moho_repo::{Current, DirSource, Expiries, KeyRing};

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
/// `keys`, at `now`, and serves the result (blocking).
pub fn refresh(
    repo_dir: &Path,
    keys: &Path,
    trusted_root: &[u8],
    trusted: &TrustedState,
    now: SystemTime,
) -> Result<VerifiedRepository, RepoError> {
    let signing = |e: moho_repo::RepoError| {
        RepoError::BadUpload(format!(
            "re-signing with the keys in {}: {e}",
            keys.display()
        ))
    };
    let served = served_root(repo_dir).join("metadata");
    let source = DirSource::new(&served);
    let current = Current::load(&source, trusted_root, "served repository").map_err(signing)?;
    let ring = KeyRing::load(keys).map_err(|e| signing(e.into()))?;
    let (publication, _) =
        moho_repo::refresh(&current, &ring, &Expiries::default(), now).map_err(signing)?;
    publication
        .verify(&source, trusted_root, now)
        .map_err(signing)?;
    let id = new_upload(repo_dir)?;
    let staged = staging_dir(repo_dir, &id)?.join("metadata");
    std::fs::create_dir_all(&staged).map_err(io_err(&staged))?;
    for (name, bytes) in publication.metadata_files() {
        let path = staged.join(name);
        std::fs::write(&path, bytes).map_err(io_err(&path))?;
    }
    commit(repo_dir, &id, trusted_root, trusted, now)
}
