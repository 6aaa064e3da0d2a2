//! The node protocol end to end on loopback, on SQLite and PostgreSQL:
//! registration on first check-in, signed requests, answers that follow the
//! rollout, event reports that move the rollout's counters, revert, holds,
//! staged nodes that are never timed out and are told to cancel a withdrawn
//! release.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestNode, backends, start};
use jiff::SignedDuration;
use moho_protocol::node::{AgentState, EventKind};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_check_in_registers_and_nothing_to_do_is_a_wait_not_an_error() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let mut n = TestNode::new("node-1");
        let a = n.check_in(&s).await;
        assert_eq!(a.status, 200, "{backend}: {:?}", a.body);
        assert_eq!(a.body["action"], "wait");
        assert_eq!(a.body["code"], "no_rollout");
        assert_eq!(a.body["retry_after_secs"], 600);
        assert!(
            a.body["repository_url"]
                .as_str()
                .unwrap()
                .ends_with("/repo")
        );
        let node = s.admin("GET", "/nodes/node-1", None).await;
        assert_eq!(node.body["version"], "1.0.0", "{backend}");
        assert_eq!(node.body["channel"], "stable");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_is_offered_only_releases_signed_for_its_channel_and_reports_move_the_counters() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        s.add_release("1.1.0", &["stable", "beta"]).await;
        let id = s
            .rollout("1.1.0", json!({"steps": [{"percent": 100}]}))
            .await;

        let mut beta = TestNode::new("beta-node");
        beta.channel = "beta".into();
        let a = beta.check_in(&s).await;
        assert_eq!(
            a.body["action"], "wait",
            "{backend}: rollout is for stable only: {:?}",
            a.body
        );

        let mut n = TestNode::new("node-1");
        let a = n.check_in(&s).await;
        assert_eq!(a.body["action"], "install", "{backend}: {:?}", a.body);
        assert_eq!(a.body["target"], "amd64-generic/1.1.0/image.raw");
        assert_eq!(a.body["version"], "1.1.0");
        // Asking again while updating repeats the answer without a new attempt.
        assert_eq!(n.check_in(&s).await.body["action"], "install");
        let r = s.admin("GET", &format!("/rollouts/{id}"), None).await;
        assert_eq!(
            (
                r.body["stats"]["offered"].as_i64(),
                r.body["stats"]["in_flight"].as_i64()
            ),
            (Some(1), Some(1))
        );

        let rep = n
            .report(
                &s,
                vec![
                    EventKind::DownloadStarted {
                        version: "1.1.0".into(),
                    },
                    EventKind::Installed {
                        version: "1.1.0".into(),
                    },
                    EventKind::Healthy {
                        version: "1.1.0".into(),
                    },
                ],
            )
            .await;
        assert_eq!(rep.status, 200, "{backend}: {:?}", rep.body);
        assert_eq!(s.db.event_count("node-1").await.unwrap(), 3);
        let r = s.admin("GET", &format!("/rollouts/{id}"), None).await;
        assert_eq!(
            (
                r.body["stats"]["healthy"].as_i64(),
                r.body["stats"]["in_flight"].as_i64()
            ),
            (Some(1), Some(0))
        );

        n.version = "1.1.0".into();
        let a = n.check_in(&s).await;
        assert_eq!(a.body["action"], "wait", "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_absent_from_the_signed_repository_is_never_offered() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        s.add_release("1.1.0", &["stable"]).await;
        s.rollout("1.1.0", json!({"steps": [{"percent": 100}]}))
            .await;
        // The repository no longer lists 1.1.0.
        s.db.sync_releases(&[]).await.unwrap();
        let mut n = TestNode::new("node-1");
        let a = n.check_in(&s).await;
        assert_eq!(a.body["action"], "wait", "{backend}: {:?}", a.body);
        let create = s
            .admin("POST", "/rollouts", Some(json!({"version": "1.1.0", "board": "amd64-generic", "channel": "stable",
                                                   "group": "default", "policy": {"steps": [{"percent": 100}]}})))
            .await;
        assert_eq!(create.status, 422, "{backend}");
        assert_eq!(create.body["error"]["code"], "unknown_release");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_pause_the_rollout_and_revert_sends_nodes_back() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        s.add_release("1.1.0", &["stable"]).await;
        let id = s
            .rollout("1.1.0", json!({"steps": [{"percent": 100}], "auto_pause": {"max_failure_percent": 20, "min_sample": 4}}))
            .await;
        let mut nodes: Vec<TestNode> = (0..6).map(|i| TestNode::new(&format!("n{i}"))).collect();
        for n in &mut nodes {
            assert_eq!(n.check_in(&s).await.body["action"], "install", "{backend}");
        }
        // Two healthy, two roll back: 50 % failures over a sample of 4.
        for n in &mut nodes[..2] {
            n.report(
                &s,
                vec![EventKind::Healthy {
                    version: "1.1.0".into(),
                }],
            )
            .await;
            n.version = "1.1.0".into();
        }
        for n in &mut nodes[2..4] {
            let r = n
                .report(
                    &s,
                    vec![EventKind::Rollback {
                        failed_version: "1.1.0".into(),
                        booted_version: "1.0.0".into(),
                        reason: None,
                    }],
                )
                .await;
            assert_eq!(r.status, 200);
        }
        let r = s.admin("GET", &format!("/rollouts/{id}"), None).await;
        assert_eq!(
            r.body["state"]["status"], "active",
            "{backend}: reports and reads do not move a rollout, the ticker does"
        );
        assert_eq!(s.tick().await, 1, "{backend}");
        let r = s.admin("GET", &format!("/rollouts/{id}"), None).await;
        assert_eq!(
            r.body["state"]["status"], "paused",
            "{backend}: {:?}",
            r.body
        );
        assert_eq!(r.body["state"]["reason"]["by"], "failure_rate");
        let mut late = TestNode::new("late");
        assert_eq!(late.check_in(&s).await.body["code"], "paused", "{backend}");

        let rev = s
            .admin(
                "POST",
                &format!("/rollouts/{id}/actions"),
                Some(json!({"action": "revert"})),
            )
            .await;
        assert_eq!(rev.status, 200, "{backend}: {:?}", rev.body);
        for n in &mut nodes[..2] {
            let a = n.check_in(&s).await;
            assert_eq!(a.body["action"], "revert", "{backend}: {:?}", a.body);
            assert_eq!(a.body["from_version"], "1.1.0");
            n.version = "1.0.0".into();
            assert_eq!(
                n.check_in(&s).await.body["action"],
                "wait",
                "{backend}: back on 1.0.0, nothing to do"
            );
        }
        let audit = s.admin("GET", "/audit", None).await;
        let actions: Vec<&str> = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"rollout.auto_pause") && actions.contains(&"rollout.revert"),
            "{backend}: {actions:?}"
        );
        let revert = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "rollout.revert")
            .unwrap();
        assert_eq!(revert["actor"], "alice");
        assert_eq!(revert["before"]["status"], "paused");
        assert_eq!(revert["after"]["status"], "reverted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staged_node_is_not_failed_by_the_timeout_keeps_its_place_and_cancels_an_aborted_release()
{
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        s.add_release("1.1.0", &["stable"]).await;
        let id = s
            .rollout(
                "1.1.0",
                json!({"steps": [{"percent": 100}], "max_in_flight": 1, "update_timeout": "2h",
                       "auto_pause": {"max_failure_percent": 10, "min_sample": 1}}),
            )
            .await;
        let mut staged = TestNode::new("staged-node");
        assert_eq!(staged.check_in(&s).await.body["action"], "install");
        let rep = staged
            .report(
                &s,
                vec![
                    EventKind::DownloadStarted {
                        version: "1.1.0".into(),
                    },
                    EventKind::Installed {
                        version: "1.1.0".into(),
                    },
                ],
            )
            .await;
        assert_eq!(rep.status, 200, "{backend}: {:?}", rep.body);
        staged.state = AgentState::Staged;
        staged.staged_version = Some("1.1.0".into());

        // Its window is days away: a week later it is still in flight, not
        // failed, the rollout is not paused, and it holds its cap place.
        s.clock.advance(SignedDuration::from_hours(7 * 24));
        let a = staged.check_in(&s).await;
        assert_eq!(a.body["action"], "install", "{backend}: {:?}", a.body);
        let r = s.admin("GET", &format!("/rollouts/{id}"), None).await;
        assert_eq!(
            (
                r.body["stats"]["in_flight"].as_i64(),
                r.body["stats"]["failed"].as_i64(),
                r.body["state"]["status"].as_str()
            ),
            (Some(1), Some(0), Some("active")),
            "{backend}: {:?}",
            r.body
        );
        let mut other = TestNode::new("other-node");
        assert_eq!(
            other.check_in(&s).await.body["code"],
            "capacity",
            "{backend}: the staged node counts against max_in_flight"
        );

        let abort = s
            .admin(
                "POST",
                &format!("/rollouts/{id}/actions"),
                Some(json!({"action": "abort"})),
            )
            .await;
        assert_eq!(abort.status, 200, "{backend}: {:?}", abort.body);
        let a = staged.check_in(&s).await;
        assert_eq!(a.body["action"], "cancel", "{backend}: {:?}", a.body);
        assert_eq!(a.body["version"], "1.1.0");
        assert!(
            a.body["reason"].as_str().unwrap().contains("aborted"),
            "{backend}: {:?}",
            a.body
        );
        let rep = staged
            .report(
                &s,
                vec![EventKind::Cancelled {
                    version: "1.1.0".into(),
                    reason: "the rollout of 1.1.0 was aborted".into(),
                }],
            )
            .await;
        assert_eq!(rep.status, 200, "{backend}: {:?}", rep.body);
        staged.state = AgentState::Idle;
        staged.staged_version = None;
        let a = staged.check_in(&s).await;
        assert_eq!(a.body["action"], "wait", "{backend}: {:?}", a.body);
        let r = s.admin("GET", &format!("/rollouts/{id}"), None).await;
        assert_eq!(
            (
                r.body["stats"]["in_flight"].as_i64(),
                r.body["stats"]["failed"].as_i64()
            ),
            (Some(0), Some(0)),
            "{backend}: a cancel is not a failure: {:?}",
            r.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_finishes_its_download_is_failed_by_the_timeout_and_a_held_one_cancels() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        s.add_release("1.1.0", &["stable"]).await;
        let id = s
            .rollout(
                "1.1.0",
                json!({"steps": [{"percent": 100}], "update_timeout": "1d"}),
            )
            .await;
        let mut slow = TestNode::new("slow-node");
        assert_eq!(slow.check_in(&s).await.body["action"], "install");
        slow.report(
            &s,
            vec![EventKind::DownloadStarted {
                version: "1.1.0".into(),
            }],
        )
        .await;
        let mut held = TestNode::new("held-node");
        assert_eq!(held.check_in(&s).await.body["action"], "install");
        held.report(
            &s,
            vec![EventKind::Installed {
                version: "1.1.0".into(),
            }],
        )
        .await;
        held.state = AgentState::Staged;
        held.staged_version = Some("1.1.0".into());
        s.clock.advance(SignedDuration::from_hours(25));
        let r = s.admin("GET", &format!("/rollouts/{id}"), None).await;
        assert_eq!(
            (
                r.body["stats"]["in_flight"].as_i64(),
                r.body["stats"]["failed"].as_i64()
            ),
            (Some(1), Some(1)),
            "{backend}: the download timed out after 1d, the staged node did not: {:?}",
            r.body
        );
        assert_eq!(slow.check_in(&s).await.body["code"], "attempt_failed");

        let until = s.now().checked_add(SignedDuration::from_hours(48)).unwrap();
        let h = s
            .admin(
                "POST",
                "/holds",
                Some(json!({"target": {"kind": "node", "name": "held-node"}, "type": "hold", "until": until})),
            )
            .await;
        assert_eq!(h.status, 201, "{backend}: {:?}", h.body);
        let a = held.check_in(&s).await;
        assert_eq!(a.body["action"], "cancel", "{backend}: {:?}", a.body);
        assert!(
            a.body["reason"].as_str().unwrap().contains("held"),
            "{backend}: {:?}",
            a.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_caps_and_holds_are_applied_per_node() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let mut nodes: Vec<TestNode> = (0..20)
            .map(|i| TestNode::new(&format!("n{i:02}")))
            .collect();
        for n in &mut nodes {
            n.check_in(&s).await;
        }
        s.add_release("1.1.0", &["stable"]).await;
        s.rollout(
            "1.1.0",
            json!({"steps": [{"percent": 25, "hold": "1h"}, {"percent": 100}], "max_in_flight": 3}),
        )
        .await;
        let mut offered = 0;
        let mut capped = 0;
        for n in &mut nodes {
            let a = n.check_in(&s).await;
            match a.body["action"].as_str().unwrap() {
                "install" => offered += 1,
                _ if a.body["code"] == "capacity" => capped += 1,
                _ => assert_eq!(a.body["code"], "not_yet_in_line", "{backend}: {:?}", a.body),
            }
        }
        // 25 % of 20 nodes is 5 in line, but at most 3 at once.
        assert_eq!((offered, capped), (3, 2), "{backend}");

        // A hold on the group stops offers until it expires.
        let until = s.now().checked_add(SignedDuration::from_hours(2)).unwrap();
        let hold = s.admin("POST", "/holds", Some(json!({"target": {"kind": "group", "name": "default"}, "type": "hold", "until": until}))).await;
        assert_eq!(hold.status, 201, "{backend}: {:?}", hold.body);
        for n in &mut nodes {
            let a = n.check_in(&s).await;
            assert!(
                a.body["action"] == "install" || a.body["code"] == "held",
                "{backend}: {:?}",
                a.body
            );
        }
        s.clock.advance(SignedDuration::from_hours(3));
        let a = nodes[19].check_in(&s).await;
        assert_ne!(a.body["code"], "held", "{backend}: the hold expired");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_token_gates_the_first_check_in_only() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| {
            c.open_registration = false;
            c.enrollment_token = Some("join-me".into())
        })
        .await;
        let mut n = TestNode::new("node-1");
        let a = n.check_in(&s).await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (403, Some("enrollment_required")),
            "{backend}"
        );
        assert_eq!(
            s.admin("GET", "/nodes/node-1", None).await.status,
            404,
            "{backend}: nothing stored"
        );
        n.enrollment_token = Some("join-me".into());
        assert_eq!(n.check_in(&s).await.status, 200);
        n.enrollment_token = None;
        assert_eq!(
            n.check_in(&s).await.status,
            200,
            "{backend}: later check-ins need no token"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_filtered_pruned_when_stale_and_may_re_register_after_deletion() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let mut old = TestNode::new("old");
        old.check_in(&s).await;
        s.clock.advance(SignedDuration::from_hours(24 * 40));
        let mut fresh = TestNode::new("fresh");
        fresh.version = "1.1.0".into();
        fresh.check_in(&s).await;

        let ids = |a: &common::Answer| -> Vec<String> {
            a.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            ids(&s.admin("GET", "/nodes?version=1.1.0", None).await),
            vec!["fresh"],
            "{backend}"
        );
        let stale = s
            .admin("GET", &format!("/nodes?stale_secs={}", 30 * 86_400), None)
            .await;
        assert_eq!(ids(&stale), vec!["old"], "{backend}");

        let pruned = s
            .admin(
                "POST",
                "/nodes/prune",
                Some(json!({"stale_secs": 30 * 86_400})),
            )
            .await;
        assert_eq!(pruned.body["removed"], 1, "{backend}");
        assert_eq!(ids(&s.admin("GET", "/nodes", None).await), vec!["fresh"]);

        // A node that lost its key is deleted by an operator and registers anew.
        let mut rekeyed = TestNode::new("other-seed");
        rekeyed.id = "fresh".into();
        assert_eq!(rekeyed.check_in(&s).await.status, 403, "{backend}");
        assert_eq!(s.admin("DELETE", "/nodes/fresh", None).await.status, 204);
        assert_eq!(rekeyed.check_in(&s).await.status, 200, "{backend}");
        let audit = s.admin("GET", "/audit", None).await;
        let actions: Vec<&str> = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"node.delete") && actions.contains(&"nodes.prune"),
            "{backend}: {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_forgets_nodes_not_seen_for_the_configured_time() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| {
            c.node_retention = Some(SignedDuration::from_hours(24 * 30))
        })
        .await;
        TestNode::new("gone").check_in(&s).await;
        s.clock.advance(SignedDuration::from_hours(24 * 20));
        TestNode::new("here").check_in(&s).await;
        assert_eq!(
            update_server::jobs::retention::prune_stale(&s.state)
                .await
                .unwrap(),
            0,
            "{backend}: nobody is 30 days stale yet"
        );
        s.clock.advance(SignedDuration::from_hours(24 * 11));
        assert_eq!(
            update_server::jobs::retention::prune_stale(&s.state)
                .await
                .unwrap(),
            1,
            "{backend}"
        );
        assert_eq!(s.admin("GET", "/nodes/gone", None).await.status, 404);
        assert_eq!(s.admin("GET", "/nodes/here", None).await.status, 200);
        let audit = s.admin("GET", "/audit", None).await;
        assert_eq!(
            audit.body["items"][0]["action"], "nodes.retention",
            "{backend}"
        );
        assert_eq!(audit.body["items"][0]["actor"], "system");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_check_ins_are_all_recorded_and_a_concurrent_replay_is_refused() {
    for (backend, url) in backends().await {
        let s = std::sync::Arc::new(start(&backend, &url, |_| {}).await);
        let mut nodes: Vec<TestNode> = (0..40)
            .map(|i| TestNode::new(&format!("c{i:02}")))
            .collect();
        for n in &mut nodes {
            assert_eq!(n.check_in(&s).await.status, 200);
        }
        // Everybody at once (batched into few statements), one request twice.
        let mut tasks = Vec::new();
        for n in &mut nodes {
            n.version = "1.0.1".into();
            let body = n.check_in_body();
            let headers = n.signed("/v1/check-in", &body);
            let copies = if n.id == "c07" { 2 } else { 1 };
            for _ in 0..copies {
                let (s, body, headers) = (s.clone(), body.clone(), headers.clone());
                tasks.push(tokio::spawn(async move {
                    s.post_raw("/v1/check-in", &headers, body).await.status
                }));
            }
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            40,
            "{backend}: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 409).count(),
            1,
            "{backend}: the replayed copy"
        );
        let listed = s.admin("GET", "/nodes?version=1.0.1", None).await;
        assert_eq!(
            listed.body["items"].as_array().unwrap().len(),
            40,
            "{backend}"
        );
    }
}

