//! Node writes in batches: the check-ins and event reports in flight are
//! gathered by one task and applied together — the check-ins' replay-safe
//! node updates with one `UPDATE ... FROM (VALUES ...)` statement, the
//! reports' counter advances, events and attempt phases in one
//! transaction — so a busy server makes a few database round trips per
//! batch instead of several per request (on SQLite every statement is a
//! hand-off to the connection's thread, the largest cost in the benchmark
//! profile).
//!
//! A check-in is queued either *through* (its handler waits for the answer:
//! a node this replica does not hold, or changed facts) or *behind* (already
//! accepted from memory by [`super::HotNodes`]; the handler goes on and only
//! waits if its answer has to write, see `offer/write.rs`). A report is
//! always written through: it is answered only once stored. Same semantics
//! as [`Db::check_in_node`] and [`Db::insert_report`]: a row changes only
//! if the id exists, the key matches and the counter rises. Two requests of
//! the same node never share a batch (the later one waits for the next),
//! and a node's requests are applied in the order they were queued, so the
//! counter check stays exact. A write behind that changes no row (the node
//! was deleted, re-keyed or advanced through another replica) drops the
//! node from the hot state, so its next request asks the database.

use std::collections::HashSet;
use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use super::rollouts::finish_attempts_with;
use super::{AttemptStatus, Db, HotNodes, NodeUpsert, Phase, StoreError, millis};

/// Most requests per statement (12 parameters per check-in).
const MAX_BATCH: usize = 200;

/// How long writes behind may wait for more to share their statement.
const BEHIND_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

type Reply = oneshot::Sender<Result<bool, String>>;

#[derive(Debug)]
struct CheckInJob {
    id: String,
    public_key: String,
    channel: String,
    group: String,
    board: String,
    version: String,
    slot: String,
    state: String,
    hostname: String,
    fallback_version: Option<String>,
    counter: i64,
    now: i64,
    behind: bool,
    reply: Reply,
}

/// One stored event of a report.
#[derive(Debug, Clone)]
pub struct EventWrite {
    /// When the node says it happened.
    pub at: Timestamp,
    /// Event type name.
    pub kind: &'static str,
    /// The version it is about.
    pub version: Option<String>,
    /// The event as JSON.
    pub body: String,
}

/// What a verified event report writes.
#[derive(Debug, Clone)]
pub struct ReportWrite {
    /// Node id.
    pub node_id: String,
    /// The key the report was verified with (the row must still hold it).
    pub public_key: String,
    /// The report's counter.
    pub counter: u64,
    /// Its events.
    pub events: Vec<EventWrite>,
    /// Attempts that end, in report order: version, status, phase.
    pub finishes: Vec<(String, AttemptStatus, Phase)>,
    /// The phase the node's attempt at a version reached (after the
    /// finishes).
    pub progress: Option<(String, Phase)>,
    /// When the server received it.
    pub now: Timestamp,
}

#[derive(Debug)]
enum Job {
    CheckIn(CheckInJob),
    Report(ReportWrite, Reply),
    /// Answered once every job queued before it is applied.
    Flush(oneshot::Sender<()>),
}

impl Job {
    /// A check-in written behind (nobody waits for it).
    fn behind(&self) -> bool {
        matches!(self, Job::CheckIn(j) if j.behind)
    }

    fn node(&self) -> Option<&str> {
        match self {
            Job::CheckIn(j) => Some(&j.id),
            Job::Report(r, _) => Some(&r.node_id),
            Job::Flush(_) => None,
        }
    }
}

/// A check-in written behind: whether its row was written, once the batch
/// that holds it is applied.
#[derive(Debug)]
pub struct PendingCheckIn {
    answer: oneshot::Receiver<Result<bool, String>>,
}

impl PendingCheckIn {
    /// Waits for the batch: true if the node's row took the check-in.
    pub async fn stored(self) -> Result<bool, StoreError> {
        self.answer
            .await
            .map_err(|_| gone())?
            .map_err(StoreError::Batch)
    }
}

fn gone() -> StoreError {
    StoreError::Batch("node write batching task stopped".to_owned())
}

/// Hands node writes to the batching task.
#[derive(Debug, Clone)]
pub struct CheckInBatcher {
    tx: mpsc::Sender<Job>,
}

