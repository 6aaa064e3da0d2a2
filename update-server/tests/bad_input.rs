//! Bad input of every kind the issue names gets a clear 4xx with a JSON
//! error, and nothing is stored: oversized bodies, malformed JSON, unknown
//! channel, bad signature, replayed reports, unauthenticated or
//! under-privileged admin calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Answer, TestNode, TestServer, backends, start};
use moho_protocol::node::EventKind;
use moho_protocol::signing::sign_request;
use serde_json::json;

fn assert_error(a: &Answer, status: u16, code: &str, ctx: &str) {
    assert_eq!(a.status, status, "{ctx}: {:?}", a.body);
    assert_eq!(a.body["error"]["code"], code, "{ctx}: {:?}", a.body);
    assert!(
        !a.body["error"]["message"].as_str().unwrap().is_empty(),
        "{ctx}"
    );
}

async fn node_count(s: &TestServer) -> usize {
    s.admin("GET", "/nodes", None).await.body["items"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_check_ins_are_refused_and_store_nothing() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let mut n = TestNode::new("node-1");

        // Oversized body (limit 64 KiB).
        let big = vec![b' '; 70 * 1024];
        let h = n.signed("/v1/check-in", &big);
        assert_error(
            &s.post_raw("/v1/check-in", &h, big).await,
            413,
            "body_too_large",
            &backend,
        );

        // Malformed JSON.
        let body = b"{\"node_id\": ".to_vec();
        let h = n.signed("/v1/check-in", &body);
        let a = s.post_raw("/v1/check-in", &h, body).await;
        assert_error(&a, 400, "malformed_json", &backend);

        // Unknown channel.
        n.channel = "nightly".into();
        let a = n.check_in(&s).await;
        assert_error(&a, 422, "unknown_channel", &backend);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nightly")
        );
        n.channel = "stable".into();

        // Bad signature: signed by another key.
        let body = n.check_in_body();
        let other = TestNode::new("someone-else");
        let h = sign_request(&other.key, "POST", "/v1/check-in", "node-1", 99, &body)
            .headers()
            .to_vec();
        assert_error(
            &s.post_raw("/v1/check-in", &h, body.clone()).await,
            401,
            "bad_signature",
            &backend,
        );

        // No signature at all.
        assert_error(
            &s.post_raw("/v1/check-in", &[], body).await,
            401,
            "bad_signature",
            &backend,
        );

        assert_eq!(node_count(&s).await, 0, "{backend}: nothing stored");

        // A real node, then a replay of its exact request.
        let body = n.check_in_body();
        let h = n.signed("/v1/check-in", &body);
        assert_eq!(
            s.post_raw("/v1/check-in", &h, body.clone()).await.status,
            200
        );
        let before = s.admin("GET", "/nodes/node-1", None).await.body;
        s.clock.advance(jiff::SignedDuration::from_mins(5));
        assert_error(
            &s.post_raw("/v1/check-in", &h, body).await,
            409,
            "replayed_request",
            &backend,
        );
        assert_eq!(
            s.admin("GET", "/nodes/node-1", None).await.body,
            before,
            "{backend}: replay changed nothing"
        );

        // Another key claiming the registered id.
        let mut thief = TestNode::new("thief");
        thief.id = "node-1".into();
        assert_error(&thief.check_in(&s).await, 403, "key_mismatch", &backend);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_reports_are_refused_and_store_nothing() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        s.add_release("1.1.0", &["stable"]).await;
        let id = s
            .rollout("1.1.0", json!({"steps": [{"percent": 100}]}))
            .await;
        let mut n = TestNode::new("node-1");
        assert_eq!(n.check_in(&s).await.body["action"], "install");

        // A forged "healthy" report signed by another key.
        let body = n.report_body(
            vec![EventKind::Healthy {
                version: "1.1.0".into(),
            }],
            s.now(),
        );
        let forger = TestNode::new("forger");
        let h = sign_request(&forger.key, "POST", "/v1/events", "node-1", 1_000, &body)
            .headers()
            .to_vec();
        assert_error(
            &s.post_raw("/v1/events", &h, body).await,
            401,
            "bad_signature",
            &backend,
        );

        // A report from a node that never checked in.
        let mut stranger = TestNode::new("stranger");
        let a = stranger
            .report(
                &s,
                vec![EventKind::Healthy {
                    version: "1.1.0".into(),
                }],
            )
            .await;
        assert_error(&a, 401, "unknown_node", &backend);

        // A genuine report, then its replay.
        let body = n.report_body(
            vec![EventKind::Rollback {
                failed_version: "1.1.0".into(),
                booted_version: "1.0.0".into(),
                reason: None,
            }],
            s.now(),
        );
        let h = n.signed("/v1/events", &body);
        assert_eq!(s.post_raw("/v1/events", &h, body.clone()).await.status, 200);
        assert_error(
            &s.post_raw("/v1/events", &h, body).await,
            409,
            "replayed_request",
            &backend,
        );
        assert_eq!(
            s.db.event_count("node-1").await.unwrap(),
            1,
            "{backend}: only the genuine report stored"
        );
        assert_eq!(s.db.event_count("stranger").await.unwrap(), 0);

        // Unknown event type: malformed, nothing stored.
        let body =
            br#"{"node_id":"node-1","events":[{"at":"2026-03-02T10:00:00Z","type":"exploded"}]}"#
                .to_vec();
        let h = n.signed("/v1/events", &body);
        assert_error(
            &s.post_raw("/v1/events", &h, body).await,
            400,
            "malformed_json",
            &backend,
        );
        assert_eq!(s.db.event_count("node-1").await.unwrap(), 1);

        let r = s.admin("GET", &format!("/rollouts/{id}"), None).await;
        assert_eq!(
            (
                r.body["stats"]["healthy"].as_i64(),
                r.body["stats"]["failed"].as_i64()
            ),
            (Some(0), Some(1)),
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_need_a_token_and_changes_need_the_admin_role() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let audit_before = s.admin("GET", "/audit", None).await.body["items"]
            .as_array()
            .unwrap()
            .len();

        assert_error(
            &s.api("GET", "/nodes", None, None).await,
            401,
            "unauthenticated",
            &backend,
        );
        assert_error(
            &s.api("GET", "/nodes", Some("moho_guess"), None).await,
            401,
            "bad_token",
            &backend,
        );
        let a = s
            .api("POST", "/channels", None, Some(json!({"name": "edge"})))
            .await;
        assert_error(&a, 401, "unauthenticated", &backend);
        let viewer = s.viewer.clone();
        assert_eq!(
            s.api("GET", "/channels", Some(&viewer), None).await.status,
            200
        );
        let a = s
            .api(
                "POST",
                "/channels",
                Some(&viewer),
                Some(json!({"name": "edge"})),
            )
            .await;
        assert_error(&a, 403, "forbidden", &backend);
        let a = s
            .api(
                "PATCH",
                "/groups/default",
                Some(&viewer),
                Some(json!({"fleetlock_slots": 5})),
            )
            .await;
        assert_error(&a, 403, "forbidden", &backend);

        // Malformed and oversized admin bodies.
        let raw = s
            .http
            .post(format!("{}/api/v1/channels", s.base))
            .bearer_auth(&s.admin)
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status().as_u16(), 400);
        let big = json!({"name": "x".repeat(2 * 1024 * 1024)});
        assert_error(
            &s.admin("POST", "/channels", Some(big)).await,
            413,
            "body_too_large",
            &backend,
        );
        assert_error(
            &s.admin("POST", "/channels", Some(json!({"name": "Bad Name"})))
                .await,
            400,
            "invalid_name",
            &backend,
        );
        // Unknown rollout policy field.
        let a = s
            .admin("POST", "/rollouts", Some(json!({"version": "1.1.0", "board": "amd64-generic", "channel": "stable",
                                                  "group": "default", "policy": {"steps": [{"percent": 10}], "speed": 9}})))
            .await;
        assert_error(&a, 400, "malformed_json", &backend);
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("speed")
        );

        let channels = s.admin("GET", "/channels", None).await.body;
        assert_eq!(
            channels["items"].as_array().unwrap().len(),
            3,
            "{backend}: no channel was added"
        );
        let audit_after = s.admin("GET", "/audit", None).await.body["items"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(audit_before, audit_after, "{backend}: nothing audited");
        assert_error(
            &s.admin("GET", "/no/such/thing", None).await,
            404,
            "not_found",
            &backend,
        );
        assert_error(
            &s.admin("GET", "/rollouts/abc", None).await,
            400,
            "invalid_path",
            &backend,
        );
        assert_error(
            &s.admin("GET", "/nodes?limit=many", None).await,
            400,
            "invalid_query",
            &backend,
        );
        assert_error(
            &s.admin("PUT", "/channels", None).await,
            405,
            "method_not_allowed",
            &backend,
        );
    }
}

