//! Check-in writes in batches: concurrent check-ins are gathered and their
//! replay-safe node updates applied with one `UPDATE ... FROM (VALUES ...)`
//! statement, so a busy server makes one database round trip per batch
//! instead of one per check-in (on SQLite every statement is a hand-off to
//! the connection's thread, the largest cost in the benchmark profile).
//! Same semantics as [`Db::check_in_node`]: a row changes only if the id
//! exists, the key matches and the counter rises. Two check-ins of the same
//! node never share a batch (the later one waits for the next), so the
//! counter check stays exact.

use std::collections::HashSet;

use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot};

use super::{Db, NodeUpsert, StoreError, millis};

/// Most check-ins per statement (12 parameters each).
const MAX_BATCH: usize = 200;

#[derive(Debug)]
struct Job {
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
    reply: oneshot::Sender<Result<bool, String>>,
}

/// Hands check-in updates to the batching task.
#[derive(Debug, Clone)]
pub struct CheckInBatcher {
    tx: mpsc::Sender<Job>,
}

impl CheckInBatcher {
    /// Starts the batching task for `db` (needs a tokio runtime).
    pub fn start(db: Db) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(db, rx));
        Self { tx }
    }

    /// Applies one check-in; true if the node's row changed (false: unknown
    /// id, other key, or a counter that does not rise).
    pub async fn check_in(
        &self,
        n: &NodeUpsert<'_>,
        counter: u64,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
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
            reply,
        };
        let gone = || StoreError::Batch("check-in batching task stopped".to_owned());
        self.tx.send(job).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?.map_err(StoreError::Batch)
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Job>) {
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
        // One job per node per batch; the rest wait for the next one.
        let mut ids = HashSet::new();
        let (batch, later): (Vec<Job>, Vec<Job>) = std::mem::take(&mut carry)
            .into_iter()
            .partition(|j| ids.len() < MAX_BATCH && ids.insert(j.id.clone()));
        carry = later;
        let result = apply(&db, &batch).await;
        for job in batch {
            let answer = match &result {
                Ok(updated) => Ok(updated.contains(&job.id)),
                Err(e) => Err(e.to_string()),
            };
            let _ = job.reply.send(answer);
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
async fn apply(db: &Db, batch: &[Job]) -> Result<HashSet<String>, StoreError> {
    let mut updated = apply_unchanged(db, batch).await?;
    let rest: Vec<&Job> = batch.iter().filter(|j| !updated.contains(&j.id)).collect();
    if !rest.is_empty() {
        updated.extend(apply_full(db, &rest).await?);
    }
    Ok(updated)
}

/// `(CAST($1 AS T1), ...), (...)` for `rows` rows of the given column types.
fn values(rows: usize, types: &[&str]) -> String {
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
            sql.push_str(&format!("CAST(${} AS {t})", i * types.len() + c + 1));
        }
        sql.push(')');
    }
    sql
}

async fn apply_unchanged(db: &Db, batch: &[Job]) -> Result<HashSet<String>, StoreError> {
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
        values(batch.len(), &TYPES)
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

async fn apply_full(db: &Db, batch: &[&Job]) -> Result<HashSet<String>, StoreError> {
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
        values(batch.len(), &TYPES)
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
