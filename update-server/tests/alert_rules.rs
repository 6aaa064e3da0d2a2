//! The Prometheus alert rules shipped in `docs/monitoring/`: `promtool`
//! accepts them and their unit tests pass (each alert fires on the series
//! that should raise it, not before), and every series they use is one
//! the server's `/metrics` really exposes, so a renamed metric cannot leave
//! an alert that never fires.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::json;

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/monitoring")
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(monitoring())
        .output()
        .expect("promtool (Debian package prometheus, in scripts/packages/test.txt)");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules_and_their_tests_pass() {
    promtool(&["check", "rules", "moho-alerts.yml"]);
    promtool(&["test", "rules", "moho-alerts.test.yml"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_the_rules_use_is_in_the_servers_metrics() {
    let rules = std::fs::read_to_string(monitoring().join("moho-alerts.yml")).unwrap();
    let (_, url) = common::backends().await.remove(0);
    let s = common::start("sqlite", &url, |_| {}).await;
    let year = SystemTime::now() + Duration::from_secs(365 * 86_400);
    *s.state.repo_expiry.lock().unwrap() = Some(moho_release::Expiry {
        root: year,
        targets: year,
        snapshot: year,
        timestamp: year,
    });
    common::TestNode::new("m1").check_in(&s).await;
    s.add_release("1.1.0", &["stable"]).await;
    s.rollout("1.1.0", json!({"steps": [{"percent": 100}]}))
        .await;
    let metrics = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut used = Vec::new();
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("moho_") && !used.contains(&word) {
            used.push(word);
        }
    }
    assert!(used.len() >= 4, "{used:?}");
    for name in used {
        assert!(
            metrics.lines().any(|l| l.starts_with(name)),
            "the rules use {name}, which /metrics does not have:\n{metrics}"
        );
    }
    assert!(metrics.contains("value=\"auto_paused\""), "{metrics}");
}

/// The expiry alert compares with the margin the server really re-signs at:
/// half of a short `--timestamp-expiry` (the rules' unit tests show that a
/// 4 h timestamp re-signed on time raises nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resign_margin_in_metrics_follows_the_timestamp_expiry() {
    for (expiry, margin) in [(86_400, 43_200), (4 * 3600, 2 * 3600)] {
        let (_, url) = common::backends().await.remove(0);
        let s = common::start("sqlite", &url, |c| {
            c.timestamp_expiry = Duration::from_secs(expiry);
        })
        .await;
        let metrics = s
            .http
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let line = format!(
            "moho_repository_metadata_resign_margin_seconds{{role=\"timestamp\"}} {margin}"
        );
        assert!(
            metrics.lines().any(|l| l == line),
            "{line:?} not in /metrics for --timestamp-expiry {expiry}s:\n{metrics}"
        );
    }
}
