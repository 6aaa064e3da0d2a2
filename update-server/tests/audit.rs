//! Every operator change is stored together with its audit entry or not at
//! all: with the database refusing audit entries (a trigger standing in for
//! a full disk or a broken audit table), deleting a node, pruning nodes,
//! freeing a FleetLock slot or pausing a rollout fails and changes nothing;
//! once entries are accepted again, the same calls succeed and are audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestNode, backends, start};
use jiff::SignedDuration;
use serde_json::json;

/// Makes every insert into `audit` fail (or work again).
async fn refuse_audit(backend: &str, url: &str, refuse: bool) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let statements: &[&str] = match (backend, refuse) {
        ("sqlite", true) => &[
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
        ],
        ("sqlite", false) => &["DROP TRIGGER refuse_audit"],
        (_, true) => &[
            "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        ],
        (_, false) => &[
            "DROP TRIGGER refuse_audit ON audit",
            "DROP FUNCTION refuse_audit()",
        ],
    };
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_audit_entry_cannot_be_written_is_not_stored() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let mut stale = TestNode::new("stale");
        stale.check_in(&s).await;
        s.clock.advance(SignedDuration::from_hours(24 * 40));
        let mut node = TestNode::new("node-1");
        node.check_in(&s).await;
        let mut holder = TestNode::new("stock-client");
        holder.check_in(&s).await;
        let taken = holder.fleetlock(&s, "/v1/pre-reboot").await;
        assert_eq!(taken.status, 200, "{backend}: {:?}", taken.body);
        s.add_release("1.1.0", &["stable"]).await;
        let rollout = s
            .rollout("1.1.0", json!({"steps": [{"percent": 100}]}))
            .await;
        let audited_before = s.admin("GET", "/audit", None).await.body["items"]
            .as_array()
            .unwrap()
            .len();

        refuse_audit(&backend, &url, true).await;
        let prune = json!({"stale_secs": 30 * 86_400});
        let pause = json!({"action": "pause"});
        let calls = [
            ("DELETE", "/nodes/node-1".to_owned(), None),
            ("POST", "/nodes/prune".to_owned(), Some(prune.clone())),
            ("DELETE", "/fleetlock/default/stock-client".to_owned(), None),
            (
                "POST",
                format!("/rollouts/{rollout}/actions"),
                Some(pause.clone()),
            ),
        ];
        for (method, path, body) in &calls {
            let a = s.admin(method, path, body.clone()).await;
            assert_eq!(a.status, 500, "{backend}: {method} {path}: {:?}", a.body);
        }
        // Nothing of it happened.
        assert_eq!(s.admin("GET", "/nodes/node-1", None).await.status, 200);
        assert_eq!(
            s.admin("GET", "/nodes/stale", None).await.status,
            200,
            "{backend}: prune kept the stale node"
        );
        let locks = s.admin("GET", "/fleetlock/default", None).await;
        assert_eq!(
            locks.body["holders"][0]["node_id"], "stock-client",
            "{backend}"
        );
        let r = s.admin("GET", &format!("/rollouts/{rollout}"), None).await;
        assert_eq!(r.body["state"]["status"], "active", "{backend}");

        refuse_audit(&backend, &url, false).await;
        for (method, path, body) in &calls {
            let a = s.admin(method, path, body.clone()).await;
            assert!(
                a.status == 200 || a.status == 204,
                "{backend}: {method} {path}: {:?}",
                a.body
            );
        }
        assert_eq!(s.admin("GET", "/nodes/node-1", None).await.status, 404);
        assert_eq!(s.admin("GET", "/nodes/stale", None).await.status, 404);
        let audit = s.admin("GET", "/audit", None).await;
        let items = audit.body["items"].as_array().unwrap();
        let actions: Vec<&str> = items[..items.len() - audited_before]
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "rollout.pause",
                "fleetlock.release",
                "nodes.prune",
                "node.delete"
            ],
            "{backend}"
        );
        assert_eq!(items[3]["before"]["id"], "node-1", "{backend}");
        assert_eq!(items[2]["after"]["removed"], 1, "{backend}");
    }
}
