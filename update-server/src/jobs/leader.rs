//! Which replica runs the background jobs. Behind the narrow [`Lease`]
//! trait: [`AlwaysLeader`] for SQLite (one replica, always in charge),
//! [`PgAdvisoryLease`] for PostgreSQL (a session-level advisory lock held on
//! a connection of its own), and [`FakeLease`] for tests.
//!
//! [`hold`] asks the lease every `every` whether this replica leads and
//! records the answer in the state ([`AppState::is_leader`]); every job
//! pass looks at it first. A replica killed while holding the PostgreSQL
//! lock loses its connection, and PostgreSQL frees a session lock with its
//! connection, so the next standby to ask takes over: the takeover time is
//! at most one check interval after the holder's connection is closed
//! (at once for a killed process; for a holder cut off by the network,
//! when PostgreSQL's TCP keepalive gives up on it, while the cut-off holder
//! stops leading as soon as its own check fails).

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, Connection as _};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// The advisory lock key of the jobs' lease (`hashtext` of this name; the
/// per-transaction locks of [`crate::store::Db::lock`] use other names).
pub const LEASE_NAME: &str = "moho.jobs.leader";

/// How often a replica checks or tries to take the lease, by default.
pub const DEFAULT_CHECK: Duration = Duration::from_secs(5);

/// A lease that at most one replica holds at a time.
pub trait Lease: Send + Sync + Debug {
    /// Takes the lease if it is free, or confirms that this replica still
    /// holds it; answers whether this replica leads now. A failure (the
    /// database unreachable) is "not leading".
    fn hold(&self) -> BoxFuture<'_, bool>;
    /// Gives the lease up (at a clean shutdown).
    fn release(&self) -> BoxFuture<'_, ()>;
}

/// The only replica (SQLite): always leads.
#[derive(Debug, Default)]
pub struct AlwaysLeader;

impl Lease for AlwaysLeader {
    fn hold(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }
    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// A lease a test hands out and takes back; counts the calls.
#[derive(Debug, Default)]
pub struct FakeLease {
    /// Whether [`Lease::hold`] answers that this replica leads.
    pub leading: AtomicBool,
    /// How many times [`Lease::hold`] was called.
    pub holds: AtomicU64,
    /// Whether [`Lease::release`] was called.
    pub released: AtomicBool,
}

impl FakeLease {
    /// A fake that answers `leading`.
    pub fn new(leading: bool) -> Self {
        Self {
            leading: AtomicBool::new(leading),
            ..Self::default()
        }
    }
}

impl Lease for FakeLease {
    fn hold(&self) -> BoxFuture<'_, bool> {
        self.holds.fetch_add(1, Ordering::SeqCst);
        let leading = self.leading.load(Ordering::SeqCst);
        Box::pin(async move { leading })
    }
    fn release(&self) -> BoxFuture<'_, ()> {
        self.released.store(true, Ordering::SeqCst);
        self.leading.store(false, Ordering::SeqCst);
        Box::pin(async {})
    }
}

/// A PostgreSQL session-level advisory lock on a connection outside the
/// pools: holding the lock is holding that connection.
#[derive(Debug)]
pub struct PgAdvisoryLease {
    url: String,
    /// How long one check may take before it counts as failed.
    timeout: Duration,
    /// The connection that holds the lock, while this replica leads.
    held: tokio::sync::Mutex<Option<AnyConnection>>,
}

impl PgAdvisoryLease {
    /// A lease on the PostgreSQL database at `url`; a check that takes
    /// longer than `timeout` counts as failed.
    pub fn new(url: &str, timeout: Duration) -> Self {
        Self {
            url: url.to_owned(),
            timeout,
            held: tokio::sync::Mutex::new(None),
        }
    }

    async fn try_take(&self) -> Result<Option<AnyConnection>, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(&self.url).await?;
        let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(LEASE_NAME)
            .fetch_one(&mut conn)
            .await?;
        if got {
            Ok(Some(conn))
        } else {
            // Somebody else leads; this connection holds nothing.
            let _ = conn.close().await;
            Ok(None)
        }
    }
}

impl Lease for PgAdvisoryLease {
    fn hold(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let mut held = self.held.lock().await;
            if let Some(conn) = held.as_mut() {
                // Still holding while the connection lives.
                let alive =
                    tokio::time::timeout(self.timeout, sqlx::query("SELECT 1").execute(conn)).await;
                if matches!(alive, Ok(Ok(_))) {
                    return true;
                }
                tracing::warn!("lost the connection that holds the jobs' lease: no longer leading");
                *held = None;
                return false;
            }
            match tokio::time::timeout(self.timeout, self.try_take()).await {
                Ok(Ok(Some(conn))) => {
                    *held = Some(conn);
                    true
                }
                Ok(Ok(None)) => false,
                Ok(Err(e)) => {
                    tracing::warn!("cannot ask PostgreSQL for the jobs' lease: {e}");
                    false
                }
                Err(_) => {
                    tracing::warn!(
                        "asking PostgreSQL for the jobs' lease took more than {:?}",
                        self.timeout
                    );
                    false
                }
            }
        })
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(mut conn) = self.held.lock().await.take() {
                let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
                    .bind(LEASE_NAME)
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        })
    }
}

/// Asks `lease` every `every` and records in `state` whether this replica
/// leads, until `stop` is cancelled; then gives the lease up.
pub async fn hold(
    state: AppState,
    lease: Arc<dyn Lease>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        let leading = lease.hold().await;
        if state.set_leader(leading) != leading {
            if leading {
                tracing::info!("took the jobs' lease: this replica runs the background jobs");
            } else {
                tracing::info!(
                    "not holding the jobs' lease: another replica runs the background jobs"
                );
            }
        }
    }
    state.set_leader(false);
    lease.release().await;
}
