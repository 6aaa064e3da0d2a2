//! Releases synced from the signed repository, rollouts and their state, and
//! per-node attempts with the counters the rollout maths read.

use jiff::Timestamp;
use moho_protocol::admin::{FlatcarPayloads, ReleaseKind, ReleaseView};
use moho_rollout::policy::RolloutPolicy;
use moho_rollout::state::{RolloutState, RolloutStats};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, StoreError, Tx, from_millis, millis};

/// A release as listed by the verified repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedRelease {
    /// Version.
    pub version: String,
    /// Board.
    pub board: String,
    /// TUF target name of the image.
    pub target: String,
    /// Channels it is signed for.
    pub channels: Vec<String>,
    /// Oldest version it applies to.
    pub min_version: Option<String>,
    /// Signed length of the image, bytes.
    pub size: Option<u64>,
}

/// A rollout as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRecord {
    /// Id.
    pub id: i64,
    /// Release version.
    pub version: String,
    /// Board.
    pub board: String,
    /// Channel.
    pub channel: String,
    /// Group.
    pub group: String,
    /// Policy.
    pub policy: RolloutPolicy,
    /// State.
    pub state: RolloutState,
    /// Optimistic-concurrency revision of `state`.
    pub revision: i64,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A node's attempt status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptStatus {
    /// Offered, no final report.
    InFlight,
    /// Healthy on the release.
    Healthy,
    /// Error or rollback.
    Failed,
    /// Finished well by an unsigned report (a Flatcar node that rebooted
    /// into the release): frees its cap slot and counts as finished for the
    /// failure rate, but never as healthy for a health gate.
    Succeeded,
    /// The node cancelled the release it had staged (withdrawn by the
    /// server, or `update-agent cancel`): neither in flight nor failed, and
    /// this rollout does not offer the release to the node again.
    Cancelled,
}

/// The SQL condition of an attempt that timed out: in flight and still
/// downloading or installing when the policy's `update_timeout` (the
/// timeout's start bound as `$N`) ran out. A node that staged the release
/// waits for its own reboot policy and is not timed (DESIGN §3.13).
pub(crate) fn timed_out_sql(start: &str) -> String {
    format!(
        "(status = 'in_flight' AND phase IN ('offered', 'downloading') AND started_at <= {start})"
    )
}

/// The SQL condition of an attempt in flight and not timed out.
pub(crate) fn live_sql(start: &str) -> String {
    format!(
        "(status = 'in_flight' AND (phase NOT IN ('offered', 'downloading') OR started_at > {start}))"
    )
}

impl AttemptStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::InFlight => "in_flight",
            AttemptStatus::Healthy => "healthy",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Cancelled => "cancelled",
        }
    }
    /// From the stored name.
    pub fn parse(s: &str) -> AttemptStatus {
        match s {
            "healthy" => AttemptStatus::Healthy,
            "failed" => AttemptStatus::Failed,
            "succeeded" => AttemptStatus::Succeeded,
            "cancelled" => AttemptStatus::Cancelled,
            _ => AttemptStatus::InFlight,
        }
    }
}

/// How far an attempt got, from the node's events (shown on the dashboard;
/// the rollout maths read only [`AttemptStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Offered; no event yet.
    Offered,
    /// `download_started` or `download_finished`.
    Downloading,
    /// `installed`, `rebooting` or `booted_new_version`: waiting for health.
    Installed,
    /// `healthy`.
    Healthy,
    /// `rollback`: the node fell back to its previous slot.
    RolledBack,
    /// `error`.
    Error,
    /// `cancelled`: the staged slot was cleared.
    Cancelled,
}

