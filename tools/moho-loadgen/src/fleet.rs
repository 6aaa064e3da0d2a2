//! The simulated fleet: node `i` is `load-<i>` with an ed25519 key derived
//! from SHA-256 of its index, and can be seeded straight into the database.

use ed25519_dalek::SigningKey;
use jiff::Timestamp;
use moho_protocol::signing::encode_public_key;
use sha2::{Digest, Sha256};

use update_server::store::{
    AttemptStatus, Db, NodeSeed, Phase, RolloutRecord, StoreError, SyncedRelease,
};

/// Id of simulated node `i`.
pub fn node_id(i: u64) -> String {
    format!("load-{i:08}")
}

/// Key of simulated node `i`.
pub fn node_key(i: u64) -> SigningKey {
    let seed: [u8; 32] = Sha256::new()
        .chain_update(b"moho-loadgen\0")
        .chain_update(i.to_be_bytes())
        .finalize()
        .into();
    SigningKey::from_bytes(&seed)
}

/// Registers nodes `0..n` directly in the database, `batch` at a time,
/// calling `progress` after each batch with the count so far.
pub async fn seed(
    db: &Db,
    n: u64,
    channel: &str,
    group: &str,
    version: &str,
    now: Timestamp,
    mut progress: impl FnMut(u64),
) -> Result<(), StoreError> {
    const BATCH: u64 = 20_000;
    let mut start = 0;
    while start < n {
        let end = (start + BATCH).min(n);
        let (channel, group, version) = (channel.to_owned(), group.to_owned(), version.to_owned());
        let seeds = tokio::task::spawn_blocking(move || {
            (start..end)
                .map(|i| NodeSeed {
                    id: node_id(i),
                    public_key: encode_public_key(&node_key(i).verifying_key()),
                    channel: channel.clone(),
                    group: group.clone(),
                    board: "amd64-generic".to_owned(),
                    version: version.clone(),
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        db.insert_nodes_bulk(&seeds, now).await?;
        start = end;
        progress(start);
    }
    Ok(())
}

/// Benchmark fixture: release 1.1.0 for `channel` and a rollout of it to
/// `channel`/`group` at `percent` with at most 100 nodes updating at once.
pub async fn add_rollout(
    db: &Db,
    channel: &str,
    group: &str,
    percent: f64,
    now: Timestamp,
) -> Result<i64, StoreError> {
    db.sync_releases(&[SyncedRelease {
        version: "1.1.0".into(),
        board: "amd64-generic".into(),
        target: "amd64-generic/1.1.0/root.img".into(),
        channels: vec![channel.to_owned()],
        min_version: None,
        size: Some(1 << 30),
    }])
    .await?;
    let policy = serde_json::from_value(
        serde_json::json!({"steps": [{"percent": percent}], "max_in_flight": 100}),
    )
    .map_err(|source| StoreError::Corrupt {
        what: "benchmark policy",
        source,
    })?;
    let record = RolloutRecord {
        id: 0,
        version: "1.1.0".into(),
        board: "amd64-generic".into(),
        channel: channel.to_owned(),
        group: group.to_owned(),
        policy,
        state: moho_rollout::RolloutState::new(now),
        revision: 0,
        created_at: now,
    };
    let mut tx = db.begin().await?;
    let id = db.insert_rollout(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(id)
}

/// Benchmark fixture: `n` attempts at rollout `id` by nodes `0..n`, offered
/// over the hour before `now`, in every phase (6 in 10 healthy, then one
/// each downloading, installed, offered, and failed or rolled back).
pub async fn add_attempts(db: &Db, id: i64, n: u64, now: Timestamp) -> Result<(), StoreError> {
    let rows: Vec<_> = (0..n)
        .map(|i| {
            let started = now
                .checked_sub(jiff::SignedDuration::from_secs(
                    i64::try_from(3600 - (i * 3600 / n.max(1))).unwrap_or(0),
                ))
                .unwrap_or(now);
            let done = Some(now);
            let (status, phase, finished) = match i % 10 {
                0..=5 => (AttemptStatus::Healthy, Phase::Healthy, done),
                6 => (AttemptStatus::InFlight, Phase::Downloading, None),
                7 => (AttemptStatus::InFlight, Phase::Installed, None),
                8 => (AttemptStatus::InFlight, Phase::Offered, None),
                _ if i % 20 == 9 => (AttemptStatus::Failed, Phase::RolledBack, done),
                _ => (AttemptStatus::Failed, Phase::Error, done),
            };
            (node_id(i), status, phase, started, finished)
        })
        .collect();
    db.insert_attempts_bulk(id, &rows).await
}
