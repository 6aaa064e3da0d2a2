//! The dashboard's node table and node page: one page of nodes matching
//! filters by keyset paging on the id (each single filter has a
//! `(column, id)` index, so a page costs the same at node 10 and node
//! 1,000,000), a node's events newest first, the versions it rolled back
//! from, and its attempts.

use jiff::{SignedDuration, Timestamp};
use moho_protocol::admin::NodeKind;
use sqlx::Row;

use super::nodes::{NODE_COLUMNS, node_from_row};
use super::{AttemptStatus, Backend, Db, NodeRecord, Phase, StoreError, from_millis, millis};

/// When a node was last seen, as a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Checked in within this long.
    Within(SignedDuration),
    /// Not checked in for at least this long.
    NotWithin(SignedDuration),
}

/// Filters and position of a node table page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFilter {
    /// Only this channel.
    pub channel: Option<String>,
    /// Only this group.
    pub group: Option<String>,
    /// Only this booted version.
    pub version: Option<String>,
    /// Only this agent state.
    pub state: Option<String>,
    /// Last check-in.
    pub seen: Option<Seen>,
    /// Only nodes running this updater.
    pub kind: Option<NodeKind>,
    /// Continue after this id.
    pub after: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Id (increasing).
    pub id: i64,
    /// When it happened (node clock).
    pub at: Timestamp,
    /// When the server received it.
    pub received_at: Timestamp,
    /// Event type.
    pub kind: String,
    /// Release version concerned.
    pub version: Option<String>,
    /// The event as the node sent it (JSON).
    pub body: String,
}

/// A node's attempt at a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAttempt {
    /// Rollout id.
    pub rollout_id: i64,
    /// Release version.
    pub version: String,
    /// Status.
    pub status: AttemptStatus,
    /// Phase.
    pub phase: Phase,
    /// When offered.
    pub started_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
}

impl Db {
    /// Up to `limit` nodes matching `f`, ordered by id.
    pub async fn node_page(
        &self,
        f: &NodeFilter,
        limit: u32,
        now: Timestamp,
    ) -> Result<Vec<NodeRecord>, StoreError> {
        let mut conds: Vec<String> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        for (column, value) in [
            ("channel", &f.channel),
            ("grp", &f.group),
            ("version", &f.version),
            ("state", &f.state),
            ("kind", &f.kind.map(|k| k.as_str().to_owned())),
        ] {
            if let Some(v) = value {
                texts.push(v.clone());
                conds.push(format!("{column} = ${}", texts.len()));
            }
        }
        if let Some(after) = &f.after {
            texts.push(after.clone());
            conds.push(format!("id > ${}", texts.len()));
        }
        let mut cut = None;
        if let Some(seen) = f.seen {
            let (op, d) = match seen {
                Seen::Within(d) => (">=", d),
                Seen::NotWithin(d) => ("<", d),
            };
            cut = Some(millis(now.checked_sub(d).unwrap_or(Timestamp::MIN)));
            conds.push(format!("last_seen {op} ${}", texts.len() + 1));
        }
        let limit_param = texts.len() + usize::from(cut.is_some()) + 1;
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        // SQLite keeps no range statistics, and on its own walks the whole
        // id order looking for nodes not seen lately (usually few): point it
        // at the last-seen index instead. PostgreSQL's planner knows better.
        let hint = match (self.backend(), f.seen) {
            (Backend::Sqlite, Some(Seen::NotWithin(_))) => "INDEXED BY nodes_last_seen",
            _ => "",
        };
        // Only column names, an index name and parameter numbers are
        // formatted in.
        let sql = format!(
            "SELECT {NODE_COLUMNS} FROM nodes {hint} {filter} ORDER BY id LIMIT ${limit_param}"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in texts {
            q = q.bind(t);
        }
        if let Some(c) = cut {
            q = q.bind(c);
        }
        let rows = q.bind(i64::from(limit)).fetch_all(self.reader()).await?;
        Ok(rows.iter().map(node_from_row).collect::<Result<_, _>>()?)
    }

    /// A node's events, newest first, with ids below `before`.
    pub async fn node_events(
        &self,
        node_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, received_at, type, version, body FROM events
             WHERE node_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(node_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRow {
                    id: r.try_get("id")?,
                    at: from_millis(r.try_get("at")?),
                    received_at: from_millis(r.try_get("received_at")?),
                    kind: r.try_get("type")?,
                    version: r.try_get("version")?,
                    body: r.try_get("body")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Versions the node fell back from (its deny list as the server knows
    /// it from `rollback` events), sorted.
    pub async fn rolled_back_versions(&self, node_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT version FROM events
             WHERE node_id = $1 AND type = 'rollback' AND version IS NOT NULL ORDER BY version",
        )
        .bind(node_id)
        .fetch_all(self.reader())
        .await?)
    }

    /// A node's attempts, newest first (one primary-key lookup per rollout).
    pub async fn node_attempts(&self, node_id: &str) -> Result<Vec<NodeAttempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.rollout_id, r.version, a.status, a.phase, a.started_at, a.finished_at
             FROM rollouts r JOIN attempts a ON a.rollout_id = r.id AND a.node_id = $1
             ORDER BY a.started_at DESC",
        )
        .bind(node_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NodeAttempt {
                    rollout_id: r.try_get("rollout_id")?,
                    version: r.try_get("version")?,
                    status: AttemptStatus::parse(&r.try_get::<String, _>("status")?),
                    phase: Phase::parse(&r.try_get::<String, _>("phase")?),
                    started_at: from_millis(r.try_get("started_at")?),
                    finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(from_millis),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
