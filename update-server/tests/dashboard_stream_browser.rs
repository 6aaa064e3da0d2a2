//! The fleet-wide live event stream and the top bar's group selector in
//! headless Chromium (issue 16 acceptance), on SQLite and PostgreSQL: a
//! node's report shows on top of the stream within seconds without a
//! reload; "Pause" holds new events back and "Resume" brings them; the
//! severity filter shows only failures; choosing a group scopes the
//! stream, the overview, the node table, the audit log (only entries that
//! concern the group) and the rollout pages (another group's rollout is not
//! shown, with a link to its group) to it. Screenshots under
//! `target/tmp/dashboard/<test>/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::Browser;
use common::fleet::simulated_fleet;
use common::{TestNode, TestServer, backends, start};
use fantoccini::Locator;
use moho_protocol::node::EventKind;

async fn log_in(b: &Browser, s: &TestServer, token: &str) {
    b.open(&format!("{}/ui/login", s.base)).await;
    b.wait_for("#token").await.send_keys(token).await.unwrap();
    b.click("button[type=submit]").await;
    b.wait_for("[data-channel]").await;
}

/// The `data-*` attribute `attr` of the stream's first row.
async fn top_row(b: &Browser, attr: &str) -> Option<String> {
    let rows = b
        .client
        .find_all(Locator::Css("#events tbody tr"))
        .await
        .unwrap();
    match rows.first() {
        Some(r) => r.attr(attr).await.ok().flatten(),
        None => None,
    }
}