/// One batch mixes nodes whose facts are unchanged (the short UPDATE) with
/// nodes that changed version or host name (the full one): every node's
/// last-seen time moves on, every change is recorded, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_records_changed_and_unchanged_check_ins_alike() {
    for (backend, url) in backends().await {
        let s = std::sync::Arc::new(start(&backend, &url, |_| {}).await);
        let mut nodes: Vec<TestNode> = (0..30)
            .map(|i| TestNode::new(&format!("m{i:02}")))
            .collect();
        for n in &mut nodes {
            n.hostname = Some(format!("host-{}", n.id));
            assert_eq!(n.check_in(&s).await.status, 200);
        }
        let before = s.now();
        s.clock.advance(SignedDuration::from_secs(60));
        let mut tasks = Vec::new();
        for (i, n) in nodes.iter_mut().enumerate() {
            match i % 3 {
                0 => n.version = "1.0.1".into(),
                1 => n.hostname = Some(format!("renamed-{}", n.id)),
                _ => {}
            }
            let body = n.check_in_body();
            let headers = n.signed("/v1/check-in", &body);
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.post_raw("/v1/check-in", &headers, body).await.status
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200, "{backend}");
        }
        for (i, n) in nodes.iter().enumerate() {
            let got = s.admin("GET", &format!("/nodes/{}", n.id), None).await;
            assert_eq!(got.status, 200, "{backend}");
            let (version, host) = match i % 3 {
                0 => ("1.0.1".to_owned(), format!("host-{}", n.id)),
                1 => ("1.0.0".to_owned(), format!("renamed-{}", n.id)),
                _ => ("1.0.0".to_owned(), format!("host-{}", n.id)),
            };
            assert_eq!(got.body["version"], version.as_str(), "{backend} {}", n.id);
            assert_eq!(got.body["hostname"], host.as_str(), "{backend} {}", n.id);
            let seen: jiff::Timestamp = got.body["last_seen"].as_str().unwrap().parse().unwrap();
            assert!(seen > before, "{backend} {}: last seen {seen}", n.id);
        }
        // The same signed request again changes nothing, whichever statement.
        let mut n = TestNode::new("m02");
        n.hostname = Some("host-m02".into());
        n.counter = nodes[2].counter - 1;
        assert_eq!(n.check_in(&s).await.status, 409, "{backend}");
    }
}

