//! The dashboard in headless Chromium (issue 7 acceptance), against a real
//! server on loopback with a simulated fleet, on SQLite and PostgreSQL:
//! log in, the overview's numbers are the API's, live figures refresh
//! without a reload, pausing a rollout with a click shows in the API and the
//! audit log, a viewer cannot pause (no button, and a forged post is
//! refused), and a node that reported the name `<script>alert(1)</script>`
//! shows it as text. Every page is saved as a screenshot under
//! `target/tmp/dashboard/<test>/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

mod browser;
mod common;

use browser::Browser;
use common::fleet::{HOSTILE_NAME, simulated_fleet};
use common::{TestServer, backends, start};
use fantoccini::Locator;
use moho_protocol::node::EventKind;

async fn log_in(b: &Browser, s: &TestServer, token: &str) {
    b.open(&format!("{}/ui/", s.base)).await;
    assert_eq!(
        b.path().await,
        "/ui/login",
        "a logged-out visit lands on the login page"
    );
    b.wait_for("#token").await.send_keys(token).await.unwrap();
    b.click("button[type=submit]").await;
    b.wait_for("[data-channel]").await;
}

async fn log_out(b: &Browser) {
    b.click("form.logout button").await;
    b.wait_for("#token").await;
}

async fn api_rollout(s: &TestServer, id: i64) -> serde_json::Value {
    s.admin("GET", &format!("/rollouts/{id}"), None).await.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_and_steer_the_fleet_in_a_browser() {
    let Some(b) = Browser::start("operators_see_and_steer_the_fleet_in_a_browser").await else {
        return;
    };
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let mut fleet = simulated_fleet(&s).await;
        let id = fleet.rollout;
        let shot = |name: &str| format!("{backend}-{name}");

        b.open(&format!("{}/ui/", s.base)).await;
        b.shot(&shot("01-login")).await;
        log_in(&b, &s, &s.admin).await;
        assert_eq!(b.text("span.role").await, "admin");
        b.shot(&shot("02-overview")).await;

        // The overview shows the API's numbers.
        let api = api_rollout(&s, id).await;
        let block = format!("[data-rollout=\"{id}\"] .figures");
        for key in ["offered", "in_flight", "healthy", "failed"] {
            assert_eq!(
                b.number(&format!("{block} [data-figure={key}]")).await,
                api["stats"][key].as_u64().unwrap(),
                "{backend}: overview {key}"
            );
        }
        let scope = api["stats"]["scope_size"].as_u64().unwrap();
        let pct = api["current_percent"].as_f64().unwrap();
        assert_eq!(
            b.number(&format!("{block} [data-figure=target]")).await,
            (pct * scope as f64 / 100.0).ceil() as u64
        );
        let nodes = s
            .admin("GET", "/nodes?channel=stable&limit=1000", None)
            .await;
        assert_eq!(
            b.number("[data-channel=stable] .figures [data-figure=nodes]")
                .await,
            nodes.body["items"].as_array().unwrap().len() as u64
        );
        // The version chart says what it shows in text too.
        assert!(
            b.text("[data-channel=stable] [data-key=\"version-1.0.0\"]")
                .await
                .contains("1.0.0")
        );

        // Live: a node turns healthy; the figure follows without a reload.
        b.client
            .execute("window.mohoMarker = 42;", vec![])
            .await
            .unwrap();
        let before = b.number(&format!("{block} [data-figure=healthy]")).await;
        let mut turned = false;
        for n in fleet.stable.iter_mut() {
            let a = s.state.db.attempt(id, &n.id).await.unwrap();
            if a.is_some_and(|a| a.status == update_server::store::AttemptStatus::InFlight) {
                let r = n
                    .report(
                        &s,
                        vec![EventKind::Healthy {
                            version: "1.1.0".into(),
                        }],
                    )
                    .await;
                assert_eq!(r.status, 200);
                turned = true;
                break;
            }
        }
        assert!(turned, "no node in flight to turn healthy");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let now = b.number(&format!("{block} [data-figure=healthy]")).await;
            if now == before + 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{backend}: healthy stayed {now}, never refreshed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        let marker = b
            .client
            .execute("return window.mohoMarker;", vec![])
            .await
            .unwrap();
        assert_eq!(
            marker,
            serde_json::json!(42),
            "the page was reloaded instead of refreshed"
        );

        // Pause with a click (and a confirmation).
        b.click(&format!("[data-rollout=\"{id}\"] h3 a")).await;
        assert_eq!(b.path().await, format!("/ui/rollouts/{id}"));
        b.wait_for("svg.timeline").await;
        b.shot(&shot("03-rollout")).await;
        b.click("a[data-action=pause]").await;
        assert!(b.text("main h1").await.starts_with("Pause rollout"));
        b.shot(&shot("04-confirm-pause")).await;
        b.click("button[data-confirm=pause]").await;
        assert_eq!(b.path().await, format!("/ui/rollouts/{id}?done=pause"));
        assert_eq!(
            b.wait_for("[data-status]")
                .await
                .attr("data-status")
                .await
                .unwrap()
                .as_deref(),
            Some("paused")
        );
        b.shot(&shot("05-paused")).await;
        assert_eq!(
            api_rollout(&s, id).await["state"]["status"],
            "paused",
            "{backend}"
        );
        let audit = s.admin("GET", "/audit?limit=5", None).await;
        assert_eq!(audit.body["items"][0]["action"], "rollout.pause");
        assert_eq!(audit.body["items"][0]["actor"], "alice");
        b.click("nav a[href=\"/ui/audit\"]").await;
        let row = b.wait_for("tr[data-action=\"rollout.pause\"]").await;
        assert_eq!(
            row.attr("data-actor").await.unwrap().as_deref(),
            Some("alice")
        );
        b.shot(&shot("06-audit")).await;

        // The hostile host name is text, and no script ran.
        b.click("nav a[href=\"/ui/nodes\"]").await;
        let cell = b
            .wait_for(&format!("tr[data-node=\"{}\"] td.hostname", fleet.hostile))
            .await;
        assert_eq!(cell.text().await.unwrap(), HOSTILE_NAME);
        assert!(!b.alert_open().await, "a script from a node ran");
        b.shot(&shot("07-nodes")).await;
        b.click(&format!("tr[data-node=\"{}\"] a", fleet.hostile))
            .await;
        assert_eq!(b.text("[data-fact=hostname]").await, HOSTILE_NAME);
        assert!(
            b.text("tr[data-event=error] td.detail")
                .await
                .contains("<img src=x onerror=alert(2)>")
        );
        assert!(!b.alert_open().await, "a script from a node ran");
        let scripts = b.client.find_all(Locator::Css("script")).await.unwrap();
        assert_eq!(
            scripts.len(),
            1,
            "only the dashboard's own script is on the page"
        );
        b.shot(&shot("08-node")).await;

        // Filters and paging in the node table.
        b.open(&format!("{}/ui/nodes", s.base)).await;
        b.client
            .form(Locator::Css("form.filters"))
            .await
            .unwrap()
            .set_by_name("channel", "beta")
            .await
            .unwrap()
            .submit()
            .await
            .unwrap();
        b.wait_for("tr[data-node=beta-0]").await;
        assert_eq!(b.count("tr[data-node]", 5).await, 5);
        b.open(&format!("{}/ui/nodes?channel=stable", s.base)).await;
        b.click("a[rel=next]").await;
        b.wait_for("tr[data-node=node-050]").await;
        assert_eq!(b.count("tr[data-node]", 10).await, 10);

        for (name, path, expect) in [
            ("09-releases", "/ui/releases", "tr[data-release=\"1.1.0\"]"),
            ("10-fleetlock", "/ui/fleetlock", "tr[data-holder=node-059]"),
        ] {
            b.open(&format!("{}{path}", s.base)).await;
            b.wait_for(expect).await;
            b.shot(&shot(name)).await;
        }

        // A viewer: no actions, and a forged post is refused.
        log_out(&b).await;
        log_in(&b, &s, &s.viewer).await;
        assert!(b.text("span.role").await.contains("read only"));
        b.open(&format!("{}/ui/rollouts/{id}", s.base)).await;
        assert!(
            b.client
                .find_all(Locator::Css("a[data-action]"))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            b.client
                .find_all(Locator::Css("form.edit"))
                .await
                .unwrap()
                .is_empty()
        );
        b.shot(&shot("11-viewer-rollout")).await;
        b.client
            .execute(
                "const f = document.createElement('form');
                 f.method = 'post'; f.action = arguments[0];
                 for (const [k, v] of [['action', 'resume'], ['csrf', document.querySelector('input[name=csrf]').value]]) {
                   const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
                 }
                 document.body.appendChild(f); f.submit();",
                vec![serde_json::json!(format!("/ui/rollouts/{id}/action"))],
            )
            .await
            .unwrap();
        let refusal = b.wait_for("p.error[data-error=\"403\"]").await;
        assert!(refusal.text().await.unwrap().contains("viewer"));
        b.shot(&shot("12-viewer-refused")).await;
        assert_eq!(
            api_rollout(&s, id).await["state"]["status"],
            "paused",
            "{backend}: a viewer resumed"
        );
        let audit = s.admin("GET", "/audit?limit=5", None).await;
        assert_eq!(audit.body["items"][0]["action"], "rollout.pause");
        b.open(&format!("{}/ui/", s.base)).await;
        log_out(&b).await;
    }
    b.close().await;
}
