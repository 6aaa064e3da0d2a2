//! Enrolment: registration closed by default, per-group enrolment tokens
//! created, listed and revoked by admins (audited), a node's first
//! check-in with one landing in its group, and revoked, expired, used-up
//! or out-of-scope tokens refused at once with nothing stored — on SQLite
//! and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Answer, TestNode, TestServer, backends, start};
use jiff::SignedDuration;
use serde_json::json;

fn code(a: &Answer) -> Option<&str> {
    a.body["error"]["code"].as_str()
}

async fn create(s: &TestServer, body: serde_json::Value) -> (String, String) {
    let a = s.admin("POST", "/enrollment-tokens", Some(body)).await;
    assert_eq!(a.status, 201, "{}", a.body);
    (
        a.body["secret"].as_str().unwrap().to_owned(),
        a.body["token"]["id"].as_str().unwrap().to_owned(),
    )
}

async fn stored(s: &TestServer, id: &str) -> bool {
    s.admin("GET", &format!("/nodes/{id}"), None).await.status == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_registers_only_with_a_live_token_of_its_group() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| c.open_registration = false).await;
        let a = s
            .admin("POST", "/groups", Some(json!({"name": "web"})))
            .await;
        assert_eq!(a.status, 201, "{backend}: {}", a.body);

        // Closed by default: no token, no registration, nothing stored.
        let mut n = TestNode::new("web-1");
        n.group = "web".into();
        let a = n.check_in(&s).await;
        assert_eq!((a.status, code(&a)), (403, Some("enrollment_required")));
        assert!(!stored(&s, "web-1").await, "{backend}");

        let (secret, id) = create(
            &s,
            json!({"name": "web-nodes", "group": "web", "channel": "stable", "max_uses": 2}),
        )
        .await;
        // A token never seen, and one for another group, are refused.
        n.enrollment_token = Some("mohoenr_nope".into());
        let a = n.check_in(&s).await;
        assert_eq!((a.status, code(&a)), (403, Some("bad_enrollment_token")));
        let mut other = TestNode::new("db-1");
        other.enrollment_token = Some(secret.clone());
        let a = other.check_in(&s).await;
        assert_eq!(
            (a.status, code(&a)),
            (403, Some("enrollment_token_scope")),
            "{backend}: {}",
            a.body
        );
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("\"web\"")
        );
        assert!(!stored(&s, "db-1").await);

        // With it, the node lands in its group; later check-ins need none.
        n.enrollment_token = Some(secret.clone());
        assert_eq!(n.check_in(&s).await.status, 200, "{backend}");
        let node = s.admin("GET", "/nodes/web-1", None).await;
        assert_eq!(node.body["group"], "web", "{backend}: {}", node.body);
        n.enrollment_token = None;
        assert_eq!(n.check_in(&s).await.status, 200);

        // The second use, then the limit.
        let mut second = TestNode::new("web-2");
        second.group = "web".into();
        second.enrollment_token = Some(secret.clone());
        assert_eq!(second.check_in(&s).await.status, 200);
        let mut third = TestNode::new("web-3");
        third.group = "web".into();
        third.enrollment_token = Some(secret.clone());
        let a = third.check_in(&s).await;
        assert_eq!(
            (a.status, code(&a)),
            (403, Some("enrollment_token_used_up")),
            "{backend}"
        );
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("2 of 2")
        );
        assert!(!stored(&s, "web-3").await);

        // Listed with its uses, gone from the live list once used up.
        let all = s.admin("GET", "/enrollment-tokens?all=true", None).await;
        let t = &all.body["items"][0];
        assert_eq!(
            (t["id"].as_str(), t["uses"].as_u64()),
            (Some(id.as_str()), Some(2))
        );
        assert!(t.get("secret").is_none());
        let live = s.admin("GET", "/enrollment-tokens", None).await;
        assert_eq!(live.body["items"].as_array().unwrap().len(), 0);

        // Audited: creation by the admin token's name, each registration.
        let audit = s.admin("GET", "/audit?action=node.enroll", None).await;
        let subjects: Vec<&str> = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["subject"].as_str().unwrap())
            .collect();
        assert_eq!(subjects, ["node/web-2", "node/web-1"], "{backend}");
        let audit = s
            .admin("GET", "/audit?action=enrollment_token.create", None)
            .await;
        assert_eq!(audit.body["items"][0]["actor"], "alice");
        assert_eq!(
            audit.body["items"][0]["subject"],
            format!("enrollment_token/{id}")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_expired_tokens_are_refused_at_once() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| c.open_registration = false).await;
        let (secret, _) = create(&s, json!({"name": "default-nodes", "group": "default"})).await;
        let a = s
            .admin("DELETE", "/enrollment-tokens/default-nodes", None)
            .await;
        assert_eq!(a.status, 200, "{backend}: {}", a.body);
        let mut n = TestNode::new("n-1");
        n.enrollment_token = Some(secret.clone());
        let a = n.check_in(&s).await;
        assert_eq!(
            (a.status, code(&a)),
            (403, Some("enrollment_token_revoked")),
            "{backend}"
        );
        assert!(!stored(&s, "n-1").await);
        let again = s
            .admin("DELETE", "/enrollment-tokens/default-nodes", None)
            .await;
        assert_eq!(
            again.status, 404,
            "{backend}: a revoked name is no longer live"
        );

        let expires = s.now().checked_add(SignedDuration::from_hours(1)).unwrap();
        let (secret, _) = create(
            &s,
            json!({"name": "short", "group": "default", "expires_at": expires}),
        )
        .await;
        s.clock.advance(SignedDuration::from_hours(2));
        n.enrollment_token = Some(secret);
        let a = n.check_in(&s).await;
        assert_eq!(
            (a.status, code(&a)),
            (403, Some("enrollment_token_expired"))
        );
        assert!(!stored(&s, "n-1").await);

        // Bad requests: unknown group, zero uses; viewers may not manage.
        let a = s
            .admin(
                "POST",
                "/enrollment-tokens",
                Some(json!({"name": "x", "group": "nope"})),
            )
            .await;
        assert_eq!((a.status, code(&a)), (422, Some("unknown_group")));
        let a = s
            .admin(
                "POST",
                "/enrollment-tokens",
                Some(json!({"name": "x", "group": "default", "max_uses": 0})),
            )
            .await;
        assert_eq!((a.status, code(&a)), (400, Some("invalid_value")));
        let a = s
            .api("GET", "/enrollment-tokens", Some(&s.viewer.clone()), None)
            .await;
        assert_eq!(a.status, 403, "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_registration_admits_tokenless_nodes_but_checks_a_token_given() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let mut n = TestNode::new("free");
        assert_eq!(n.check_in(&s).await.status, 200, "{backend}");
        let mut m = TestNode::new("wrong");
        m.enrollment_token = Some("mohoenr_nope".into());
        let a = m.check_in(&s).await;
        assert_eq!((a.status, code(&a)), (403, Some("bad_enrollment_token")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_node_stays_in_its_group_unless_admitted_to_another() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| c.open_registration = false).await;
        for g in ["web", "db"] {
            let a = s.admin("POST", "/groups", Some(json!({"name": g}))).await;
            assert_eq!(a.status, 201, "{backend}: {}", a.body);
        }
        let (web_secret, _) = create(&s, json!({"name": "web-nodes", "group": "web"})).await;
        let mut n = TestNode::new("web-1");
        n.group = "web".into();
        n.enrollment_token = Some(web_secret.clone());
        assert_eq!(n.check_in(&s).await.status, 200, "{backend}");

        // Its own configuration naming another group (with the token it
        // has, or none) does not move it: refused, nothing stored.
        for token in [Some(web_secret.clone()), None] {
            n.group = "db".into();
            n.enrollment_token = token;
            let a = n.check_in(&s).await;
            assert_eq!(
                (a.status, code(&a)),
                (403, Some("enrolled_elsewhere")),
                "{backend}: {}",
                a.body
            );
            let msg = a.body["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains("\"web-1\"") && msg.contains("\"web\"") && msg.contains("\"db\""),
                "{msg}"
            );
            let node = s.admin("GET", "/nodes/web-1", None).await;
            assert_eq!(node.body["group"], "web", "{backend}: {}", node.body);
        }
        // Back in its group, it is served as before.
        n.group = "web".into();
        assert_eq!(n.check_in(&s).await.status, 200, "{backend}");

        // With a live token of the other group it moves, the use counted
        // and the move audited; then it is pinned there.
        let (db_secret, db_id) = create(
            &s,
            json!({"name": "db-nodes", "group": "db", "max_uses": 1}),
        )
        .await;
        n.group = "db".into();
        n.enrollment_token = Some(db_secret.clone());
        let a = n.check_in(&s).await;
        assert_eq!(a.status, 200, "{backend}: {}", a.body);
        let node = s.admin("GET", "/nodes/web-1", None).await;
        assert_eq!(node.body["group"], "db", "{backend}");
        // (Used up now: listed with all=true.)
        let tokens = s.admin("GET", "/enrollment-tokens?all=true", None).await;
        let t = tokens.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == db_id.as_str())
            .unwrap()
            .clone();
        assert_eq!(t["uses"], 1, "{backend}: {t}");
        let audit = s.admin("GET", "/audit", None).await;
        let moved = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "node.move")
            .unwrap_or_else(|| panic!("{backend}: no node.move in {}", audit.body))
            .clone();
        assert_eq!(moved["actor"], "enrollment:db-nodes", "{moved}");
        assert_eq!(moved["subject"], "node/web-1", "{moved}");
        // Later check-ins in db need no token; once web's token is
        // revoked, it does not take the node back.
        n.enrollment_token = None;
        assert_eq!(n.check_in(&s).await.status, 200, "{backend}");
        let a = s
            .admin("DELETE", "/enrollment-tokens/web-nodes", None)
            .await;
        assert_eq!(a.status, 200, "{backend}: {}", a.body);
        n.group = "web".into();
        n.enrollment_token = Some(web_secret.clone());
        let a = n.check_in(&s).await;
        assert_eq!((a.status, code(&a)), (403, Some("enrolled_elsewhere")));
        let node = s.admin("GET", "/nodes/web-1", None).await;
        assert_eq!(node.body["group"], "db", "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_registered_openly_moves_with_its_configuration() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| c.open_registration = true).await;
        let a = s
            .admin("POST", "/groups", Some(json!({"name": "db"})))
            .await;
        assert_eq!(a.status, 201, "{backend}: {}", a.body);
        let mut n = TestNode::new("free-1");
        assert_eq!(n.check_in(&s).await.status, 200);
        n.group = "db".into();
        assert_eq!(n.check_in(&s).await.status, 200, "{backend}");
        let node = s.admin("GET", "/nodes/free-1", None).await;
        assert_eq!(node.body["group"], "db", "{backend}");
    }
}