/// The check-in of `node` with `edit` applied to its JSON, signed.
async fn check_in_with(
    s: &TestServer,
    node: &mut TestNode,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Answer {
    let mut doc: serde_json::Value = serde_json::from_slice(&node.check_in_body()).unwrap();
    edit(&mut doc);
    let body = serde_json::to_vec(&doc).unwrap();
    let headers = node.signed("/v1/check-in", &body);
    s.post_raw("/v1/check-in", &headers, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_in_with_an_unbounded_version_or_board_is_refused_and_stores_nothing() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let huge_version = format!("1.0.0+{}", "9".repeat(60_000));
        type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(&str, &str, Edit)> = vec![
            (
                "booted.version",
                "invalid_version",
                Box::new(move |d| d["booted"]["version"] = json!(huge_version)),
            ),
            (
                "booted.version",
                "invalid_version",
                Box::new(|d| d["booted"]["version"] = json!("not-a-version")),
            ),
            (
                "fallback_version",
                "invalid_version",
                Box::new(|d| d["fallback_version"] = json!("1.0")),
            ),
            (
                "staged_version",
                "invalid_version",
                Box::new(|d| {
                    d["state"] = json!("staged");
                    d["staged_version"] = json!("x".repeat(200));
                }),
            ),
            (
                "board",
                "invalid_name",
                Box::new(|d| d["board"] = json!("b".repeat(1000))),
            ),
            (
                "board",
                "invalid_name",
                Box::new(|d| d["board"] = json!("amd64/../../etc")),
            ),
        ];
        for (i, (field, code, edit)) in cases.into_iter().enumerate() {
            let mut node = TestNode::new(&format!("bounded-{i}"));
            let a = check_in_with(&s, &mut node, edit).await;
            let ctx = format!("{backend}: case {i} ({field})");
            assert_error(&a, 400, code, &ctx);
            assert_eq!(a.body["error"]["field"], field, "{ctx}: {:?}", a.body);
            let message = a.body["error"]["message"].as_str().unwrap();
            assert!(message.len() < 400, "{ctx}: the message is bounded too");
        }
        assert_eq!(node_count(&s).await, 0, "{backend}: nothing stored");
        let metrics = s
            .http
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.len() < 20_000, "{backend}: /metrics did not grow");
        assert!(!metrics.contains("bbbbbbbbbb") && !metrics.contains("9999999999"));
        // The same nodes with sane values are welcome.
        let mut ok = TestNode::new("bounded-0");
        ok.version = "3815.2.0+build.7".to_owned();
        assert_eq!(ok.check_in(&s).await.status, 200, "{backend}");
        // A report naming a non-version is refused the same way.
        let body = ok.report_body(
            vec![EventKind::DownloadStarted {
                version: "v".repeat(300),
            }],
            s.now(),
        );
        let headers = ok.signed("/v1/events", &body);
        let a = s.post_raw("/v1/events", &headers, body).await;
        assert_error(&a, 400, "invalid_version", &backend);
        assert_eq!(a.body["error"]["field"], "events[].version");
    }
}
