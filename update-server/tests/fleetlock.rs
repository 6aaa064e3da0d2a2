//! FleetLock reboot coordination (issue 5 acceptance): two nodes of a group
//! with one slot — the second waits until the first releases or its lease
//! expires; slots change at runtime; the admin view shows who holds them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Answer, TestNode, TestServer, backends, start};
use jiff::SignedDuration;
use moho_protocol::signing::sign_request;
use serde_json::json;

async fn lock(s: &TestServer, path: &str, id: &str, group: &str) -> Answer {
    let body = serde_json::to_vec(&json!({"client_params": {"id": id, "group": group}})).unwrap();
    s.post_raw(path, &[("fleet-lock-protocol", "true".into())], body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_node_waits_for_release_or_lease_expiry() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        s.admin(
            "POST",
            "/groups",
            Some(json!({"name": "db", "fleetlock_slots": 1, "fleetlock_lease_secs": 600})),
        )
        .await;
        let node = |id: &str| {
            let mut n = TestNode::new(id);
            n.group = "db".into();
            n
        };
        let (mut a, mut b, mut c, mut d) = (node("a"), node("b"), node("c"), node("d"));
        for n in [&mut a, &mut b, &mut c, &mut d] {
            assert_eq!(n.check_in(&s).await.status, 200, "{backend}");
        }

        assert_eq!(
            a.fleetlock(&s, "/v1/pre-reboot").await.status,
            200,
            "{backend}"
        );
        let got = b.fleetlock(&s, "/v1/pre-reboot").await;
        assert_eq!(got.status, 409, "{backend}: {:?}", got.body);
        assert_eq!(got.body["kind"], "failed_lock");
        // Asking again renews a held lease.
        assert_eq!(a.fleetlock(&s, "/v1/pre-reboot").await.status, 200);
        let view = s.admin("GET", "/fleetlock/db", None).await;
        assert_eq!(
            view.body["holders"][0]["node_id"], "a",
            "{backend}: {:?}",
            view.body
        );

        // a releases: b gets the slot.
        assert_eq!(a.fleetlock(&s, "/v1/steady-state").await.status, 200);
        assert_eq!(
            b.fleetlock(&s, "/v1/pre-reboot").await.status,
            200,
            "{backend}"
        );
        assert_eq!(a.fleetlock(&s, "/v1/pre-reboot").await.status, 409);

        // b never releases: after its 600 s lease a can go.
        s.clock.advance(SignedDuration::from_secs(599));
        assert_eq!(
            a.fleetlock(&s, "/v1/pre-reboot").await.status,
            409,
            "{backend}: lease still valid"
        );
        s.clock.advance(SignedDuration::from_secs(2));
        assert_eq!(
            a.fleetlock(&s, "/v1/pre-reboot").await.status,
            200,
            "{backend}: lease expired"
        );

        // Two slots at runtime: c joins a.
        let p = s
            .admin("PATCH", "/groups/db", Some(json!({"fleetlock_slots": 2})))
            .await;
        assert_eq!(p.body["fleetlock_slots"], 2, "{backend}");
        assert_eq!(
            c.fleetlock(&s, "/v1/pre-reboot").await.status,
            200,
            "{backend}"
        );
        assert_eq!(d.fleetlock(&s, "/v1/pre-reboot").await.status, 409);
        let holders = s.admin("GET", "/fleetlock/db", None).await.body["holders"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(holders, 2);
        // An admin frees a slot by hand.
        assert_eq!(s.admin("DELETE", "/fleetlock/db/a", None).await.status, 204);
        assert_eq!(d.fleetlock(&s, "/v1/pre-reboot").await.status, 200);
        let audit = s.admin("GET", "/audit", None).await;
        let update = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "group.update")
            .unwrap();
        assert_eq!(
            (
                update["before"]["fleetlock_slots"].as_i64(),
                update["after"]["fleetlock_slots"].as_i64()
            ),
            (Some(1), Some(2))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_are_refused() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let body =
            serde_json::to_vec(&json!({"client_params": {"id": "a", "group": "default"}})).unwrap();
        let a = s.post_raw("/v1/pre-reboot", &[], body).await;
        assert_eq!(
            (a.status, a.body["kind"].as_str()),
            (400, Some("missing_header")),
            "{backend}"
        );
        let a = s
            .post_raw(
                "/v1/pre-reboot",
                &[("fleet-lock-protocol", "true".into())],
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(a.status, 400, "{backend}");
        assert!(
            s.admin("GET", "/fleetlock/default", None).await.body["holders"]
                .as_array()
                .unwrap()
                .is_empty()
        );

        // Made-up ids take no slot, and nothing is stored for them.
        for path in ["/v1/pre-reboot", "/v1/steady-state"] {
            let a = lock(&s, path, "made-up", "default").await;
            assert_eq!(
                (a.status, a.body["kind"].as_str()),
                (403, Some("unknown_node")),
                "{backend}: {path}"
            );
        }
        assert!(
            s.admin("GET", "/fleetlock/default", None).await.body["holders"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.admin("GET", "/nodes/made-up", None).await.status, 404);

        // A registered Moho node must sign its FleetLock requests.
        let mut n = TestNode::new("moho-node");
        n.check_in(&s).await;
        assert_eq!(
            lock(&s, "/v1/pre-reboot", "moho-node", "default")
                .await
                .status,
            401,
            "{backend}"
        );
        let body =
            serde_json::to_vec(&json!({"client_params": {"id": "moho-node", "group": "default"}}))
                .unwrap();
        n.counter += 1;
        let mut h = sign_request(
            &n.key,
            "POST",
            "/v1/pre-reboot",
            "moho-node",
            n.counter,
            &body,
        )
        .headers()
        .to_vec();
        h.push(("fleet-lock-protocol", "true".into()));
        assert_eq!(
            s.post_raw("/v1/pre-reboot", &h, body.clone()).await.status,
            200,
            "{backend}"
        );
        assert_eq!(
            s.post_raw("/v1/pre-reboot", &h, body).await.status,
            409,
            "{backend}: replay"
        );
        // Signed, but for a group it is not registered in.
        s.admin("POST", "/groups", Some(json!({"name": "db"})))
            .await;
        n.group = "db".into();
        let a = n.fleetlock(&s, "/v1/pre-reboot").await;
        assert_eq!(
            (a.status, a.body["kind"].as_str()),
            (403, Some("wrong_group")),
            "{backend}"
        );
        assert!(
            s.admin("GET", "/fleetlock/db", None).await.body["holders"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    }
}
