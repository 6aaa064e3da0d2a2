//! Short-lived caches of what every check-in reads: the rollouts of a scope
//! with their counters, the line index of each rollout, releases and holds.
//! Caches only read: rollouts move on in [`crate::jobs::rollouts`].
//! Entries live for `stats_ttl` / `index_ttl` of the configured clock; with
//! zero TTLs (tests) every read goes to the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use moho_protocol::admin::{HoldView, ReleaseView};
use moho_rollout::line::LineIndex;
use moho_rollout::state::RolloutStats;
use moho_rollout::{Hold, place_in_line};

use crate::config::ServerConfig;
use crate::store::{Db, RolloutRecord, StoreError};

/// A rollout with fresh counters.
#[derive(Debug, Clone)]
pub struct LiveRollout {
    /// The record.
    pub record: RolloutRecord,
    /// Counters.
    pub stats: RolloutStats,
    /// Line index of the scope.
    pub index: Arc<LineIndex>,
}

/// The release key a node's place in line hashes: `board/version`.
pub fn release_key(board: &str, version: &str) -> String {
    format!("{board}/{version}")
}

#[derive(Debug, Default)]
struct Inner {
    scopes: HashMap<(String, String, String), (Timestamp, Vec<i64>)>,
    live: HashMap<i64, (Timestamp, LiveRollout)>,
    indexes: HashMap<i64, (Timestamp, Arc<LineIndex>)>,
    releases: Option<(Timestamp, Arc<Vec<ReleaseView>>)>,
    holds: Option<(Timestamp, Arc<Vec<HoldView>>)>,
    names: Option<(Timestamp, Arc<KnownNames>)>,
    index_builds: HashMap<i64, Arc<tokio::sync::Mutex<()>>>,
}

/// Channel and group names that exist.
#[derive(Debug, Default)]
pub struct KnownNames {
    /// Channels.
    pub channels: std::collections::HashSet<String>,
    /// Groups.
    pub groups: std::collections::HashSet<String>,
}

/// The caches.
#[derive(Debug, Default)]
pub struct Caches {
    inner: Mutex<Inner>,
}

fn fresh(at: Timestamp, now: Timestamp, ttl: jiff::SignedDuration) -> bool {
    now >= at && now.duration_since(at) < ttl
}

impl Caches {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets everything but line indexes (after an admin change).
    /// Line indexes are kept: they depend only on which nodes are in a
    /// scope, change slowly, and are expensive to rebuild.
    pub fn clear(&self) {
        let mut inner = self.lock();
        let indexes = std::mem::take(&mut inner.indexes);
        let builds = std::mem::take(&mut inner.index_builds);
        *inner = Inner {
            indexes,
            index_builds: builds,
            ..Inner::default()
        };
    }

    /// Known releases.
    pub async fn releases(
        &self,
        db: &Db,
        cfg: &ServerConfig,
        now: Timestamp,
    ) -> Result<Arc<Vec<ReleaseView>>, StoreError> {
        if let Some((at, r)) = &self.lock().releases
            && fresh(*at, now, cfg.stats_ttl)
        {
            return Ok(r.clone());
        }
        let r = Arc::new(db.releases().await?);
        self.lock().releases = Some((now, r.clone()));
        Ok(r)
    }

    /// Channels and groups that exist.
    pub async fn names(
        &self,
        db: &Db,
        cfg: &ServerConfig,
        now: Timestamp,
    ) -> Result<Arc<KnownNames>, StoreError> {
        if let Some((at, n)) = &self.lock().names
            && fresh(*at, now, cfg.stats_ttl)
        {
            return Ok(n.clone());
        }
        let names = Arc::new(KnownNames {
            channels: db.channels().await?.into_iter().collect(),
            groups: db.groups().await?.into_iter().map(|g| g.name).collect(),
        });
        self.lock().names = Some((now, names.clone()));
        Ok(names)
    }