/// Waits (at most 30 s) until the first row's `attr` is `value`.
async fn wait_top(b: &Browser, attr: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while top_row(b, attr).await.as_deref() != Some(value) {
        assert!(
            Instant::now() < deadline,
            "the stream's top row never got {attr}={value} (it has {:?})",
            top_row(b, attr).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn row_attrs(b: &Browser, css: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for r in b.client.find_all(Locator::Css(css)).await.unwrap() {
        out.push(r.attr(attr).await.unwrap().unwrap_or_default());
    }
    out
}

async fn choose_group(b: &Browser, group: &str) {
    let select = b.wait_for("select#scope").await;
    select.select_by_value(group).await.unwrap();
    // The script submits the form on change.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let scoped = b
            .client
            .find_all(Locator::Css("p.scoped"))
            .await
            .unwrap()
            .len();
        if (group.is_empty() && scoped == 0) || (!group.is_empty() && scoped == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "choosing group {group:?} did not reload the page"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_event_stream_and_the_group_selector() {
    let Some(b) = Browser::start("the_live_event_stream_and_the_group_selector").await else {
        return;
    };
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let fleet = simulated_fleet(&s).await;
        let shot = |name: &str| format!("{backend}-{name}");
        // A second group with three nodes.
        let a = s
            .admin("POST", "/groups", Some(serde_json::json!({"name": "db"})))
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        let mut db: Vec<TestNode> = (0..3)
            .map(|i| {
                let mut n = TestNode::new(&format!("db-{i}"));
                n.group = "db".into();
                n.hostname = Some(format!("db-{i}.example.org"));
                n
            })
            .collect();
        for n in &mut db {
            assert_eq!(n.check_in(&s).await.status, 200);
        }

        // A viewer watches the stream.
        log_in(&b, &s, &s.viewer).await;
        b.open(&format!("{}/ui/events", s.base)).await;
        b.wait_for("#events tbody tr").await;
        assert_eq!(b.text("#stream-toggle").await, "Pause");
        b.shot(&shot("01-events")).await;

        // A report arrives: on top within seconds, without a reload.
        b.client
            .execute("window.mohoMarker = 7;", vec![])
            .await
            .unwrap();
        let a = db[0]
            .report(
                &s,
                vec![EventKind::Error {
                    version: None,
                    code: "disk_full".into(),
                    message: "no space left on /var".into(),
                }],
            )
            .await;
        assert_eq!(a.status, 200);
        wait_top(&b, "data-node", "db-0").await;
        assert_eq!(top_row(&b, "data-severity").await.as_deref(), Some("error"));
        let marker = b
            .client
            .execute("return window.mohoMarker;", vec![])
            .await
            .unwrap();
        assert_eq!(marker, serde_json::json!(7), "the page was not reloaded");
        assert!(b.text("#events tbody tr").await.contains("no space left"));
        b.shot(&shot("02-event-arrived")).await;

        // Paused: a new event stays out; resumed: it comes in.
        b.press("#stream-toggle").await;
        assert_eq!(b.text("#stream-toggle").await, "Resume");
        let a = db[1]
            .report(
                &s,
                vec![EventKind::Installed {
                    version: "1.1.0".into(),
                }],
            )
            .await;
        assert_eq!(a.status, 200);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            top_row(&b, "data-node").await.as_deref(),
            Some("db-0"),
            "paused"
        );
        b.shot(&shot("03-paused")).await;
        b.press("#stream-toggle").await;
        wait_top(&b, "data-node", "db-1").await;
        assert_eq!(top_row(&b, "data-kind").await.as_deref(), Some("installed"));

        // The severity filter: failures only.
        b.wait_for("select[name=severity]")
            .await
            .select_by_value("error")
            .await
            .unwrap();
        b.click("form.filters button[type=submit]").await;
        b.wait_for("#events tbody tr").await;
        let sev = row_attrs(&b, "#events tbody tr", "data-severity").await;
        assert!(sev.len() >= 3, "{sev:?}");
        assert!(sev.iter().all(|s| s == "error"), "{sev:?}");
        b.shot(&shot("04-errors-only")).await;

        // The group selector scopes the stream, the overview and the nodes.
        b.open(&format!("{}/ui/events", s.base)).await;
        choose_group(&b, "db").await;
        assert_eq!(b.path().await, "/ui/events");
        let nodes = row_attrs(&b, "#events tbody tr", "data-node").await;
        assert!(!nodes.is_empty());
        assert!(nodes.iter().all(|n| n.starts_with("db-")), "{nodes:?}");
        b.shot(&shot("05-events-group-db")).await;
        b.open(&format!("{}/ui/", s.base)).await;
        assert_eq!(b.text("p.scoped strong").await, "db");
        assert_eq!(b.number("[data-figure=fleet-nodes]").await, 3);
        assert_eq!(
            b.number("[data-figure=open-rollouts]").await,
            0,
            "the rollout is for default"
        );
        b.shot(&shot("06-overview-group-db")).await;
        b.open(&format!("{}/ui/nodes", s.base)).await;
        let listed = row_attrs(&b, "table.nodes tbody tr", "data-node").await;
        assert_eq!(listed, ["db-0", "db-1", "db-2"]);
        b.shot(&shot("07-nodes-group-db")).await;
        // The audit log: the group's creation, not the rollout to default
        // nor the server-wide entries.
        b.open(&format!("{}/ui/audit", s.base)).await;
        let actions = row_attrs(&b, "table.audit tbody tr", "data-action").await;
        assert_eq!(actions, ["group.create"], "{backend}");
        let all = s.admin("GET", "/audit?limit=1000", None).await.body["items"]
            .as_array()
            .unwrap()
            .len();
        assert!(all > 1, "{all} audit entries in all");
        b.shot(&shot("08-audit-group-db")).await;
        // The rollout to default is not shown while db is chosen; its link
        // switches to default.
        b.open(&format!("{}/ui/rollouts/{}", s.base, fleet.rollout))
            .await;
        b.wait_for("p[data-out-of-scope=default]").await;
        assert!(
            b.client
                .find_all(Locator::Css("[data-figure=scope]"))
                .await
                .unwrap()
                .is_empty()
        );
        b.shot(&shot("09-rollout-other-group")).await;
        b.click("main a.button.primary").await;
        assert_eq!(b.path().await, format!("/ui/rollouts/{}", fleet.rollout));
        assert_eq!(b.text("p.scoped strong").await, "default");
        b.wait_for("[data-figure=scope]").await;
        b.open(&format!("{}/ui/audit", s.base)).await;
        let actions = row_attrs(&b, "table.audit tbody tr", "data-action").await;
        assert!(
            actions.contains(&"rollout.create".to_owned()),
            "{actions:?}"
        );
        assert!(!actions.contains(&"group.create".to_owned()), "{actions:?}");
        b.open(&format!("{}/ui/nodes", s.base)).await;
        // Back to every group.
        choose_group(&b, "").await;
        let listed = row_attrs(&b, "table.nodes tbody tr", "data-node").await;
        assert!(listed.len() > 3, "{listed:?}");
        b.open(&format!("{}/ui/", s.base)).await;
        assert_eq!(
            b.number("[data-figure=fleet-nodes]").await,
            (fleet.stable.len() + common::fleet::BETA_NODES + 3) as u64
        );
        b.click("form.logout button").await;
    }
    b.close().await;
}