impl CheckInBatcher {
    /// Starts the batching task for `db` (needs a tokio runtime); writes
    /// behind that change no row drop their node from `hot`.
    pub fn start(db: Db, hot: Arc<HotNodes>) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(db, hot, rx));
        Self { tx }
    }

    /// Applies one check-in and waits for it; true if the node's row
    /// changed (false: unknown id, other key, or a counter that does not
    /// rise).
    pub async fn check_in(
        &self,
        n: &NodeUpsert<'_>,
        counter: u64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.queue(n, counter, now, false).await?.stored().await
    }

    /// Queues a check-in already accepted from memory, without waiting.
    pub async fn check_in_behind(
        &self,
        n: &NodeUpsert<'_>,
        counter: u64,
        now: Timestamp,
    ) -> Result<PendingCheckIn, StoreError> {
        self.queue(n, counter, now, true).await
    }

    /// Stores a verified report (counter advance, events, attempt phases)
    /// and waits for it; false (nothing stored) if the node's row no longer
    /// holds its key or its counter is not above the stored one.
    pub async fn report(&self, r: ReportWrite) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job::Report(r, reply))
            .await
            .map_err(|_| gone())?;
        PendingCheckIn { answer }.stored().await
    }

    /// Waits until every write queued so far is applied (a clean stop).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job::Flush(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    }

    async fn queue(
        &self,
        n: &NodeUpsert<'_>,
        counter: u64,
        now: Timestamp,
        behind: bool,
    ) -> Result<PendingCheckIn, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = CheckInJob {
            id: n.id.to_owned(),
            public_key: n.public_key.to_owned(),
            channel: n.channel.to_owned(),
            group: n.group.to_owned(),
            board: n.board.to_owned(),
            version: n.version.to_owned(),
            slot: n.slot.to_owned(),
            state: n.state.to_owned(),
            hostname: n.hostname.to_owned(),
            fallback_version: n.fallback_version.map(str::to_owned),
            counter: i64::try_from(counter).unwrap_or(i64::MAX),
            now: millis(now),
            behind,
            reply,
        };
        self.tx.send(Job::CheckIn(job)).await.map_err(|_| gone())?;
        Ok(PendingCheckIn { answer })
    }
}

async fn run(db: Db, hot: Arc<HotNodes>, mut rx: mpsc::Receiver<Job>) {
    let mut carry: Vec<Job> = Vec::new();
    loop {
        if carry.is_empty() {
            match rx.recv().await {
                Some(job) => carry.push(job),
                None => return,
            }
        }
        while carry.len() < MAX_BATCH * 2 {
            match rx.try_recv() {
                Ok(job) => carry.push(job),
                Err(_) => break,
            }
        }
        // Only writes behind waiting, and fewer than a full batch: nobody
        // waits for them, so gather for up to BEHIND_WAIT (fewer, larger
        // statements); anything a request waits for ends the wait.
        let deadline = tokio::time::Instant::now() + BEHIND_WAIT;
        while carry.len() < MAX_BATCH && carry.iter().all(Job::behind) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => carry.push(job),
                Ok(None) | Err(_) => break,
            }
        }
        // A flush at the front: everything before it is applied.
        while let Some(Job::Flush(_)) = carry.first() {
            if let Job::Flush(reply) = carry.remove(0) {
                let _ = reply.send(());
            }
        }
        // From the jobs before the first flush, one per node per batch; the
        // rest wait for the next one (a node's jobs stay in order).
        let barrier = carry
            .iter()
            .position(|j| matches!(j, Job::Flush(_)))
            .unwrap_or(carry.len());
        let after = carry.split_off(barrier);
        let mut ids = HashSet::new();
        let mut held = HashSet::new();
        let mut check_ins = Vec::new();
        let mut reports = Vec::new();
        let mut later = Vec::new();
        for job in std::mem::take(&mut carry) {
            let id = job.node().unwrap_or_default().to_owned();
            if held.contains(&id) || ids.len() >= MAX_BATCH || !ids.insert(id.clone()) {
                held.insert(id);
                later.push(job);
                continue;
            }
            match job {
                Job::CheckIn(j) => check_ins.push(j),
                Job::Report(r, reply) => reports.push((r, reply)),
                Job::Flush(_) => {}
            }
        }
        carry = later;
        carry.extend(after);
        if !check_ins.is_empty() {
            let result = apply(&db, &check_ins).await;
            for job in check_ins {
                let answer = match &result {
                    Ok(updated) => Ok(updated.contains(&job.id)),
                    Err(e) => Err(e.to_string()),
                };
                if job.behind && !matches!(answer, Ok(true)) {
                    hot.forget(&job.id);
                }
                let _ = job.reply.send(answer);
            }
        }
        if !reports.is_empty() {
            let rows: Vec<&ReportWrite> = reports.iter().map(|(r, _)| r).collect();
            let result = apply_reports(&db, &rows).await;
            for (r, reply) in reports {
                let answer = match &result {
                    Ok(fresh) => Ok(fresh.contains(&r.node_id)),
                    Err(e) => Err(e.to_string()),
                };
                let _ = reply.send(answer);
            }
        }
    }
}

