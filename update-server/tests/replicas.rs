//! Two replicas on one database and one shared repository directory serve
//! the same signed metadata: what one publishes (a re-signing here) the
//! other serves at once, without a sync of its own; the other does not
//! re-sign again; a publication that is not newer than the served one is
//! refused by the database and changes nothing; and an operator's sync on
//! a replica does not bring an older directory's metadata back. A replica
//! that does not run the jobs shows (in `/metrics` and the dashboard's
//! alert) the expiry of what the leader published, without a sync.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestServer, backends};

use moho_repo::keys::{generate_pem, write_new_key};
use moho_repo::{Expiries, KeyRing, RepoDir, Thresholds};
use update_server::jobs::leader::FakeLease;
use update_server::jobs::{Schedule, spawn};
use update_server::repository::sync::{refresh_if_due, sync};

/// A signed, empty repository whose timestamp expires in 11 hours (under
/// the re-signing margin).
fn make_repo(keys: &std::path::Path, repo: &std::path::Path) {
    std::fs::create_dir_all(keys).unwrap();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        write_new_key(
            &keys.join(format!("{role}-1.pem")),
            &generate_pem().unwrap(),
        )
        .unwrap();
    }
    let expiries = Expiries {
        timestamp: Duration::from_secs(11 * 3600),
        ..Expiries::default()
    };
    let now = std::time::SystemTime::now();
    let (publication, _) = moho_repo::init(
        &KeyRing::load(keys).unwrap(),
        Thresholds::default(),
        &expiries,
        now,
    )
    .unwrap();
    RepoDir::new(repo).initialize(&publication, now).unwrap();
}

