//! The fleet-wide event stream: the newest events of every node, with the
//! node's channel and group, filtered by severity, kind, channel, group and
//! node. Every read looks at most [`STREAM_WINDOW`] of the newest event ids
//! (a primary-key range scan, newest first, one node lookup per event), so
//! its cost does not grow with the fleet or the events table: with a
//! million nodes reporting, a poll reads what arrived since the last one,
//! and a filter that matches little stops at the window's edge instead of
//! walking the whole table.

use moho_protocol::admin::Severity;
use sqlx::Row;

use super::{Db, EventRow, StoreError, from_millis};

/// Most event ids one read looks back over.
pub const STREAM_WINDOW: i64 = 50_000;

/// What to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamFilter {
    /// Only events at least this severe.
    pub min_severity: Option<Severity>,
    /// Only this event type (`rollback`, `installed`, ...).
    pub kind: Option<String>,
    /// Only nodes of this channel.
    pub channel: Option<String>,
    /// Only nodes of this group.
    pub group: Option<String>,
    /// Only this node.
    pub node: Option<String>,
}

impl StreamFilter {
    /// Whether `e` passes the filter: the same rule as the store's query,
    /// applied in memory to the live stream (`crate::live_events`). An
    /// event of a forgotten node has no channel or group and so matches no
    /// channel or group filter.
    pub fn matches(&self, e: &StreamEvent) -> bool {
        let scope = e.scope.as_ref();
        self.min_severity
            .is_none_or(|min| Severity::of(&e.event.kind) >= min)
            && self.kind.as_ref().is_none_or(|k| *k == e.event.kind)
            && self
                .channel
                .as_ref()
                .is_none_or(|c| scope.is_some_and(|(channel, _)| channel == c))
            && self
                .group
                .as_ref()
                .is_none_or(|g| scope.is_some_and(|(_, group)| group == g))
            && self.node.as_ref().is_none_or(|n| *n == e.node_id)
    }
}

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// The stored event.
    pub event: EventRow,
    /// Its node.
    pub node_id: String,
    /// The node's channel and group now (absent if the node was forgotten).
    pub scope: Option<(String, String)>,
    /// The node's host name now.
    pub hostname: Option<String>,
}

/// A page of the stream, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamPage {
    /// Matching events, newest first.
    pub events: Vec<StreamEvent>,
    /// The newest event id at the time of the read: the next poll asks for
    /// events after it.
    pub last_id: i64,
    /// Whether matching events may have been left out: more than `limit`
    /// matched, or events older than the window were not looked at.
    pub truncated: bool,
}

impl Db {
    /// Up to `limit` events after `after` (or the newest ones) matching `f`.
    pub async fn event_stream(
        &self,
        after: Option<i64>,
        f: &StreamFilter,
        limit: u32,
    ) -> Result<StreamPage, StoreError> {
        let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
            .fetch_one(self.reader())
            .await?;
        let newest = newest.unwrap_or(0);
        let floor = newest.saturating_sub(STREAM_WINDOW);
        let from = after.unwrap_or(0).max(floor);
        let mut conds = vec!["e.id > $1".to_owned(), "e.id <= $2".to_owned()];
        let mut texts: Vec<String> = Vec::new();
        // The kinds are constants of the protocol, not input.
        let errors = Severity::ERROR_KINDS
            .iter()
            .map(|k| format!("e.type = '{k}'"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let prefix = Severity::WARNING_PREFIX;
        match f.min_severity {
            None | Some(Severity::Info) => {}
            Some(Severity::Warning) => conds.push(format!(
                "({errors} OR substr(e.type, 1, {}) = '{prefix}')",
                prefix.len()
            )),
            Some(Severity::Error) => conds.push(format!("({errors})")),
        }
        for (column, value) in [
            ("e.type", &f.kind),
            ("n.channel", &f.channel),
            ("n.grp", &f.group),
            ("e.node_id", &f.node),
        ] {
            if let Some(v) = value {
                texts.push(v.clone());
                conds.push(format!("{column} = ${}", texts.len() + 2));
            }
        }
        let limit_param = texts.len() + 3;
        // Only column names, protocol constants and parameter numbers are
        // formatted in.
        let sql = format!(
            "SELECT e.id, e.node_id, e.at, e.received_at, e.type, e.version, e.body,
                    n.channel, n.grp, n.hostname
             FROM events e LEFT JOIN nodes n ON n.id = e.node_id
             WHERE {} ORDER BY e.id DESC LIMIT ${limit_param}",
            conds.join(" AND ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(from)
            .bind(newest);
        for t in texts {
            q = q.bind(t);
        }
        let rows = q.bind(i64::from(limit)).fetch_all(self.reader()).await?;
        let events = rows
            .iter()
            .map(stream_event)
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let full = events.len() >= limit as usize;
        Ok(StreamPage {
            truncated: full || after.unwrap_or(0) < floor,
            events,
            last_id: newest,
        })
    }
}

/// A stream event from a row of the events ⟕ nodes join.
fn stream_event(r: &sqlx::any::AnyRow) -> Result<StreamEvent, sqlx::Error> {
    let channel: Option<String> = r.try_get("channel")?;
    let group: Option<String> = r.try_get("grp")?;
    let hostname: Option<String> = r.try_get("hostname")?;
    Ok(StreamEvent {
        event: EventRow {
            id: r.try_get("id")?,
            at: from_millis(r.try_get("at")?),
            received_at: from_millis(r.try_get("received_at")?),
            kind: r.try_get("type")?,
            version: r.try_get("version")?,
            body: r.try_get("body")?,
        },
        node_id: r.try_get("node_id")?,
        scope: channel.zip(group),
        hostname: hostname.filter(|h| !h.is_empty()),
    })
}

impl Db {
    /// The newest event id (0: no event yet).
    pub async fn newest_event_id(&self) -> Result<i64, StoreError> {
        let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
            .fetch_one(self.reader())
            .await?;
        Ok(newest.unwrap_or(0))
    }

    /// Up to `limit` events after id `after`, oldest first, each with its
    /// node's channel, group and host name: one primary-key range scan for
    /// the whole batch (what the live stream's tailer reads,
    /// `crate::live_events`).
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StreamEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.id, e.node_id, e.at, e.received_at, e.type, e.version, e.body,
                    n.channel, n.grp, n.hostname
             FROM events e LEFT JOIN nodes n ON n.id = e.node_id
             WHERE e.id > $1 ORDER BY e.id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .iter()
            .map(stream_event)
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }
}