/// Applies a batch: first the common case, a node whose facts are those
/// already stored, with an `UPDATE` that assigns only `counter` and
/// `last_seen` (so SQLite rewrites only the two indexes holding
/// `last_seen`, not all seven of the node table); then the full `UPDATE`
/// for the rest (changed facts, and the unknown, wrong-key or replayed
/// ones, which neither statement changes). Both are compare-and-set on the
/// counter, so a row changed in between by another replica is still right.
async fn apply(db: &Db, batch: &[CheckInJob]) -> Result<HashSet<String>, StoreError> {
    let mut updated = apply_unchanged(db, batch).await?;
    let rest: Vec<&CheckInJob> = batch.iter().filter(|j| !updated.contains(&j.id)).collect();
    if !rest.is_empty() {
        updated.extend(apply_full(db, &rest).await?);
    }
    Ok(updated)
}

/// `(CAST($1 AS T1), ...), (...)` for `rows` rows of the given column types
/// (on SQLite `?` instead of `$n`: the parameters are bound in order either
/// way, and SQLite resolves each `$n` by a linear search of the names seen
/// so far — quadratic in a batch's 2,400 parameters, 16 % of the server's
/// CPU in the benchmark profile).
fn values(db: &Db, rows: usize, types: &[&str]) -> String {
    let sqlite = db.backend() == super::Backend::Sqlite;
    let mut sql = String::new();
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for (c, t) in types.iter().enumerate() {
            if c > 0 {
                sql.push(',');
            }
            if sqlite {
                sql.push_str(&format!("CAST(? AS {t})"));
            } else {
                sql.push_str(&format!("CAST(${} AS {t})", i * types.len() + c + 1));
            }
        }
        sql.push(')');
    }
    sql
}

async fn apply_unchanged(db: &Db, batch: &[CheckInJob]) -> Result<HashSet<String>, StoreError> {
    const TYPES: [&str; 12] = [
        "TEXT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT",
        "TEXT",
    ];
    let sql = format!(
        "UPDATE nodes SET counter = v.column2, last_seen = v.column3 FROM (VALUES {}) AS v \
         WHERE nodes.id = v.column1 AND nodes.counter < v.column2 AND nodes.public_key = v.column4 \
         AND nodes.channel = v.column5 AND nodes.grp = v.column6 AND nodes.board = v.column7 \
         AND nodes.version = v.column8 AND nodes.slot = v.column9 AND nodes.state = v.column10 \
         AND nodes.hostname = v.column11 AND nodes.fallback_version IS NOT DISTINCT FROM v.column12 \
         RETURNING nodes.id",
        values(db, batch.len(), &TYPES)
    );
    let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for j in batch {
        q = q
            .bind(j.id.clone())
            .bind(j.counter)
            .bind(j.now)
            .bind(j.public_key.clone())
            .bind(j.channel.clone())
            .bind(j.group.clone())
            .bind(j.board.clone())
            .bind(j.version.clone())
            .bind(j.slot.clone())
            .bind(j.state.clone())
            .bind(j.hostname.clone())
            .bind(j.fallback_version.clone());
    }
    Ok(q.fetch_all(db.writer()).await?.into_iter().collect())
}