impl Phase {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Offered => "offered",
            Phase::Downloading => "downloading",
            Phase::Installed => "installed",
            Phase::Healthy => "healthy",
            Phase::RolledBack => "rolled_back",
            Phase::Error => "error",
            Phase::Cancelled => "cancelled",
        }
    }

    /// From the stored name (unknown names read as offered).
    pub fn parse(s: &str) -> Phase {
        match s {
            "downloading" => Phase::Downloading,
            "installed" => Phase::Installed,
            "healthy" => Phase::Healthy,
            "rolled_back" => Phase::RolledBack,
            "error" => Phase::Error,
            "cancelled" => Phase::Cancelled,
            _ => Phase::Offered,
        }
    }

    /// The phase an event moves an attempt to, with the attempt's status if
    /// the event ends it; `None` for events that say nothing about one.
    pub fn of_event(
        kind: &moho_protocol::node::EventKind,
    ) -> Option<(Phase, Option<AttemptStatus>)> {
        use moho_protocol::node::EventKind as E;
        Some(match kind {
            E::DownloadStarted { .. } | E::DownloadFinished { .. } => (Phase::Downloading, None),
            E::Installed { .. } | E::Rebooting { .. } | E::BootedNewVersion { .. } => {
                (Phase::Installed, None)
            }
            E::Healthy { .. } => (Phase::Healthy, Some(AttemptStatus::Healthy)),
            E::Rollback { .. } | E::TrialFailed { .. } => {
                (Phase::RolledBack, Some(AttemptStatus::Failed))
            }
            E::Cancelled { .. } => (Phase::Cancelled, Some(AttemptStatus::Cancelled)),
            E::Error {
                version: Some(_), ..
            } => (Phase::Error, Some(AttemptStatus::Failed)),
            E::Error { version: None, .. } => return None,
        })
    }
}

/// One attempt row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptRow {
    /// Status.
    pub status: AttemptStatus,
    /// When offered.
    pub started_at: Timestamp,
    /// How far it got.
    pub phase: Phase,
}

fn corrupt(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |source| StoreError::Corrupt { what, source }
}

fn rollout_from_row(r: &AnyRow) -> Result<RolloutRecord, StoreError> {
    let policy: String = r.try_get("policy")?;
    let state: String = r.try_get("state")?;
    Ok(RolloutRecord {
        id: r.try_get("id")?,
        version: r.try_get("version")?,
        board: r.try_get("board")?,
        channel: r.try_get("channel")?,
        group: r.try_get("grp")?,
        policy: serde_json::from_str(&policy).map_err(corrupt("rollout policy"))?,
        state: serde_json::from_str(&state).map_err(corrupt("rollout state"))?,
        revision: r.try_get("revision")?,
        created_at: from_millis(r.try_get("created_at")?),
    })
}

fn release_from_row(r: &AnyRow) -> Result<ReleaseView, StoreError> {
    let channels: String = r.try_get("channels")?;
    let flatcar: Option<String> = r.try_get("flatcar")?;
    Ok(ReleaseView {
        version: r.try_get("version")?,
        board: r.try_get("board")?,
        target: r.try_get("target")?,
        channels: serde_json::from_str(&channels).map_err(corrupt("release channels"))?,
        min_version: r.try_get("min_version")?,
        present: r.try_get::<i64, _>("present")? != 0,
        size: r
            .try_get::<Option<i64>, _>("size")?
            .and_then(|n| u64::try_from(n).ok()),
        kind: ReleaseKind::parse(&r.try_get::<String, _>("kind")?),
        flatcar: flatcar
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(corrupt("flatcar payloads"))?,
    })
}

/// [`Db::finish_attempts`] on any connection (a pool or a transaction).
pub(super) async fn finish_attempts_with<'c>(
    on: impl sqlx::Executor<'c, Database = sqlx::Any>,
    node_id: &str,
    version: &str,
    status: AttemptStatus,
    phase: Phase,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE attempts SET status = $1, finished_at = $2, phase = $5
         WHERE node_id = $3 AND status = 'in_flight'
           AND rollout_id IN (SELECT id FROM rollouts WHERE version = $4)",
    )
    .bind(status.as_str())
    .bind(millis(now))
    .bind(node_id)
    .bind(version)
    .bind(phase.as_str())
    .execute(on)
    .await?;
    Ok(done.rows_affected())
}

