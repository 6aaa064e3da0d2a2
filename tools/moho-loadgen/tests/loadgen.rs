//! The load generator works end to end (its figures are a benchmark, not
//! asserted): seeded nodes check in with valid signatures and rising
//! counters, the rollout fixture offers the release to at most its 10 %, and no
//! request fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use moho_loadgen::drive::{DriveConfig, drive};
use moho_loadgen::fleet::{add_rollout, seed};
use moho_protocol::admin::Role;
use update_server::clock::{Clock, SystemClock};
use update_server::config::ServerConfig;
use update_server::http::auth::create_token;
use update_server::serve::serve;
use update_server::state::AppState;
use update_server::store::Db;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_fleet_checks_in_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let db = Db::connect(&url).await.unwrap();
    let now = SystemClock.now();
    let mut config = ServerConfig::new(dir.path().join("repo"));
    // Counters read fresh, so the figure below is exact.
    config.stats_ttl = SignedDuration::ZERO;
    let state = AppState::new(db.clone(), Arc::new(SystemClock), config);
    let viewer = create_token(&db, "bench", Role::Viewer, now)
        .await
        .unwrap()
        .secret;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = axum_server::Handle::new();
    tokio::spawn(serve(listener, state, None, handle.clone()));

    let mut seen = Vec::new();
    seed(&db, 300, "stable", "default", "1.0.0", now, |n| {
        seen.push(n)
    })
    .await
    .unwrap();
    assert_eq!(seen.last(), Some(&300));
    add_rollout(&db, "stable", "default", 10.0, now)
        .await
        .unwrap();
    let cfg = DriveConfig {
        server: base.clone(),
        nodes: 300,
        concurrency: 4,
        duration: Duration::from_millis(1500),
        report_every: 5,
        channel: "stable".into(),
        group: "default".into(),
        baseline: false,
        ca_pem: None,
    };
    let report = drive(cfg).await.unwrap();
    assert_eq!(report.errors, 0, "{report}");
    assert!(report.check_ins > 0 && report.reports > 0, "{report}");
    let r: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/rollouts"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    handle.shutdown();
    let offered = r["items"][0]["stats"]["offered"].as_u64().unwrap();
    assert!(
        offered > 0 && offered <= 30,
        "10 % of 300 nodes may be offered the release, {offered} were"
    );
}