async fn node_events(s: &common::TestServer, id: &str) -> usize {
    s.admin("GET", &format!("/nodes/{id}/events"), None)
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_forgets_old_events_and_audit_entries_and_audits_that() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| {
            c.event_retention = Some(SignedDuration::from_hours(24 * 30));
            c.audit_retention = Some(SignedDuration::from_hours(24 * 60));
        })
        .await;
        let mut n = TestNode::new("chatty");
        n.check_in(&s).await;
        let old = EventKind::DownloadStarted {
            version: "1.1.0".into(),
        };
        assert_eq!(n.report(&s, vec![old]).await.status, 200);
        s.admin("POST", "/channels", Some(json!({"name": "edge"})))
            .await;
        assert_eq!(node_events(&s, "chatty").await, 1);
        s.clock.advance(SignedDuration::from_hours(24 * 31));
        let new = EventKind::DownloadStarted {
            version: "1.2.0".into(),
        };
        assert_eq!(n.report(&s, vec![new]).await.status, 200);
        let pruned = update_server::jobs::retention::prune_all(&s.state)
            .await
            .unwrap();
        assert_eq!((pruned.events, pruned.audit), (1, 0), "{backend}");
        assert_eq!(
            node_events(&s, "chatty").await,
            1,
            "{backend}: the newer event stays"
        );
        let audit = s.admin("GET", "/audit", None).await.body;
        assert_eq!(audit["items"][0]["action"], "events.retention", "{backend}");
        assert_eq!(audit["items"][0]["actor"], "system");
        let total = audit["items"].as_array().unwrap().len();

        // Past the audit horizon of the first entries.
        s.clock.advance(SignedDuration::from_hours(24 * 30));
        let pruned = update_server::jobs::retention::prune_all(&s.state)
            .await
            .unwrap();
        assert!(pruned.audit >= 1, "{backend}: {pruned:?}");
        let audit = s.admin("GET", "/audit", None).await.body;
        let items = audit["items"].as_array().unwrap();
        assert_eq!(items[0]["action"], "audit.retention", "{backend}");
        assert_eq!(items[0]["after"]["removed"], pruned.audit);
        // What is left: the entries of the last 60 days (the events pruning
        // 30 days ago and the audit pruning now).
        assert!(
            items.iter().all(|e| e["action"] != "channel.create"),
            "{backend}: {items:?}"
        );
        assert_eq!(
            items.len() as u64,
            total as u64 + 1 - pruned.audit,
            "{backend}"
        );
        // A second pass finds nothing and writes nothing.
        let again = update_server::jobs::retention::prune_all(&s.state)
            .await
            .unwrap();
        assert_eq!(again, update_server::jobs::retention::Pruned::default());
    }
}
