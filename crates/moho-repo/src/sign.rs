//! Signing metadata: versions, expiries (from the caller's `now`), metafile
//! entries, and signatures by the keys a root names for a role.
//!
//! Signatures are made by `tough`'s `SignedRole`, whose API is async though
//! nothing in it waits when the keys are in memory: it is driven to
//! completion with `futures-executor`'s `block_on`, so this crate starts no
//! runtime and may be called from any thread (a server's blocking pool
//! included).

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use moho_release::Sha256Digest;
use serde::Serialize;
use tough::editor::signed::SignedRole;
use tough::schema::{Hashes, KeyHolder, Metafile, Role, Root, Snapshot, Timestamp};

use crate::error::RepoError;
use crate::keys::KeyRing;

/// The TUF specification version written.
pub const SPEC_VERSION: &str = "1.0.0";

/// How long newly signed metadata of each role stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiries {
    /// Root (offline key).
    pub root: Duration,
    /// Targets (offline key, re-signed with every release).
    pub targets: Duration,
    /// Snapshot (online key).
    pub snapshot: Duration,
    /// Timestamp (online key, re-signed most often).
    pub timestamp: Duration,
}

impl Default for Expiries {
    /// 365 days, 90 days, 7 days, 1 day.
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            root: Duration::from_secs(365 * DAY),
            targets: Duration::from_secs(90 * DAY),
            snapshot: Duration::from_secs(7 * DAY),
            timestamp: Duration::from_secs(DAY),
        }
    }
}

/// `now + d`, whole seconds, as metadata carries it.
pub fn expires_at(now: SystemTime, d: Duration) -> jiff::Timestamp {
    let at = now.checked_add(d).unwrap_or(now);
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(jiff::Timestamp::MAX)
}

/// `v + 1`.
pub fn next_version(v: NonZeroU64) -> NonZeroU64 {
    v.checked_add(1).unwrap_or(v)
}

/// Signs `role` with the keys of `keys` that `root` names for it; refuses
/// fewer signatures than the threshold (also for root, which `tough` leaves
/// to the caller).
pub fn sign<T: Role + Serialize + Clone>(
    role: T,
    root: &Root,
    keys: &KeyRing,
) -> Result<SignedRole<T>, RepoError> {
    let rng = SystemRandom::new();
    let role_type = T::TYPE;
    let role_keys = root.roles.get(&role_type).ok_or(RepoError::NotEnoughKeys {
        dir: keys.dir().to_owned(),
        role: role_type,
        threshold: 1,
        root_version: root.version.get(),
    })?;
    let not_enough = || RepoError::NotEnoughKeys {
        dir: keys.dir().to_owned(),
        role: role_type,
        threshold: role_keys.threshold.get(),
        root_version: root.version.get(),
    };
    let signed = futures_executor::block_on(SignedRole::new(
        role,
        &KeyHolder::Root(root.clone()),
        &keys.sources(),
        &rng,
    ))
    .map_err(|source| match source {
        tough::error::Error::SigningKeysNotFound { .. }
        | tough::error::Error::KeysNotFoundInRoot { .. } => not_enough(),
        source => RepoError::Sign {
            role: role_type,
            source: Box::new(source),
        },
    })?;
    if (signed.signed().signatures.len() as u64) < role_keys.threshold.get() {
        return Err(not_enough());
    }
    Ok(signed)
}

/// A metafile entry (length, SHA-256, version) for `bytes`.
pub fn metafile(bytes: &[u8], version: NonZeroU64) -> Metafile {
    Metafile {
        length: Some(bytes.len() as u64),
        hashes: Some(Hashes {
            sha256: Sha256Digest::of(bytes).as_bytes().to_vec().into(),
            _extra: HashMap::new(),
        }),
        version,
        _extra: HashMap::new(),
    }
}

/// The previous online metadata a new snapshot and timestamp follow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Previous<'a> {
    /// The current snapshot (`None` for a new repository).
    pub snapshot: Option<&'a Snapshot>,
    /// The current timestamp (`None` for a new repository).
    pub timestamp: Option<&'a Timestamp>,
}

/// New snapshot (listing `targets`) and timestamp, each one version above
/// `previous`, signed with the online keys, expiring relative to `now`.
pub fn sign_online(
    previous: Previous<'_>,
    targets: Metafile,
    root: &Root,
    keys: &KeyRing,
    expiries: &Expiries,
    now: SystemTime,
) -> Result<(SignedRole<Snapshot>, SignedRole<Timestamp>), RepoError> {
    let one = NonZeroU64::MIN;
    let snapshot_version = previous.snapshot.map_or(one, |s| next_version(s.version));
    let mut snapshot = Snapshot::new(
        SPEC_VERSION.to_owned(),
        snapshot_version,
        expires_at(now, expiries.snapshot),
    );
    snapshot.meta.insert("targets.json".to_owned(), targets);
    let snapshot = sign(snapshot, root, keys)?;
    let timestamp_version = previous.timestamp.map_or(one, |t| next_version(t.version));
    let mut timestamp = Timestamp::new(
        SPEC_VERSION.to_owned(),
        timestamp_version,
        expires_at(now, expiries.timestamp),
    );
    timestamp.meta.insert(
        "snapshot.json".to_owned(),
        metafile(snapshot.buffer(), snapshot_version),
    );
    let timestamp = sign(timestamp, root, keys)?;
    Ok((snapshot, timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_whole_seconds_after_the_given_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_750);
        assert_eq!(
            expires_at(now, Duration::from_secs(60)).as_second(),
            1_800_000_060
        );
    }
}