/// [`Db::advance_attempts`] on any connection (a pool or a transaction).
pub(super) async fn advance_attempts_with<'c>(
    on: impl sqlx::Executor<'c, Database = sqlx::Any>,
    node_id: &str,
    version: &str,
    phase: Phase,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE attempts SET phase = $1
         WHERE node_id = $2 AND status = 'in_flight'
           AND rollout_id IN (SELECT id FROM rollouts WHERE version = $3)",
    )
    .bind(phase.as_str())
    .bind(node_id)
    .bind(version)
    .execute(on)
    .await?;
    Ok(done.rows_affected())
}

const RELEASE_COLUMNS: &str =
    "version, board, target, channels, min_version, present, size, kind, flatcar";

const ROLLOUT_COLUMNS: &str =
    "id, version, board, channel, grp, policy, state, revision, created_at";

impl Db {
    /// Replaces the set of present releases with the verified list in its
    /// own transaction (a sync nobody asked for: at start, in tests).
    pub async fn sync_releases(&self, list: &[SyncedRelease]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        self.replace_releases(&mut tx, list).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the set of present releases with the verified list inside
    /// `tx`: releases absent from it are kept for the record but marked not
    /// present.
    pub async fn replace_releases(
        &self,
        tx: &mut Tx,
        list: &[SyncedRelease],
    ) -> Result<(), StoreError> {
        // Flatcar releases are registered by hand, not synced.
        sqlx::query("UPDATE releases SET present = 0 WHERE kind = 'moho'")
            .execute(&mut **tx)
            .await?;
        for r in list {
            let channels =
                serde_json::to_string(&r.channels).map_err(corrupt("release channels"))?;
            sqlx::query(
                "INSERT INTO releases (version, board, target, channels, min_version, present, size)
                 VALUES ($1, $2, $3, $4, $5, 1, $6)
                 ON CONFLICT (version, board) DO UPDATE SET target = $3, channels = $4, min_version = $5, present = 1, size = $6
                 WHERE releases.kind = 'moho'",
            )
            .bind(&r.version)
            .bind(&r.board)
            .bind(&r.target)
            .bind(channels)
            .bind(r.min_version.clone())
            .bind(r.size.and_then(|n| i64::try_from(n).ok()))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// All known releases.
    pub async fn releases(&self) -> Result<Vec<ReleaseView>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RELEASE_COLUMNS} FROM releases ORDER BY board, version"
        )))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(release_from_row).collect()
    }

    /// One release.
    pub async fn release(
        &self,
        version: &str,
        board: &str,
    ) -> Result<Option<ReleaseView>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE version = $1 AND board = $2"
        )))
        .bind(version)
        .bind(board)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(release_from_row).transpose()
    }

    /// Registers a Flatcar release inside `tx` (present, for `channels`).
    /// Returns false if a release of that version and board exists.
    pub async fn insert_flatcar_release(
        &self,
        tx: &mut Tx,
        version: &str,
        board: &str,
        channels: &[String],
        payloads: &FlatcarPayloads,
    ) -> Result<bool, StoreError> {
        let channels = serde_json::to_string(channels).map_err(corrupt("release channels"))?;
        let json = serde_json::to_string(payloads).map_err(corrupt("flatcar payloads"))?;
        let done = sqlx::query(
            "INSERT INTO releases (version, board, target, channels, min_version, present, size, kind, flatcar)
             VALUES ($1, $2, $3, $4, NULL, 1, $5, 'flatcar', $6)
             ON CONFLICT (version, board) DO NOTHING",
        )
        .bind(version)
        .bind(board)
        .bind(&payloads.payload.name)
        .bind(channels)
        .bind(i64::try_from(payloads.payload.size).unwrap_or(i64::MAX))
        .bind(json)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Inserts a rollout inside `tx`; returns its id.
    pub async fn insert_rollout(&self, tx: &mut Tx, r: &RolloutRecord) -> Result<i64, StoreError> {
        let policy = serde_json::to_string(&r.policy).map_err(corrupt("rollout policy"))?;
        let state = serde_json::to_string(&r.state).map_err(corrupt("rollout state"))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO rollouts (version, board, channel, grp, policy, state, revision, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7) RETURNING id",
        )
        .bind(&r.version)
        .bind(&r.board)
        .bind(&r.channel)
        .bind(&r.group)
        .bind(policy)
        .bind(state)
        .bind(millis(r.created_at))
        .fetch_one(&mut **tx)
        .await?;
        Ok(id)
    }

    /// One rollout.
    pub async fn rollout(&self, id: i64) -> Result<Option<RolloutRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(rollout_from_row).transpose()
    }

    /// All rollouts, newest first.
    pub async fn rollouts(&self) -> Result<Vec<RolloutRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts ORDER BY id DESC"
        )))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(rollout_from_row).collect()
    }

    /// Saves a new state if the stored revision is still `revision`
    /// (another replica may have ticked first). Returns whether it was saved.
    pub async fn save_rollout_state(
        &self,
        tx: Option<&mut Tx>,
        id: i64,
        revision: i64,
        state: &RolloutState,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(state).map_err(corrupt("rollout state"))?;
        let q = sqlx::query("UPDATE rollouts SET state = $1, revision = revision + 1 WHERE id = $2 AND revision = $3")
            .bind(json)
            .bind(id)
            .bind(revision);
        let done = match tx {
            Some(tx) => q.execute(&mut **tx).await?,
            None => q.execute(self.writer()).await?,
        };
        Ok(done.rows_affected() == 1)
    }

    /// Replaces the policy (and the state, whose step may have moved) inside
    /// `tx` if the stored revision is still `revision`. Returns whether it
    /// was saved.
    pub async fn save_rollout_policy(
        &self,
        tx: &mut Tx,
        id: i64,
        revision: i64,
        policy: &RolloutPolicy,
        state: &RolloutState,
    ) -> Result<bool, StoreError> {
        let policy = serde_json::to_string(policy).map_err(corrupt("rollout policy"))?;
        let state = serde_json::to_string(state).map_err(corrupt("rollout state"))?;
        let done = sqlx::query(
            "UPDATE rollouts SET policy = $1, state = $2, revision = revision + 1 WHERE id = $3 AND revision = $4",
        )
        .bind(policy)
        .bind(state)
        .bind(id)
        .bind(revision)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A node's attempt at a rollout.
    pub async fn attempt(
        &self,
        rollout_id: i64,
        node_id: &str,
    ) -> Result<Option<AttemptRow>, StoreError> {
        let row = sqlx::query(
            "SELECT status, started_at, phase FROM attempts WHERE rollout_id = $1 AND node_id = $2",
        )
        .bind(rollout_id)
        .bind(node_id)
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok(AttemptRow {
                status: AttemptStatus::parse(&r.try_get::<String, _>("status")?),
                started_at: from_millis(r.try_get("started_at")?),
                phase: Phase::parse(&r.try_get::<String, _>("phase")?),
            })
        })
        .transpose()
    }

    /// Starts an attempt if the caps still allow it, atomically across
    /// replicas. Returns false when a cap was reached meanwhile.
    pub async fn start_attempt(
        &self,
        rollout: &RolloutRecord,
        node_id: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        self.lock(&mut tx, &format!("rollout-{}", rollout.id))
            .await?;
        let p = &rollout.policy;
        let timeout_start = millis(now)
            - p.update_timeout
                .as_millis()
                .try_into()
                .unwrap_or(i64::MAX / 2);
        if let Some(max) = p.max_in_flight {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM attempts WHERE rollout_id = $1 AND {}",
                live_sql("$2")
            )))
            .bind(rollout.id)
            .bind(timeout_start)
            .fetch_one(&mut *tx)
            .await?;
            if n >= i64::from(max) {
                return Ok(false);
            }
        }
        if let Some(cap) = p.period_cap {
            let since = millis(now) - cap.period.as_millis().try_into().unwrap_or(i64::MAX / 2);
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM attempts WHERE rollout_id = $1 AND started_at > $2",
            )
            .bind(rollout.id)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?;
            if n >= i64::from(cap.count) {
                return Ok(false);
            }
        }
        let done = sqlx::query(
            "INSERT INTO attempts (rollout_id, node_id, status, started_at) VALUES ($1, $2, 'in_flight', $3)
             ON CONFLICT (rollout_id, node_id) DO NOTHING",
        )
        .bind(rollout.id)
        .bind(node_id)
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the end of a node's attempts at `version` (healthy or failed,
    /// with the phase it ended in) in the rollouts of its scope. Only
    /// attempts still in flight change.
    pub async fn finish_attempts(
        &self,
        node_id: &str,
        version: &str,
        status: AttemptStatus,
        phase: Phase,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        finish_attempts_with(self.writer(), node_id, version, status, phase, now).await
    }

    /// Inserts attempts in bulk (benchmark fixtures): node id, status,
    /// phase, started, finished.
    pub async fn insert_attempts_bulk(
        &self,
        rollout_id: i64,
        rows: &[(String, AttemptStatus, Phase, Timestamp, Option<Timestamp>)],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for chunk in rows.chunks(500) {
            let mut sql = String::from(
                "INSERT INTO attempts (rollout_id, node_id, status, phase, started_at, finished_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 5 + 1;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "($1, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                ));
            }
            sql.push_str(" ON CONFLICT (rollout_id, node_id) DO NOTHING");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(rollout_id);
            for (node, status, phase, started, finished) in chunk {
                q = q
                    .bind(node.clone())
                    .bind(status.as_str())
                    .bind(phase.as_str())
                    .bind(millis(*started))
                    .bind(finished.map(millis));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records how far a node's attempts at `version` got (from its
    /// progress events); only attempts still in flight change.
    pub async fn advance_attempts(
        &self,
        node_id: &str,
        version: &str,
        phase: Phase,
    ) -> Result<u64, StoreError> {
        advance_attempts_with(self.writer(), node_id, version, phase).await
    }

    /// The counters of a rollout at `now` (timed-out attempts count as
    /// failed); `scope_size` is left 0 for the caller to fill in.
    pub async fn rollout_stats(
        &self,
        r: &RolloutRecord,
        now: Timestamp,
    ) -> Result<RolloutStats, StoreError> {
        let p = &r.policy;
        let timeout_start = millis(now)
            - p.update_timeout
                .as_millis()
                .try_into()
                .unwrap_or(i64::MAX / 2);
        let period_start = p.period_cap.map_or(millis(now), |c| {
            millis(now) - c.period.as_millis().try_into().unwrap_or(i64::MAX / 2)
        });
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS offered,
                    COALESCE(SUM(CASE WHEN {live} THEN 1 ELSE 0 END), 0) AS in_flight,
                    COALESCE(SUM(CASE WHEN status = 'healthy' THEN 1 ELSE 0 END), 0) AS healthy,
                    COALESCE(SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END), 0) AS succeeded,
                    COALESCE(SUM(CASE WHEN status = 'failed' OR {timed_out}
                                      THEN 1 ELSE 0 END), 0) AS failed,
                    COALESCE(SUM(CASE WHEN started_at > $3 THEN 1 ELSE 0 END), 0) AS in_period
             FROM attempts WHERE rollout_id = $1",
            live = live_sql("$2"),
            timed_out = timed_out_sql("$2"),
        )))
        .bind(r.id)
        .bind(timeout_start)
        .bind(period_start)
        .fetch_one(self.reader())
        .await?;
        let n = |name: &str| -> Result<u64, StoreError> {
            Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
        };
        Ok(RolloutStats {
            // The caller knows the scope from its line index.
            scope_size: 0,
            offered: n("offered")?,
            in_flight: n("in_flight")?,
            started_in_period: n("in_period")?,
            healthy: n("healthy")?,
            unsigned_succeeded: n("succeeded")?,
            failed: n("failed")?,
        })
    }
}
