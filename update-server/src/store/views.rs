//! Read-only aggregates for the dashboard: the fleet by channel, group,
//! board, version and state; a rollout's attempts by status and phase; the
//! attempts of a rollout over time in buckets; audit entries by subject and
//! page; FleetLock holders of every group.

use jiff::Timestamp;
use moho_protocol::admin::AuditEntry;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::audit_from_row;
use super::{AttemptStatus, Db, Phase, StoreError, millis};

/// Nodes sharing channel, group, board, version and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetRow {
    /// Channel.
    pub channel: String,
    /// Group.
    pub group: String,
    /// Board.
    pub board: String,
    /// Booted version.
    pub version: String,
    /// Agent state.
    pub state: String,
    /// How many nodes.
    pub nodes: u64,
    /// How many of them were not seen since the staleness cut-off.
    pub stale: u64,
}

/// Attempts of one rollout with one status and phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseRow {
    /// Status.
    pub status: AttemptStatus,
    /// Phase.
    pub phase: Phase,
    /// How many attempts.
    pub attempts: u64,
    /// How many of them are still in flight but started before the update
    /// timeout (counted as failed by the rollout maths).
    pub timed_out: u64,
}

/// Attempts started, and attempts finished per status and phase, in one
/// time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketRow {
    /// Bucket number (0 = the first bucket).
    pub bucket: i64,
    /// What the count is of: `None` for started attempts, else the end.
    pub ended: Option<Phase>,
    /// How many.
    pub count: u64,
}

fn count(r: &AnyRow, name: &str) -> Result<u64, sqlx::Error> {
    Ok(u64::try_from(r.try_get::<i64, _>(name)?).unwrap_or(0))
}

impl Db {
    /// The whole fleet in one pass, grouped; `stale_before`: nodes last seen
    /// before it count as stale.
    pub async fn fleet_rows(&self, stale_before: Timestamp) -> Result<Vec<FleetRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, grp, board, version, state, COUNT(*) AS n,
                    COALESCE(SUM(CASE WHEN last_seen < $1 THEN 1 ELSE 0 END), 0) AS stale
             FROM nodes GROUP BY channel, grp, board, version, state",
        )
        .bind(millis(stale_before))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FleetRow {
                    channel: r.try_get("channel")?,
                    group: r.try_get("grp")?,
                    board: r.try_get("board")?,
                    version: r.try_get("version")?,
                    state: r.try_get("state")?,
                    nodes: count(r, "n")?,
                    stale: count(r, "stale")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// A rollout's attempts by status and phase; attempts still downloading
    /// or installing that started at or before `timeout_start` are counted
    /// in `timed_out` (a staged node is never timed out).
    pub async fn attempt_phases(
        &self,
        rollout_id: i64,
        timeout_start: Timestamp,
    ) -> Result<Vec<PhaseRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT status, phase, COUNT(*) AS n,
                    COALESCE(SUM(CASE WHEN {} THEN 1 ELSE 0 END), 0) AS timed_out
             FROM attempts WHERE rollout_id = $1 GROUP BY status, phase",
            super::rollouts::timed_out_sql("$2")
        )))
        .bind(rollout_id)
        .bind(millis(timeout_start))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PhaseRow {
                    status: AttemptStatus::parse(&r.try_get::<String, _>("status")?),
                    phase: Phase::parse(&r.try_get::<String, _>("phase")?),
                    attempts: count(r, "n")?,
                    timed_out: count(r, "timed_out")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// A rollout's attempts over time: started and finished (by phase) per
    /// bucket of `bucket_ms` from `from`.
    pub async fn attempt_buckets(
        &self,
        rollout_id: i64,
        from: Timestamp,
        bucket_ms: i64,
    ) -> Result<Vec<BucketRow>, StoreError> {
        let bucket_ms = bucket_ms.max(1);
        let started = sqlx::query(
            "SELECT (started_at - $2) / $3 AS b, COUNT(*) AS n FROM attempts
             WHERE rollout_id = $1 GROUP BY 1",
        )
        .bind(rollout_id)
        .bind(millis(from))
        .bind(bucket_ms)
        .fetch_all(self.reader())
        .await?;
        let finished = sqlx::query(
            "SELECT (finished_at - $2) / $3 AS b, phase, COUNT(*) AS n FROM attempts
             WHERE rollout_id = $1 AND finished_at IS NOT NULL GROUP BY 1, 2",
        )
        .bind(rollout_id)
        .bind(millis(from))
        .bind(bucket_ms)
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(started.len() + finished.len());
        for r in &started {
            out.push(BucketRow {
                bucket: r.try_get("b")?,
                ended: None,
                count: count(r, "n")?,
            });
        }
        for r in &finished {
            out.push(BucketRow {
                bucket: r.try_get("b")?,
                ended: Some(Phase::parse(&r.try_get::<String, _>("phase")?)),
                count: count(r, "n")?,
            });
        }
        Ok(out)
    }

    /// Audit entries about `subject` (e.g. `rollout/3`), oldest first.
    pub async fn audit_of(&self, subject: &str, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, subject, before_json, after_json FROM audit
             WHERE subject = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(subject)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        let mut out = rows
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }

    /// One page of the audit log, newest first, before entry `before`.
    pub async fn audit_page(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, subject, before_json, after_json FROM audit
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        Ok(rows.iter().map(audit_from_row).collect::<Result<_, _>>()?)
    }

    /// Group names that hold or may hold FleetLock slots: configured groups
    /// and any group with a live lease.
    pub async fn fleetlock_groups(&self, now: Timestamp) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM groups UNION SELECT grp FROM fleetlock WHERE expires_at > $1 ORDER BY 1",
        )
        .bind(millis(now))
        .fetch_all(self.reader())
        .await?)
    }
}
