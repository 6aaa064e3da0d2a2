//! Automatic re-signing of the online roles: when the server holds the
//! snapshot and timestamp keys (`--online-keys DIR`), it re-signs them
//! before they expire with the repository library's `refresh` (the same code
//! as `image-tools repo refresh`), and publishes the result through the same
//! verified, atomic path as an upload. Only the replica that runs the
//! background jobs does it, and the database refuses a re-signing that
//! comes after a newer publication. The offline root and targets keys are
//! never needed here.

use std::path::Path;
use std::time::{Duration, SystemTime};

use moho_release::{Expiry, MetadataSource, TrustedState};
use moho_repo::{Current, DirSource, Expiries, KeyRing};

use super::publish::{Prepared, new_upload, prepare, staging_dir};
use super::stored::source_of;
use super::{RepoError, io_err, served_root};

/// Re-sign when the timestamp has less than this left.
pub const TIMESTAMP_MARGIN: Duration = Duration::from_secs(12 * 3600);
/// Re-sign when the snapshot has less than this left.
pub const SNAPSHOT_MARGIN: Duration = Duration::from_secs(2 * 86_400);

/// The timestamp is re-signed when less than this is left of it, for
/// timestamps signed to live `lifetime`: [`TIMESTAMP_MARGIN`], or half the
/// lifetime when that is shorter (an operator who signs timestamps for an
/// hour wants them re-signed every half hour, not on every check).
pub fn timestamp_margin(lifetime: Duration) -> Duration {
    TIMESTAMP_MARGIN.min(lifetime / 2)
}

/// Whether the online metadata is close enough to expiry to re-sign, with
/// `timestamp_margin` from [`timestamp_margin`].
pub fn due(expiry: &Expiry, now: SystemTime, timestamp_margin: Duration) -> bool {
    let left = |t: SystemTime| t.duration_since(now).unwrap_or(Duration::ZERO);
    left(expiry.timestamp) < timestamp_margin || left(expiry.snapshot) < SNAPSHOT_MARGIN
}

/// Root and targets (offline keys: a person signs them) are flagged this
/// long before they expire.
pub const OFFLINE_NOTICE: Duration = Duration::from_secs(7 * 86_400);

/// A role of the served metadata that expires soon, or has: nodes refuse
/// expired metadata, so the fleet stops updating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryWarning {
    /// `root`, `targets`, `snapshot` or `timestamp`.
    pub role: &'static str,
    /// When it expires.
    pub expires: SystemTime,
    /// Already expired at `now`.
    pub expired: bool,
    /// Signed with an offline key (root, targets): only a person can
    /// re-sign it; the server re-signs the others when it holds their keys.
    pub offline: bool,
}

/// The roles to warn about at `now`: an online role past its re-signing
/// margin (the server would have re-signed it by now, so either it holds no
/// online keys or re-signing fails), an offline role within
/// [`OFFLINE_NOTICE`]. Soonest first. `timestamp_margin` as for [`due`].
pub fn expiry_warnings(
    expiry: &Expiry,
    now: SystemTime,
    timestamp_margin: Duration,
) -> Vec<ExpiryWarning> {
    let mut out: Vec<ExpiryWarning> = [
        ("root", expiry.root, OFFLINE_NOTICE, true),
        ("targets", expiry.targets, OFFLINE_NOTICE, true),
        ("snapshot", expiry.snapshot, SNAPSHOT_MARGIN, false),
        ("timestamp", expiry.timestamp, timestamp_margin, false),
    ]
    .into_iter()
    .filter_map(|(role, expires, notice, offline)| {
        let left = expires.duration_since(now).unwrap_or(Duration::ZERO);
        (left < notice).then_some(ExpiryWarning {
            role,
            expires,
            expired: left == Duration::ZERO,
            offline,
        })
    })
    .collect();
    out.sort_by_key(|w| w.expires);
    out
}