/// The version of `file` as `s` serves it over HTTP.
async fn served_version(s: &TestServer, file: &str) -> u64 {
    let resp = s
        .http
        .get(format!("{}/repo/metadata/{file}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}: {file}", s.base);
    let doc: serde_json::Value = resp.json().await.unwrap();
    doc["signed"]["version"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_serve_the_same_metadata_and_never_an_older_one() {
    for (backend, url) in backends().await {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let repo = dir.path().join("repo");
        make_repo(&keys, &repo);
        let root = std::fs::read(repo.join("metadata/1.root.json")).unwrap();
        let config = |c: &mut update_server::config::ServerConfig| {
            c.repo_dir = repo.clone();
            c.trusted_root = Some(root.clone());
            c.online_keys = Some(keys.clone());
        };
        let a = common::start(&backend, &url, config).await;
        let b = common::start_replica(&a, config).await;
        let now = jiff::Timestamp::now();
        a.clock.set(now);
        b.clock.set(now);
        sync(&a.state).await.unwrap();
        sync(&b.state).await.unwrap();
        assert_eq!(served_version(&a, "timestamp.json").await, 1, "{backend}");
        assert_eq!(served_version(&b, "timestamp.json").await, 1, "{backend}");

        // A re-signs (as the leader would): B serves the new timestamp at
        // once, with no sync of its own.
        assert!(refresh_if_due(&a.state).await.unwrap(), "{backend}");
        assert_eq!(served_version(&a, "timestamp.json").await, 2, "{backend}");
        assert_eq!(served_version(&b, "timestamp.json").await, 2, "{backend}");
        assert_eq!(served_version(&b, "2.snapshot.json").await, 2, "{backend}");
        assert_eq!(served_version(&a, "2.snapshot.json").await, 2, "{backend}");
        // B finds the stored metadata fresh: no second re-signing.
        assert!(!refresh_if_due(&b.state).await.unwrap(), "{backend}");
        assert_eq!(served_version(&a, "timestamp.json").await, 2, "{backend}");

        // A publication that is not newer than the served one (a replica
        // that verified its upload before the re-signing was served) is
        // refused and changes nothing.
        let stale = vec![("timestamp.json".to_owned(), b"{}".to_vec())];
        let mut tx = a.db.begin().await.unwrap();
        let refused =
            a.db.publish_metadata(&mut tx, &stale, 2, 2, a.now())
                .await
                .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            refused.unwrap_err().served.timestamp_version,
            2,
            "{backend}"
        );
        assert_eq!(served_version(&b, "timestamp.json").await, 2, "{backend}");

        // An operator's sync on B keeps the stored metadata (the
        // directory's own files are older).
        let synced = b.admin("POST", "/releases/sync", None).await;
        assert_eq!(synced.status, 200, "{backend}: {:?}", synced.body);
        assert_eq!(served_version(&a, "timestamp.json").await, 2, "{backend}");
        assert_eq!(served_version(&b, "timestamp.json").await, 2, "{backend}");
        // A name that is not in the served generation is not found.
        let missing = b
            .http
            .get(format!("{}/repo/metadata/9.root.json", b.base))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404, "{backend}");
    }
}

/// The served timestamp's expiry in `s`'s `/metrics` (Unix seconds).
async fn timestamp_expiry_gauge(s: &TestServer) -> i64 {
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = "moho_repository_metadata_expiry_timestamp_seconds{role=\"timestamp\"} ";
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no timestamp expiry in {text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_shows_the_expiry_of_what_the_leader_published() {
    for (backend, url) in backends().await {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let repo = dir.path().join("repo");
        make_repo(&keys, &repo);
        let root = std::fs::read(repo.join("metadata/1.root.json")).unwrap();
        let config = |c: &mut update_server::config::ServerConfig| {
            c.repo_dir = repo.clone();
            c.trusted_root = Some(root.clone());
            c.online_keys = Some(keys.clone());
        };
        let a = common::start(&backend, &url, config).await;
        let b = common::start_replica(&a, config).await;
        let now = jiff::Timestamp::now();
        a.clock.set(now);
        b.clock.set(now);
        sync(&a.state).await.unwrap();
        sync(&b.state).await.unwrap();
        // B runs its jobs without the lease: it re-signs nothing itself.
        let long = Duration::from_secs(3600);
        let jobs = spawn(
            &b.state,
            Schedule {
                tick: long,
                refresh: Duration::from_millis(20),
                retention: long,
                lease: Duration::from_millis(20),
                follow: Duration::from_millis(20),
            },
            std::sync::Arc::new(FakeLease::new(false)),
        );
        // 11 hours left: B's overview warns.
        let mut dash = common::dash::Dash::new(&b);
        dash.login(&b.viewer).await;
        let page = dash.get("/ui/").await;
        assert!(
            page.html.contains("data-expiring=\"timestamp\""),
            "{backend}: {}",
            page.html
        );
        let before = timestamp_expiry_gauge(&b).await;
        assert_eq!(before, timestamp_expiry_gauge(&a).await, "{backend}");

        // A, the leader, re-signs: a day left.
        assert!(refresh_if_due(&a.state).await.unwrap(), "{backend}");
        let after = timestamp_expiry_gauge(&a).await;
        assert!(after > before + 12 * 3600, "{backend}: {before} -> {after}");
        // B follows the database: the same expiry in its /metrics, and no
        // alert on its dashboard.
        for _ in 0..3000 {
            if timestamp_expiry_gauge(&b).await == after {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(timestamp_expiry_gauge(&b).await, after, "{backend}");
        let page = dash.get("/ui/").await;
        assert!(
            !page.html.contains("data-expiring=\"timestamp\""),
            "{backend}: {}",
            page.html
        );
        // And B, not leading, did not re-sign on its own.
        assert_eq!(served_version(&b, "timestamp.json").await, 2, "{backend}");
        jobs.stop().await;
    }
}

/// A check-in (or report) that replica A accepted, replayed through
/// replica B on the same PostgreSQL, is refused (409) and changes nothing,
/// even though B remembers the node from an older check-in; the node's
/// next fresh check-in through B is accepted. (PostgreSQL only: SQLite is
/// one server's file.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_accepted_by_one_replica_and_replayed_through_another_is_refused() {
    for (backend, url) in backends().await {
        if backend != "postgres" {
            continue;
        }
        let a = common::start(&backend, &url, |_| {}).await;
        let b = common::start_replica(&a, |_| {}).await;
        let mut node = common::TestNode::new("replayed-node");
        // B registers the node and holds it in memory (counter 1).
        assert_eq!(node.check_in(&b).await.status, 200);
        // A report accepted by A (counter 2), captured and replayed to B.
        let report = node.report_body(vec![], a.now());
        let headers = node.signed("/v1/events", &report);
        let first = a.post_raw("/v1/events", &headers, report.clone()).await;
        assert_eq!(first.status, 200, "report through A: {first:?}");
        let replay = b.post_raw("/v1/events", &headers, report).await;
        assert_eq!(replay.status, 409, "replayed report through B: {replay:?}");
        assert_eq!(replay.body["error"]["code"], "replayed_request");
        // B holds the node again (counter 3); A accepts a check-in (4),
        // captured and replayed to B.
        assert_eq!(node.check_in(&b).await.status, 200);
        let body = node.check_in_body();
        let headers = node.signed("/v1/check-in", &body);
        let first = a.post_raw("/v1/check-in", &headers, body.clone()).await;
        assert_eq!(first.status, 200, "check-in through A: {first:?}");
        let replay = b.post_raw("/v1/check-in", &headers, body).await;
        assert_eq!(
            replay.status, 409,
            "replayed check-in through B: {replay:?}"
        );
        assert_eq!(replay.body["error"]["code"], "replayed_request");
        assert_eq!(
            a.db.node("replayed-node").await.unwrap().unwrap().counter,
            4
        );
        // The node itself goes on through either replica.
        assert_eq!(node.check_in(&b).await.status, 200);
        assert_eq!(node.check_in(&a).await.status, 200);
        assert_eq!(node.check_in(&b).await.status, 200);
        assert_eq!(
            b.db.node("replayed-node").await.unwrap().unwrap().counter,
            7
        );
    }
}
