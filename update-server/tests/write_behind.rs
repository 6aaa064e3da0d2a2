//! What a crash may lose and what it must not (ARCHITECTURE.md, "Hot node
//! state and write-behind"), on the real `update-server` binary, SIGKILLed
//! right after its last answer, on SQLite and PostgreSQL: every report it
//! answered is stored with the attempt phase it reached, every attempt an
//! install offer started is stored, every change of a node's facts is
//! stored, a replay of a stored request is refused after the restart, and
//! the nodes go on checking in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestNode, backends};
use moho_protocol::node::EventKind;
use update_server::store::{AttemptStatus, Db, Phase, RolloutRecord, SyncedRelease};

/// Release 1.1.0 for stable and a rollout of it to every node, written
/// straight into the database (no signed repository: the server syncs none
/// without a trusted root).
async fn release_and_rollout(db: &Db) -> i64 {
    let now = jiff::Timestamp::now();
    db.sync_releases(&[SyncedRelease {
        version: "1.1.0".into(),
        board: "amd64-generic".into(),
        target: "amd64-generic/1.1.0/image.raw".into(),
        channels: vec!["stable".into()],
        min_version: None,
        size: Some(1 << 20),
    }])
    .await
    .unwrap();
    let record = RolloutRecord {
        id: 0,
        version: "1.1.0".into(),
        board: "amd64-generic".into(),
        channel: "stable".into(),
        group: "default".into(),
        policy: serde_json::from_value(serde_json::json!({"steps": [{"percent": 100}]})).unwrap(),
        state: moho_rollout::RolloutState::new(now),
        revision: 0,
        created_at: now,
    };
    let mut tx = db.begin().await.unwrap();
    let id = db.insert_rollout(&mut tx, &record).await.unwrap();
    tx.commit().await.unwrap();
    id
}

/// `update-server serve` on `url`, answering on the returned base URL.
fn serve(url: &str, data: &std::path::Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_update-server"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--open-registration")
        .env("MOHO_DATABASE_URL", url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

async fn wait_healthy(http: &reqwest::Client, base: &str, server: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            server.try_wait().unwrap().is_none(),
            "update-server exited before answering"
        );
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "update-server never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A signed request: status and JSON body.
async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut req = http
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

async fn check_in(
    http: &reqwest::Client,
    base: &str,
    n: &mut TestNode,
) -> (u16, serde_json::Value) {
    let body = n.check_in_body();
    let h = n.signed("/v1/check-in", &body);
    post(http, base, "/v1/check-in", &h, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_loses_no_report_attempt_or_fact_change_that_was_answered() {
    for (backend, url) in backends().await {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::connect(&url).await.unwrap();
        let rollout = release_and_rollout(&db).await;
        let http = reqwest::Client::new();
        let (mut server, base) = serve(&url, tmp.path());
        wait_healthy(&http, &base, &mut server).await;

        // A node is offered the release (an attempt starts), reports its
        // download, and checks in again and again with the same facts:
        // those check-ins are accepted from memory and written behind.
        let mut a = TestNode::new("crash-a");
        let (status, answer) = check_in(&http, &base, &mut a).await;
        assert_eq!(
            (status, answer["action"].as_str()),
            (200, Some("install")),
            "{backend}: {answer}"
        );
        let body = a.report_body(
            vec![EventKind::DownloadStarted {
                version: "1.1.0".into(),
            }],
            jiff::Timestamp::now(),
        );
        let report_headers = a.signed("/v1/events", &body);
        let (status, answer) =
            post(&http, &base, "/v1/events", &report_headers, body.clone()).await;
        assert_eq!(status, 200, "{backend}: {answer}");
        let report_counter = a.counter;
        for _ in 0..20 {
            let (status, answer) = check_in(&http, &base, &mut a).await;
            assert_eq!(
                (status, answer["action"].as_str()),
                (200, Some("install")),
                "{backend}: {answer}"
            );
        }
        // Another node boots a new version: a change of its facts.
        let mut b = TestNode::new("crash-b");
        assert_eq!(check_in(&http, &base, &mut b).await.0, 200);
        b.version = "1.1.0".into();
        let (status, answer) = check_in(&http, &base, &mut b).await;
        assert_eq!(status, 200, "{backend}: {answer}");

        // Power cut right after the last answer.
        server.kill().unwrap();
        server.wait().unwrap();

        let attempt = db.attempt(rollout, "crash-a").await.unwrap();
        let attempt = attempt.expect("the attempt the install offer started is stored");
        assert_eq!(attempt.status, AttemptStatus::InFlight, "{backend}");
        assert_eq!(
            attempt.phase,
            Phase::Downloading,
            "{backend}: the report's phase is stored"
        );
        assert_eq!(db.event_count("crash-a").await.unwrap(), 1, "{backend}");
        let stored_a = db.node("crash-a").await.unwrap().unwrap();
        assert!(
            stored_a.counter >= report_counter,
            "{backend}: the report's counter is stored ({} < {report_counter})",
            stored_a.counter
        );
        let stored_b = db.node("crash-b").await.unwrap().unwrap();
        assert_eq!(
            stored_b.version, "1.1.0",
            "{backend}: the new version is stored"
        );

        // After the restart: the stored report cannot be replayed, and both
        // nodes go on checking in (their counters keep rising).
        let (mut server, base) = serve(&url, tmp.path());
        wait_healthy(&http, &base, &mut server).await;
        let (status, answer) = post(&http, &base, "/v1/events", &report_headers, body).await;
        assert_eq!(
            status, 409,
            "{backend}: the report replayed after the crash: {answer}"
        );
        assert_eq!(
            answer["error"]["code"], "replayed_request",
            "{backend}: {answer}"
        );
        let (status, answer) = check_in(&http, &base, &mut a).await;
        assert_eq!(
            (status, answer["action"].as_str()),
            (200, Some("install")),
            "{backend}: {answer}"
        );
        let (status, answer) = check_in(&http, &base, &mut b).await;
        assert_eq!(
            (status, answer["action"].as_str()),
            (200, Some("wait")),
            "{backend}: {answer}"
        );
        assert_eq!(
            db.event_count("crash-a").await.unwrap(),
            1,
            "{backend}: no event twice"
        );
        server.kill().unwrap();
        server.wait().unwrap();
        db.close().await;
    }
}
