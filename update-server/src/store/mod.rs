//! Storage: one SQL implementation over sqlx's `Any` driver that runs on
//! SQLite (default, a file in the data directory) and on PostgreSQL (several
//! server replicas behind a load balancer). Dialect differences (id columns,
//! write transactions, advisory locks) live here; the queries are shared and
//! use `$n` placeholders, which both drivers accept.
//!
//! SQLite runs on sqlx's own connection threads, off the async executor. Its
//! writes go through a single-connection pool, so they never fight over the
//! database lock; reads use a separate pool (WAL mode).

mod admin;
mod audit;
mod backup;
mod batch;
mod enrollment;
mod event_stream;
mod fleetlock;
pub mod hot;
mod node_views;
mod nodes;
mod omaha;
mod repo_meta;
mod rollouts;
mod schema;
mod secrets;
mod sessions;
mod tokens;
mod views;

use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Transaction};

pub use audit::Change;
pub use backup::{BackupInfo, check_sqlite_backup};
pub use batch::{CheckInBatcher, EventWrite, PendingCheckIn, ReportWrite};
pub use enrollment::{EnrolledNode, EnrollmentUse, Pin};
pub use event_stream::{STREAM_WINDOW, StreamEvent, StreamFilter, StreamPage};
pub use fleetlock::{Acquire, LockRow};
pub use hot::{Admission, HotNodes};
pub use node_views::{EventRow, NodeAttempt, NodeFilter, Seen};
pub use nodes::{NodeRecord, NodeSeed, NodeUpsert, Registration};
pub use omaha::{AttemptWrite, FlatcarNode, FlatcarWrite};
pub use repo_meta::{Generation, Superseded};
pub use rollouts::{AttemptRow, AttemptStatus, Phase, RolloutRecord, SyncedRelease};
pub use sessions::SessionRecord;
pub use tokens::token_id;
pub use views::{BucketRow, FleetRow, PhaseRow};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is neither `sqlite:` nor `postgres:`.
    #[error("unsupported database url {0:?}: use sqlite://FILE or postgres://...")]
    BadUrl(String),
    /// The database refused or failed.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// A check-in accepted from memory was not taken by the node's row
    /// (replayed through another replica, or the node was deleted or
    /// re-keyed meanwhile).
    #[error(
        "the check-in of node {0:?} was not stored: its counter was already used, or the node was deleted or re-keyed meanwhile"
    )]
    NotStored(String),
    /// The check-in batch failed (the message of the database error).
    #[error("database error: {0}")]
    Batch(String),
    /// A backup file that cannot be restored (named, with the reason).
    #[error("{0}")]
    Backup(String),
    /// A stored JSON document that no longer parses.
    #[error("corrupt stored {what}: {source}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Parse error.
        source: serde_json::Error,
    },
}

/// Which database is behind the pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Db {
    backend: Backend,
    read: AnyPool,
    write: AnyPool,
}

/// A write transaction.
pub type Tx = Transaction<'static, Any>;

/// Milliseconds since the epoch, as stored.
pub fn millis(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// Back from stored milliseconds.
pub fn from_millis(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Db {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(url.to_owned()));
        };
        let db = match backend {
            Backend::Sqlite => {
                let opts = |n: u32| {
                    AnyPoolOptions::new()
                        .max_connections(n)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                conn.execute("PRAGMA busy_timeout = 10000").await?;
                                conn.execute("PRAGMA journal_mode = WAL").await?;
                                conn.execute("PRAGMA synchronous = NORMAL").await?;
                                conn.execute("PRAGMA foreign_keys = ON").await?;
                                Ok(())
                            })
                        })
                };
                // The writer first, so that it creates the file and sets WAL.
                let write = opts(1).connect(url).await?;
                let read = opts(4).connect(url).await?;
                Db {
                    backend,
                    read,
                    write,
                }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await?;
                Db {
                    backend,
                    read: pool.clone(),
                    write: pool,
                }
            }
        };
        schema::migrate(&db).await?;
        Ok(db)
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool for reads.
    pub(crate) fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// The pool for single-statement writes.
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite, so a
    /// read-then-write cannot be refused half-way).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        })
    }

    /// Serialises transactions that name the same `key` until commit. On
    /// SQLite every write transaction is already serialised.
    pub async fn lock(&self, tx: &mut Tx, key: &str) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::TEXT")
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

impl FromStr for Backend {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" => Ok(Backend::Postgres),
            _ => Err(StoreError::BadUrl(s.to_owned())),
        }
    }
}