async fn apply_full(db: &Db, batch: &[&CheckInJob]) -> Result<HashSet<String>, StoreError> {
    const TYPES: [&str; 12] = [
        "TEXT", "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "BIGINT", "TEXT", "TEXT",
        "TEXT",
    ];
    let sql = format!(
        "UPDATE nodes SET counter = v.column2, channel = v.column3, grp = v.column4, board = v.column5, \
         version = v.column6, slot = v.column7, state = v.column8, last_seen = v.column9, \
         hostname = v.column11, fallback_version = v.column12 FROM (VALUES {}) AS v \
         WHERE nodes.id = v.column1 AND nodes.counter < v.column2 AND nodes.public_key = v.column10 \
         RETURNING nodes.id",
        values(db, batch.len(), &TYPES)
    );
    let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for j in batch {
        q = q
            .bind(j.id.clone())
            .bind(j.counter)
            .bind(j.channel.clone())
            .bind(j.group.clone())
            .bind(j.board.clone())
            .bind(j.version.clone())
            .bind(j.slot.clone())
            .bind(j.state.clone())
            .bind(j.now)
            .bind(j.public_key.clone())
            .bind(j.hostname.clone())
            .bind(j.fallback_version.clone());
    }
    Ok(q.fetch_all(db.writer()).await?.into_iter().collect())
}

/// Applies reports in one transaction: the counter advances (where the
/// key still matches and the counter rises), then, for the fresh ones
/// only, their events, the attempts they end and the phases they reach.
/// Returns the nodes whose report was stored.
async fn apply_reports(db: &Db, batch: &[&ReportWrite]) -> Result<HashSet<String>, StoreError> {
    let mut tx = db.begin().await?;
    let sql = format!(
        "UPDATE nodes SET counter = v.column2 FROM (VALUES {}) AS v \
         WHERE nodes.id = v.column1 AND nodes.counter < v.column2 AND nodes.public_key = v.column3 \
         RETURNING nodes.id",
        values(db, batch.len(), &["TEXT", "BIGINT", "TEXT"])
    );
    let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for r in batch {
        q = q
            .bind(r.node_id.clone())
            .bind(i64::try_from(r.counter).unwrap_or(i64::MAX))
            .bind(r.public_key.clone());
    }
    let fresh: HashSet<String> = q.fetch_all(&mut *tx).await?.into_iter().collect();
    let stored: Vec<&ReportWrite> = batch
        .iter()
        .copied()
        .filter(|r| fresh.contains(&r.node_id))
        .collect();
    let events: Vec<(&str, &EventWrite, i64)> = stored
        .iter()
        .flat_map(|r| {
            r.events
                .iter()
                .map(|e| (r.node_id.as_str(), e, millis(r.now)))
        })
        .collect();
    for chunk in events.chunks(MAX_BATCH) {
        let sql = format!(
            "INSERT INTO events (node_id, at, received_at, type, version, body) VALUES {}",
            values(
                db,
                chunk.len(),
                &["TEXT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT"]
            )
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (node, e, received) in chunk {
            q = q
                .bind((*node).to_owned())
                .bind(millis(e.at))
                .bind(*received)
                .bind(e.kind)
                .bind(e.version.clone())
                .bind(e.body.clone());
        }
        q.execute(&mut *tx).await?;
    }
    for r in &stored {
        for (version, status, phase) in &r.finishes {
            finish_attempts_with(&mut *tx, &r.node_id, version, *status, *phase, r.now).await?;
        }
    }
    let progress: Vec<(&str, &str, Phase)> = stored
        .iter()
        .filter_map(|r| {
            r.progress
                .as_ref()
                .map(|(v, p)| (r.node_id.as_str(), v.as_str(), *p))
        })
        .collect();
    if !progress.is_empty() {
        let sql = format!(
            "UPDATE attempts SET phase = v.column3 FROM (VALUES {}) AS v \
             WHERE attempts.node_id = v.column1 AND attempts.status = 'in_flight' \
             AND attempts.rollout_id IN (SELECT id FROM rollouts WHERE version = v.column2)",
            values(db, progress.len(), &["TEXT", "TEXT", "TEXT"])
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (node, version, phase) in progress {
            q = q
                .bind(node.to_owned())
                .bind(version.to_owned())
                .bind(phase.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(fresh)
}
