//! The background jobs run only on the replica that holds the lease: with a
//! fake lease, a job does nothing until the lease is handed over, and stops
//! again when it is taken back; on PostgreSQL, the advisory-lock lease is
//! held by one replica at a time and passes to another when the holder's
//! connection dies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{TestNode, backends, start};
use jiff::SignedDuration;
use update_server::jobs::leader::{FakeLease, Lease, PgAdvisoryLease};
use update_server::jobs::{Schedule, spawn};

/// Polls `cond` every 20 ms for up to 60 s (a wait, not a timing assert).
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    for _ in 0..3000 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gave up waiting: {what}");
}

async fn node_count(s: &common::TestServer) -> usize {
    let a = s.admin("GET", "/nodes", None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_wait_for_the_lease_and_stop_when_it_is_taken_back() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| {
            c.node_retention = Some(SignedDuration::from_hours(24))
        })
        .await;
        TestNode::new("stale-1").check_in(&s).await;
        s.clock.advance(SignedDuration::from_hours(48));
        assert_eq!(node_count(&s).await, 1);

        let lease = Arc::new(FakeLease::new(false));
        let schedule = Schedule {
            tick: Duration::from_millis(20),
            refresh: Duration::from_millis(20),
            retention: Duration::from_millis(20),
            lease: Duration::from_millis(20),
            follow: Duration::from_millis(20),
        };
        let jobs = spawn(&s.state, schedule, lease.clone());
        // The lease was asked several times, and retention passes came due
        // as often: none ran, the stale node is still known.
        eventually("the lease asked 10 times", async || {
            lease.holds.load(Ordering::SeqCst) >= 10
        })
        .await;
        assert!(!s.state.is_leader(), "{backend}");
        assert_eq!(
            node_count(&s).await,
            1,
            "{backend}: retention ran without the lease"
        );

        // Handed over: the next retention pass forgets the stale node.
        lease.leading.store(true, Ordering::SeqCst);
        eventually("retention on the leader", async || {
            node_count(&s).await == 0
        })
        .await;
        assert!(s.state.is_leader(), "{backend}");

        // Taken back: a new stale node stays.
        lease.leading.store(false, Ordering::SeqCst);
        eventually("leadership lost", async || !s.state.is_leader()).await;
        let before = lease.holds.load(Ordering::SeqCst);
        TestNode::new("stale-2").check_in(&s).await;
        s.clock.advance(SignedDuration::from_hours(48));
        eventually("the lease asked 10 more times", async || {
            lease.holds.load(Ordering::SeqCst) >= before + 10
        })
        .await;
        assert_eq!(
            node_count(&s).await,
            1,
            "{backend}: retention ran after the lease was lost"
        );

        // A clean stop gives the lease up.
        jobs.stop().await;
        assert!(lease.released.load(Ordering::SeqCst), "{backend}");
        assert!(!s.state.is_leader(), "{backend}");

        let metrics = s
            .http
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .unwrap();
        let text = metrics.text().await.unwrap();
        assert!(text.contains("moho_jobs_leader 0"), "{backend}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_lease_has_one_holder_and_passes_on_when_its_connection_dies() {
    for (backend, url) in backends().await {
        if backend != "postgres" {
            continue;
        }
        // Connecting creates the schema; the leases need only the database.
        let _s = start(&backend, &url, |_| {}).await;
        let timeout = Duration::from_secs(10);
        let a = PgAdvisoryLease::new(&url, timeout);
        let b = PgAdvisoryLease::new(&url, timeout);
        assert!(a.hold().await, "the first replica takes the free lease");
        assert!(!b.hold().await, "a second replica cannot take a held lease");
        assert!(a.hold().await, "the holder keeps it");
        assert!(!b.hold().await);

        // The holder's session dies (as with a killed process): PostgreSQL
        // frees its lock, the standby takes it at its next check, and the
        // old holder notices that it no longer leads.
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&url).await.unwrap();
        let (killed,): (i64,) = sqlx::query_as(
            "SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objid = hashtext($1)::oid",
        )
        .bind(update_server::jobs::leader::LEASE_NAME)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert_eq!(killed, 1, "exactly one session held the lease");
        eventually("the standby takes over", async || b.hold().await).await;
        assert!(
            !a.hold().await,
            "the old holder lost its connection and the lease"
        );
        assert!(
            !a.hold().await,
            "and cannot take it back while the new holder lives"
        );

        // A clean release hands it back at once.
        b.release().await;
        assert!(a.hold().await, "released lease is free again");
        a.release().await;
        admin.close().await;
    }
}
