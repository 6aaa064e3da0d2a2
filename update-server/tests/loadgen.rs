//! The load generator works end to end (its figures are a benchmark, not
//! asserted): seeded nodes check in with valid signatures and rising
//! counters, the rollout fixture offers the release to at most its 10 %, and no
//! request fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::start;
use update_server::loadgen::drive::{DriveConfig, drive};
use update_server::loadgen::fleet::{add_rollout, seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_fleet_checks_in_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let s = start("sqlite", &url, |_| {}).await;
    let mut seen = Vec::new();
    seed(&s.db, 300, "stable", "default", "1.0.0", s.now(), |n| {
        seen.push(n)
    })
    .await
    .unwrap();
    assert_eq!(seen.last(), Some(&300));
    add_rollout(&s.db, "stable", "default", 10.0, s.now())
        .await
        .unwrap();
    let cfg = DriveConfig {
        server: s.base.clone(),
        nodes: 300,
        concurrency: 4,
        duration: Duration::from_millis(1500),
        report_every: 5,
        channel: "stable".into(),
        group: "default".into(),
        baseline: false,
    };
    let report = drive(cfg).await;
    assert_eq!(report.errors, 0, "{report}");
    assert!(report.check_ins > 0 && report.reports > 0, "{report}");
    let r = s.admin("GET", "/rollouts", None).await;
    let offered = r.body["items"][0]["stats"]["offered"].as_u64().unwrap();
    assert!(
        offered > 0 && offered <= 30,
        "10 % of 300 nodes may be offered the release, {offered} were"
    );
}
