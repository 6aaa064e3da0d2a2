//! Re-signing before expiry: with the online keys, the server re-signs the
//! snapshot and timestamp metadata of a repository made by `moho-repo`
//! when the timestamp has less than 12 hours left (and not before), and
//! serves the result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use jiff::SignedDuration;
use moho_repo::keys::{generate_pem, write_new_key};
use moho_repo::{Expiries, KeyRing, RepoDir, Thresholds};
use update_server::repository::sync::{refresh_if_due, sync};

/// A signed, empty repository with one key per role, whose timestamp
/// expires in 11 hours.
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
        // Less than the 12-hour margin: due at once.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_metadata_is_re_signed_before_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let repo = dir.path().join("repo");
    make_repo(&keys, &repo);
    let root = std::fs::read(repo.join("metadata/1.root.json")).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let (repo_dir, keys_dir) = (repo.clone(), keys.clone());
    let s = common::start("sqlite", &url, move |c| {
        c.repo_dir = repo_dir;
        c.trusted_root = Some(root);
        c.online_keys = Some(keys_dir);
    })
    .await;
    s.clock.set(jiff::Timestamp::now());
    sync(&s.state).await.unwrap();
    let ts = |s: &common::TestServer| {
        let root = update_server::repository::served_root(&s.state.config.repo_dir);
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(root.join("metadata/timestamp.json")).unwrap())
                .unwrap();
        doc["signed"]["version"].as_u64().unwrap()
    };
    assert_eq!(ts(&s), 1);

    // 11 hours left: under the 12-hour margin.
    assert!(
        refresh_if_due(&s.state).await.unwrap(),
        "an expiring timestamp is re-signed"
    );
    assert_eq!(ts(&s), 2);
    // Now a day left: nothing to do, also 10 hours later.
    assert!(
        !refresh_if_due(&s.state).await.unwrap(),
        "a fresh timestamp is not re-signed"
    );
    s.clock.advance(SignedDuration::from_hours(10));
    assert!(!refresh_if_due(&s.state).await.unwrap());
    assert_eq!(ts(&s), 2);
    // The re-signed repository is what nodes get, and it still verifies 10 hours on.
    let served = s
        .http
        .get(format!("{}/repo/metadata/timestamp.json", s.base))
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = served.json().await.unwrap();
    assert_eq!(doc["signed"]["version"], 2);
    sync(&s.state).await.unwrap();
    let audit = s.admin("GET", "/audit", None).await;
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "repository.refresh" && e["actor"] == "system")
    );
}

/// `/metrics` value of the expiry gauge for `role`.
fn expiry_gauge(metrics: &str, role: &str) -> Option<i64> {
    let key = format!("moho_repository_metadata_expiry_timestamp_seconds{{role=\"{role}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_online_keys_the_expiry_is_in_metrics_and_on_the_dashboard() {
    for (backend, url) in common::backends().await {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let repo = dir.path().join("repo");
        make_repo(&keys, &repo);
        let root = std::fs::read(repo.join("metadata/1.root.json")).unwrap();
        let repo_dir = repo.clone();
        let s = common::start(&backend, &url, move |c| {
            c.repo_dir = repo_dir;
            c.trusted_root = Some(root);
        })
        .await;
        s.clock.set(jiff::Timestamp::now());
        sync(&s.state).await.unwrap();
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(repo.join("metadata/timestamp.json")).unwrap())
                .unwrap();
        let signed: jiff::Timestamp = doc["signed"]["expires"].as_str().unwrap().parse().unwrap();
        let metrics = s
            .http
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            expiry_gauge(&metrics, "timestamp"),
            Some(signed.as_second()),
            "{backend}: {metrics}"
        );
        assert!(expiry_gauge(&metrics, "root").unwrap() > signed.as_second());

        // 11 hours left, nobody here re-signs: the overview says so.
        let mut dash = common::dash::Dash::new(&s);
        dash.login(&s.viewer).await;
        let page = dash.get("/ui/").await;
        assert_eq!(page.status, 200);
        assert!(
            page.html.contains("data-expiring=\"timestamp\""),
            "{backend}: {}",
            page.html
        );
        assert!(page.html.contains("nodes will refuse it then"));
        assert!(!page.html.contains("data-expiring=\"targets\""));
        // Past the expiry: a "bad" alert.
        s.clock.advance(SignedDuration::from_hours(12));
        // (The session ended meanwhile: log in again.)
        let mut dash = common::dash::Dash::new(&s);
        dash.login(&s.viewer).await;
        let page = dash.get("/ui/").await;
        assert!(page.html.contains("metadata expired at"), "{}", page.html);
        assert!(page.html.contains("data-alert=\"bad\""));
    }
}