/// Re-signs snapshot and timestamp of the served metadata (`base`, from
/// the database; the served directory's when nothing is stored) with the
/// keys in `keys`, at `now`, and prepares the result as a new generation
/// (blocking), the new timestamp valid for `timestamp_expiry`.
/// [`super::stored::publish`] serves it.
pub fn refresh(
    repo_dir: &Path,
    keys: &Path,
    timestamp_expiry: Duration,
    base: Option<&[(String, Vec<u8>)]>,
    trusted_root: &[u8],
    trusted: &TrustedState,
    now: SystemTime,
) -> Result<Prepared, RepoError> {
    let signing = |e: moho_repo::RepoError| {
        RepoError::BadUpload(format!(
            "re-signing with the keys in {}: {e}",
            keys.display()
        ))
    };
    let served = served_root(repo_dir).join("metadata");
    let dir_source = DirSource::new(&served);
    let mem_source = base.map(source_of);
    let source: &dyn MetadataSource = match &mem_source {
        Some(m) => m,
        None => &dir_source,
    };
    let current = Current::load(source, trusted_root, "served repository").map_err(signing)?;
    let ring = KeyRing::load(keys).map_err(|e| signing(e.into()))?;
    let expiries = Expiries {
        timestamp: timestamp_expiry,
        ..Expiries::default()
    };
    let (publication, _) = moho_repo::refresh(&current, &ring, &expiries, now).map_err(signing)?;
    publication
        .verify(source, trusted_root, now)
        .map_err(signing)?;
    let id = new_upload(repo_dir)?;
    let staged = staging_dir(repo_dir, &id)?.join("metadata");
    std::fs::create_dir_all(&staged).map_err(io_err(&staged))?;
    for (name, bytes) in publication.metadata_files() {
        let path = staged.join(name);
        std::fs::write(&path, bytes).map_err(io_err(&path))?;
    }
    prepare(repo_dir, &id, base, trusted_root, trusted, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    fn at(now: SystemTime, hours: u64) -> SystemTime {
        now + Duration::from_secs(hours * H)
    }

    #[test]
    fn fresh_metadata_needs_no_warning() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let e = Expiry {
            root: at(now, 365 * 24),
            targets: at(now, 90 * 24),
            snapshot: at(now, 7 * 24),
            timestamp: at(now, 24),
        };
        assert_eq!(expiry_warnings(&e, now, TIMESTAMP_MARGIN), vec![]);
    }

    #[test]
    fn online_roles_past_their_margin_and_offline_roles_within_a_week_are_flagged() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let e = Expiry {
            root: at(now, 365 * 24),
            targets: at(now, 6 * 24),
            snapshot: at(now, 3 * 24),
            timestamp: at(now, 11),
        };
        let w = expiry_warnings(&e, now, TIMESTAMP_MARGIN);
        assert_eq!(
            w.iter().map(|w| (w.role, w.offline)).collect::<Vec<_>>(),
            vec![("timestamp", false), ("targets", true)]
        );
        assert!(w.iter().all(|w| !w.expired));
        // 25 hours later the timestamp has expired; it is still listed first.
        let later = at(now, 25);
        let w = expiry_warnings(&e, later, TIMESTAMP_MARGIN);
        assert_eq!(w[0].role, "timestamp");
        assert!(w[0].expired);
        assert_eq!(w[1].role, "snapshot");
    }

    #[test]
    fn short_lived_timestamps_are_re_signed_at_half_their_life() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            timestamp_margin(Duration::from_secs(24 * H)),
            TIMESTAMP_MARGIN
        );
        let margin = timestamp_margin(Duration::from_secs(2 * H));
        assert_eq!(margin, Duration::from_secs(H));
        let e = |timestamp_hours: u64| Expiry {
            root: at(now, 365 * 24),
            targets: at(now, 90 * 24),
            snapshot: at(now, 7 * 24),
            timestamp: at(now, timestamp_hours),
        };
        // Signed for 2 h, 2 h left: not due, and no warning.
        assert!(!due(&e(2), now, margin));
        assert_eq!(expiry_warnings(&e(2), now, margin), vec![]);
        // Under an hour left: due (with the default margin it would be due
        // all the time).
        assert!(due(&e(2), at(now, 1) + Duration::from_secs(1), margin));
        assert!(due(&e(2), now, TIMESTAMP_MARGIN));
    }
}
