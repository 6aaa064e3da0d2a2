//! Nodes: registration, the replay-safe counter update of each signed
//! request, listing with filters, and pruning of stale nodes.

use jiff::Timestamp;
use moho_protocol::admin::{NodeKind, NodeQuery, OmahaClient};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, StoreError, Tx, from_millis, millis};

/// A node as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Id.
    pub id: String,
    /// Registered public key (base64).
    pub public_key: String,
    /// Last accepted request counter.
    pub counter: u64,
    /// Channel.
    pub channel: String,
    /// Group.
    pub group: String,
    /// Board.
    pub board: String,
    /// Booted version.
    pub version: String,
    /// Booted slot.
    pub slot: String,
    /// Agent state.
    pub state: String,
    /// Last check-in.
    pub last_seen: Timestamp,
    /// First check-in.
    pub registered_at: Timestamp,
    /// Reported host name ('' if none).
    pub hostname: String,
    /// Version in the other slot, as last reported.
    pub fallback_version: Option<String>,
    /// Moho agent (signed) or Flatcar over Omaha (unsigned).
    pub kind: NodeKind,
    /// A Flatcar node's own description (its Omaha requests).
    pub omaha: Option<OmahaClient>,
}

impl NodeRecord {
    /// What the row says, as a check-in would report it.
    pub fn upsert(&self) -> NodeUpsert<'_> {
        NodeUpsert {
            id: &self.id,
            public_key: &self.public_key,
            channel: &self.channel,
            group: &self.group,
            board: &self.board,
            version: &self.version,
            slot: &self.slot,
            state: &self.state,
            hostname: &self.hostname,
            fallback_version: self.fallback_version.as_deref(),
        }
    }
}

