//! Backup and restore (issue 16): a backup taken while the server runs, put
//! in place in a new database, gives a server with the same nodes, rollouts
//! and audit log, whose rollout goes on where it was. SQLite through
//! `update-server backup` / `restore`; PostgreSQL through the `pg_dump`
//! command `update-server backup` prints, and `pg_restore`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{TestNode, TestServer, backends, start};
use jiff::SignedDuration;
use serde_json::{Value, json};

fn server_bin(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_update-server"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "update-server {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn sh(line: &str) {
    let out = Command::new("sh").args(["-c", line]).output().unwrap();
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn view(s: &TestServer) -> (Value, Value, Value) {
    (
        s.admin("GET", "/nodes", None).await.body,
        s.admin("GET", "/rollouts", None).await.body,
        s.admin("GET", "/audit", None).await.body,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_has_the_same_fleet_and_the_rollout_goes_on() {
    let targets = backends().await;
    for ((backend, url), (_, new_url)) in backends().await.into_iter().zip(targets) {
        let tmp = tempfile::tempdir().unwrap();
        let s = start(&backend, &url, |_| {}).await;
        let mut nodes: Vec<TestNode> = (0..8).map(|i| TestNode::new(&format!("b{i}"))).collect();
        for n in &mut nodes {
            assert_eq!(n.check_in(&s).await.status, 200);
        }
        s.add_release("1.1.0", &["stable"]).await;
        s.rollout(
            "1.1.0",
            json!({"steps": [{"percent": 25, "hold": "1h"}, {"percent": 100}]}),
        )
        .await;
        let mut offered = Vec::new();
        for n in &mut nodes {
            if n.check_in(&s).await.body["action"] == "install" {
                offered.push(n.id.clone());
            }
        }
        assert_eq!(offered.len(), 2, "{backend}: 25 % of 8");
        let before = view(&s).await;

        // Backed up while the server runs.
        let file = tmp.path().join("moho.backup");
        let file_s = file.display().to_string();
        let out = server_bin(&[
            "backup",
            "--data-dir",
            "/nonexistent",
            "--database",
            &url,
            "--out",
            &file_s,
        ]);
        match backend.as_str() {
            "sqlite" => {
                assert!(out.contains("8 node(s), 1 rollout(s)"), "{out}");
                let new_file = new_url
                    .strip_prefix("sqlite://")
                    .unwrap()
                    .split('?')
                    .next()
                    .unwrap();
                let new_dir = std::path::Path::new(new_file).parent().unwrap();
                let out = server_bin(&[
                    "restore",
                    "--data-dir",
                    new_dir.to_str().unwrap(),
                    "--from",
                    &file_s,
                ]);
                assert!(out.contains("restored"), "{out}");
                // Restoring over a database is refused.
                let again = Command::new(env!("CARGO_BIN_EXE_update-server"))
                    .args([
                        "restore",
                        "--data-dir",
                        new_dir.to_str().unwrap(),
                        "--from",
                        &file_s,
                    ])
                    .output()
                    .unwrap();
                assert!(!again.status.success());
                assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
            }
            _ => {
                let dump = out
                    .lines()
                    .find(|l| l.starts_with("pg_dump "))
                    .unwrap_or_else(|| panic!("no pg_dump command in {out}"));
                sh(dump);
                assert!(
                    out.contains("pg_restore --no-owner --exit-on-error"),
                    "{out}"
                );
                sh(&format!(
                    "pg_restore --no-owner --exit-on-error --dbname='{new_url}' '{file_s}'"
                ));
            }
        }
        // The new server, at the same moment.
        let r =
            common::start_existing(&backend, &new_url, (s.admin.clone(), s.viewer.clone())).await;
        r.clock.set(s.now());
        drop(s);
        let after = view(&r).await;
        assert_eq!(after.0, before.0, "{backend}: nodes");
        assert_eq!(after.1, before.1, "{backend}: rollouts");
        assert_eq!(after.2, before.2, "{backend}: audit");
        assert!(!after.2["items"].as_array().unwrap().is_empty());

        // The rollout goes on: the nodes offered before are still in
        // flight, and after the hold the ramp reaches everyone else.
        for n in nodes.iter_mut().filter(|n| offered.contains(&n.id)) {
            assert_eq!(n.check_in(&r).await.body["action"], "install", "{backend}");
        }
        r.clock.advance(SignedDuration::from_hours(2));
        assert_eq!(r.tick().await, 1, "{backend}: the ramp steps on");
        let mut now_offered = 0;
        for n in nodes.iter_mut().filter(|n| !offered.contains(&n.id)) {
            if n.check_in(&r).await.body["action"] == "install" {
                now_offered += 1;
            }
        }
        assert_eq!(now_offered, 6, "{backend}");
    }
}