    /// Unexpired holds.
    pub async fn holds(
        &self,
        db: &Db,
        cfg: &ServerConfig,
        now: Timestamp,
    ) -> Result<Vec<Hold>, StoreError> {
        let cached = self
            .lock()
            .holds
            .clone()
            .filter(|(at, _)| fresh(*at, now, cfg.stats_ttl));
        let views = match cached {
            Some((_, h)) => h,
            None => {
                let h = Arc::new(db.holds(now).await?);
                self.lock().holds = Some((now, h.clone()));
                h
            }
        };
        Ok(views
            .iter()
            .map(|h| Hold {
                target: h.target.clone(),
                kind: h.kind.clone(),
                until: h.until,
            })
            .collect())
    }

    /// Rollout ids of a scope (channel, group, board).
    async fn scope_ids(
        &self,
        db: &Db,
        cfg: &ServerConfig,
        key: &(String, String, String),
        now: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        if let Some((at, ids)) = self.lock().scopes.get(key)
            && fresh(*at, now, cfg.stats_ttl)
        {
            return Ok(ids.clone());
        }
        let ids: Vec<i64> = db
            .rollouts()
            .await?
            .into_iter()
            .filter(|r| {
                (r.channel.as_str(), r.group.as_str(), r.board.as_str())
                    == (key.0.as_str(), key.1.as_str(), key.2.as_str())
            })
            .map(|r| r.id)
            .collect();
        self.lock().scopes.insert(key.clone(), (now, ids.clone()));
        Ok(ids)
    }

    /// The rollouts of a scope with fresh counters, newest first.
    pub async fn scope(
        &self,
        db: &Db,
        cfg: &ServerConfig,
        channel: &str,
        group: &str,
        board: &str,
        now: Timestamp,
    ) -> Result<Vec<LiveRollout>, StoreError> {
        let key = (channel.to_owned(), group.to_owned(), board.to_owned());
        let mut out = Vec::new();
        for id in self.scope_ids(db, cfg, &key, now).await? {
            if let Some(r) = self.live(db, cfg, id, now).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// One rollout with fresh counters (as stored: the ticker moves it on).
    pub async fn live(
        &self,
        db: &Db,
        cfg: &ServerConfig,
        id: i64,
        now: Timestamp,
    ) -> Result<Option<LiveRollout>, StoreError> {
        if let Some((at, l)) = self.lock().live.get(&id)
            && fresh(*at, now, cfg.stats_ttl)
        {
            return Ok(Some(l.clone()));
        }
        let Some(record) = db.rollout(id).await? else {
            return Ok(None);
        };
        let index = self.line_index(db, cfg, &record, now).await?;
        let mut stats = db.rollout_stats(&record, now).await?;
        stats.scope_size = index.len() as u64;
        let live = LiveRollout {
            record,
            stats,
            index,
        };
        self.lock().live.insert(id, (now, live.clone()));
        Ok(Some(live))
    }

    /// The line index of a rollout's scope: every node's place in line for
    /// its release, rebuilt after `index_ttl`.
    pub async fn line_index(
        &self,
        db: &Db,
        cfg: &ServerConfig,
        r: &RolloutRecord,
        now: Timestamp,
    ) -> Result<Arc<LineIndex>, StoreError> {
        let cached = self.lock().indexes.get(&r.id).cloned();
        if let Some((at, idx)) = &cached
            && fresh(*at, now, cfg.index_ttl)
        {
            return Ok(idx.clone());
        }
        // One rebuild at a time per rollout (a million-node scope takes a
        // second or two): others keep using the stale index meanwhile, or
        // wait for the first build.
        let gate = self.lock().index_builds.entry(r.id).or_default().clone();
        let _building = match &cached {
            Some((_, stale)) => match gate.try_lock_owned() {
                Ok(g) => g,
                Err(_) => return Ok(stale.clone()),
            },
            None => gate.lock_owned().await,
        };
        if let Some((at, idx)) = self.lock().indexes.get(&r.id)
            && fresh(*at, now, cfg.index_ttl)
        {
            return Ok(idx.clone());
        }
        let ids = db.scope_node_ids(&r.channel, &r.group, &r.board).await?;
        let key = release_key(&r.board, &r.version);
        let index = tokio::task::spawn_blocking(move || {
            LineIndex::new(ids.iter().map(|id| place_in_line(id, &key)))
        })
        .await
        .unwrap_or_default();
        let index = Arc::new(index);
        self.lock().indexes.insert(r.id, (now, index.clone()));
        Ok(index)
    }
}