/// Stores `events` of `node_id`, received at `now`, inside `tx`.
pub(super) async fn insert_events(
    tx: &mut Tx,
    node_id: &str,
    events: &[moho_protocol::Event],
    now: Timestamp,
) -> Result<(), StoreError> {
    for e in events {
        let body = serde_json::to_string(e).map_err(|source| StoreError::Corrupt {
            what: "event",
            source,
        })?;
        sqlx::query(
            "INSERT INTO events (node_id, at, received_at, type, version, body) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(node_id)
        .bind(millis(e.at))
        .bind(millis(now))
        .bind(e.kind.type_name())
        .bind(e.kind.version().map(str::to_owned))
        .bind(body)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Inserts node `n` inside `tx`; false (nothing written) if the id exists.
pub(super) async fn insert_node(
    tx: &mut Tx,
    n: &NodeUpsert<'_>,
    counter: u64,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO nodes (id, public_key, counter, channel, grp, board, version, slot, state, last_seen, registered_at, hostname, fallback_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12) ON CONFLICT (id) DO NOTHING",
    )
    .bind(n.id)
    .bind(n.public_key)
    .bind(counter_to_db(counter))
    .bind(n.channel)
    .bind(n.group)
    .bind(n.board)
    .bind(n.version)
    .bind(n.slot)
    .bind(n.state)
    .bind(millis(now))
    .bind(n.hostname)
    .bind(n.fallback_version)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What a check-in says about the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUpsert<'a> {
    /// Id.
    pub id: &'a str,
    /// Public key (base64).
    pub public_key: &'a str,
    /// Channel.
    pub channel: &'a str,
    /// Group.
    pub group: &'a str,
    /// Board.
    pub board: &'a str,
    /// Booted version.
    pub version: &'a str,
    /// Booted slot.
    pub slot: &'a str,
    /// Agent state.
    pub state: &'a str,
    /// Reported host name ('' if none).
    pub hostname: &'a str,
    /// Version in the other slot.
    pub fallback_version: Option<&'a str>,
}

/// Outcome of a registration attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// A new node row was written.
    Created,
    /// The id was already registered.
    Exists,
}

fn counter_to_db(c: u64) -> i64 {
    i64::try_from(c).unwrap_or(i64::MAX)
}

pub(super) fn node_from_row(r: &AnyRow) -> Result<NodeRecord, sqlx::Error> {
    Ok(NodeRecord {
        id: r.try_get("id")?,
        public_key: r.try_get("public_key")?,
        counter: u64::try_from(r.try_get::<i64, _>("counter")?).unwrap_or(0),
        channel: r.try_get("channel")?,
        group: r.try_get("grp")?,
        board: r.try_get("board")?,
        version: r.try_get("version")?,
        slot: r.try_get("slot")?,
        state: r.try_get("state")?,
        last_seen: from_millis(r.try_get("last_seen")?),
        registered_at: from_millis(r.try_get("registered_at")?),
        hostname: r.try_get("hostname")?,
        fallback_version: r.try_get("fallback_version")?,
        kind: NodeKind::parse(&r.try_get::<String, _>("kind")?),
        omaha: r
            .try_get::<Option<String>, _>("omaha")?
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
    })
}

/// The columns [`node_from_row`] reads.
pub(super) const NODE_COLUMNS: &str = "id, public_key, counter, channel, grp, board, version, slot, state, last_seen, registered_at, hostname, fallback_version, kind, omaha";

impl Db {
    /// The node with this id.
    pub async fn node(&self, id: &str) -> Result<Option<NodeRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NODE_COLUMNS} FROM nodes WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.as_ref().map(node_from_row).transpose()?)
    }

    /// Loads the hot state of every signed (Moho) node into `hot`, up to
    /// its capacity; returns how many rows were read. Rows are streamed, so
    /// memory holds the table's hot state, not its rows.
    pub async fn load_hot(&self, hot: &super::HotNodes) -> Result<u64, StoreError> {
        use futures_util::TryStreamExt as _;
        let mut rows = sqlx::query(
            "SELECT id, public_key, counter, channel, grp, board, version, slot, state, hostname, fallback_version, last_seen
             FROM nodes WHERE kind = 'moho'",
        )
        .fetch(self.reader());
        let mut n = 0u64;
        while let Some(r) = rows.try_next().await? {
            n += 1;
            let text: String = r.try_get("public_key")?;
            let Some(key) = super::hot::canonical_key(&text) else {
                continue;
            };
            let (id, channel, group, board, version, slot, state, hostname): (
                String,
                String,
                String,
                String,
                String,
                String,
                String,
                String,
            ) = (
                r.try_get("id")?,
                r.try_get("channel")?,
                r.try_get("grp")?,
                r.try_get("board")?,
                r.try_get("version")?,
                r.try_get("slot")?,
                r.try_get("state")?,
                r.try_get("hostname")?,
            );
            let fallback_version: Option<String> = r.try_get("fallback_version")?;
            let facts = hot.facts(&NodeUpsert {
                id: &id,
                public_key: &text,
                channel: &channel,
                group: &group,
                board: &board,
                version: &version,
                slot: &slot,
                state: &state,
                hostname: &hostname,
                fallback_version: fallback_version.as_deref(),
            });
            let counter = u64::try_from(r.try_get::<i64, _>("counter")?).unwrap_or(0);
            hot.remember(
                &id,
                counter,
                facts,
                key,
                from_millis(r.try_get("last_seen")?),
            );
        }
        Ok(n)
    }

    /// Registers a node on its first check-in (a no-op if the id exists).
    pub async fn register_node(
        &self,
        n: &NodeUpsert<'_>,
        counter: u64,
        now: Timestamp,
    ) -> Result<Registration, StoreError> {
        let mut tx = self.begin().await?;
        let created = insert_node(&mut tx, n, counter, now).await?;
        tx.commit().await?;
        Ok(if created {
            Registration::Created
        } else {
            Registration::Exists
        })
    }

    /// Records a check-in if `counter` is above the stored one. Returns false
    /// (and changes nothing) for a replayed or reordered request.
    pub async fn check_in_node(
        &self,
        n: &NodeUpsert<'_>,
        counter: u64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE nodes SET counter = $2, channel = $3, grp = $4, board = $5, version = $6, slot = $7,
                 state = $8, last_seen = $9, hostname = $11, fallback_version = $12
             WHERE id = $1 AND counter < $2 AND public_key = $10",
        )
        .bind(n.id)
        .bind(counter_to_db(counter))
        .bind(n.channel)
        .bind(n.group)
        .bind(n.board)
        .bind(n.version)
        .bind(n.slot)
        .bind(n.state)
        .bind(millis(now))
        .bind(n.public_key)
        .bind(n.hostname)
        .bind(n.fallback_version)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Advances a node's counter for a signed request that is not a check-in.
    pub async fn advance_counter(&self, id: &str, counter: u64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE nodes SET counter = $2 WHERE id = $1 AND counter < $2")
            .bind(id)
            .bind(counter_to_db(counter))
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Nodes matching a query, ordered by id, one page.
    pub async fn list_nodes(
        &self,
        q: &NodeQuery,
        now: Timestamp,
    ) -> Result<Vec<NodeRecord>, StoreError> {
        let stale_before = q
            .stale_secs
            .map(|s| millis(now) - i64::try_from(s).unwrap_or(i64::MAX / 2) * 1000);
        let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 1000));
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NODE_COLUMNS} FROM nodes
             WHERE ($1 = '' OR channel = $1) AND ($2 = '' OR grp = $2) AND ($3 = '' OR version = $3)
               AND ($4 = '' OR state = $4) AND ($5 < 0 OR last_seen <= $5) AND id > $6
               AND ($8 = '' OR kind = $8)
             ORDER BY id LIMIT $7"
        )))
        .bind(q.channel.clone().unwrap_or_default())
        .bind(q.group.clone().unwrap_or_default())
        .bind(q.version.clone().unwrap_or_default())
        .bind(q.state.clone().unwrap_or_default())
        .bind(stale_before.unwrap_or(-1))
        .bind(q.after.clone().unwrap_or_default())
        .bind(limit)
        .bind(q.kind.map(NodeKind::as_str).unwrap_or_default())
        .fetch_all(self.reader())
        .await?;
        Ok(rows.iter().map(node_from_row).collect::<Result<_, _>>()?)
    }

    /// Forgets one node (its attempts, events and FleetLock slots too)
    /// inside `tx`; returns whether it existed.
    pub async fn delete_node(&self, tx: &mut Tx, id: &str) -> Result<bool, StoreError> {
        for sql in [
            "DELETE FROM attempts WHERE node_id = $1",
            "DELETE FROM events WHERE node_id = $1",
            "DELETE FROM fleetlock WHERE node_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut **tx).await?;
        }
        let done = sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets the nodes last seen before `before` (their attempts, events
    /// and FleetLock slots too) inside `tx`; returns how many.
    pub async fn prune_nodes(&self, tx: &mut Tx, before: Timestamp) -> Result<u64, StoreError> {
        for sql in [
            "DELETE FROM attempts WHERE node_id IN (SELECT id FROM nodes WHERE last_seen < $1)",
            "DELETE FROM events WHERE node_id IN (SELECT id FROM nodes WHERE last_seen < $1)",
            "DELETE FROM fleetlock WHERE node_id IN (SELECT id FROM nodes WHERE last_seen < $1)",
        ] {
            sqlx::query(sql)
                .bind(millis(before))
                .execute(&mut **tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM nodes WHERE last_seen < $1")
            .bind(millis(before))
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes node events the server received before `before`; returns
    /// how many.
    pub async fn prune_events(&self, tx: &mut Tx, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM events WHERE received_at < $1")
            .bind(millis(before))
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes audit entries made before `before`; returns how many. (The
    /// entry that records the pruning is made after, in the same
    /// transaction, so it stays.)
    pub async fn prune_audit(&self, tx: &mut Tx, before: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit WHERE at < $1")
            .bind(millis(before))
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected())
    }

    /// Ids of the nodes in a rollout's scope.
    pub async fn scope_node_ids(
        &self,
        channel: &str,
        group: &str,
        board: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM nodes WHERE channel = $1 AND grp = $2 AND board = $3",
        )
        .bind(channel)
        .bind(group)
        .bind(board)
        .fetch_all(self.reader())
        .await?)
    }

    /// Node counts per (channel, version, state), for metrics.
    pub async fn node_counts(&self) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, version, state, COUNT(*) AS n FROM nodes GROUP BY channel, version, state",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("channel")?,
                    r.try_get("version")?,
                    r.try_get("state")?,
                    r.try_get("n")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Stores a verified event report in one transaction with the advance
    /// of the node's counter. Returns false (storing nothing) when the
    /// counter is not above the stored one: a replay.
    pub async fn insert_report(
        &self,
        node_id: &str,
        counter: u64,
        events: &[moho_protocol::Event],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let fresh = sqlx::query("UPDATE nodes SET counter = $2 WHERE id = $1 AND counter < $2")
            .bind(node_id)
            .bind(counter_to_db(counter))
            .execute(&mut *tx)
            .await?;
        if fresh.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_events(&mut tx, node_id, events, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Number of stored events of a node (for tests and the admin view).
    pub async fn event_count(&self, node_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE node_id = $1")
                .bind(node_id)
                .fetch_one(self.reader())
                .await?,
        )
    }
}

/// One node of a bulk import (the load generator's simulated fleet).
#[derive(Debug, Clone)]
pub struct NodeSeed {
    /// Id.
    pub id: String,
    /// Public key (base64).
    pub public_key: String,
    /// Channel.
    pub channel: String,
    /// Group.
    pub group: String,
    /// Board.
    pub board: String,
    /// Booted version.
    pub version: String,
}

impl Db {
    /// Inserts many nodes at once (ids that exist are skipped).
    pub async fn insert_nodes_bulk(
        &self,
        nodes: &[NodeSeed],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for chunk in nodes.chunks(500) {
            let mut sql = String::from(
                "INSERT INTO nodes (id, public_key, counter, channel, grp, board, version, slot, state, last_seen, registered_at) VALUES ",
            );
            for (i, _) in chunk.iter().enumerate() {
                let b = i * 7;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${}, ${}, 0, ${}, ${}, ${}, ${}, 'a', 'idle', ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 7
                ));
            }
            sql.push_str(" ON CONFLICT (id) DO NOTHING");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for n in chunk {
                q = q
                    .bind(n.id.clone())
                    .bind(n.public_key.clone())
                    .bind(n.channel.clone())
                    .bind(n.group.clone())
                    .bind(n.board.clone())
                    .bind(n.version.clone())
                    .bind(millis(now));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
