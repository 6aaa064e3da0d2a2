//! The Omaha endpoint against scripted Flatcar-like clients
//! (`omaha/client.rs`), on SQLite and PostgreSQL: the walk from check to
//! the new version under the rollout's caps and holds, a group's rollout
//! offered only inside its calendar windows and as node pins allow, a
//! rollback (error 44) that fails the attempt and auto-pauses the rollout,
//! unsigned successes that never open a health gate, a revert that only
//! stops offering, refused requests that store nothing, FleetLock and the
//! dashboard showing Flatcar nodes beside Moho nodes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "omaha/client.rs"]
mod client;
mod common;

use base64::Engine;
use client::{FlatcarClient, register, rollout};
use common::dash::Dash;
use common::{TestNode, TestServer, backends, start};
use jiff::SignedDuration;
use serde_json::json;
use update_server::config::OmahaConfig;

async fn omaha_server(backend: &str, url: &str) -> TestServer {
    start(backend, url, |c| c.omaha = Some(OmahaConfig::default())).await
}

async fn rollout_view(s: &TestServer, id: i64) -> serde_json::Value {
    let r = s.admin("GET", &format!("/rollouts/{id}"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

async fn node(s: &TestServer, id: &str) -> serde_json::Value {
    let r = s.admin("GET", &format!("/nodes/{id}"), None).await;
    assert_eq!(r.status, 200, "{id}: {:?}", r.body);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flatcar_node_walks_from_check_to_the_new_version_under_caps_and_holds() {
    for (backend, url) in backends().await {
        let s = omaha_server(&backend, &url).await;
        let mut f: Vec<FlatcarClient> = (0..3)
            .map(|i| FlatcarClient::new(&format!("5f3b8c2a9d1e4f6a8b7c0d2e4f6a8b1{i}")))
            .collect();
        for c in &mut f {
            let a = c.check(&s).await;
            assert_eq!(a.status, 200, "{backend}: {}", a.text);
            assert_eq!(a.app().status, "ok");
            assert_eq!(
                a.check_status(),
                "noupdate",
                "{backend}: nothing released yet"
            );
            assert_eq!(a.app().ping.as_ref().unwrap().status, "ok");
        }
        let registered = node(&s, &f[0].machine_id).await;
        assert_eq!(registered["kind"], "flatcar", "{backend}: {registered}");
        assert_eq!(registered["omaha"]["oem"], "qemu");
        assert_eq!(registered["board"], "amd64-usr");

        let sha = register(&s, "3815.2.1", &["stable"]).await;
        let id = rollout(
            &s,
            "3815.2.1",
            json!({"steps": [{"percent": 100}], "max_in_flight": 1}),
        )
        .await;
        let until = s.now().checked_add(SignedDuration::from_hours(2)).unwrap();
        let hold = s
            .admin("POST", "/holds", Some(json!({"target": {"kind": "node", "name": f[2].machine_id}, "type": "hold", "until": until})))
            .await;
        assert_eq!(hold.status, 201, "{backend}: {:?}", hold.body);

        // The first is offered the release, with every field in the
        // encoding update_engine and the post-install step check.
        let offer = f[0].check(&s).await;
        assert_eq!(offer.check_status(), "ok", "{backend}: {}", offer.text);
        let m = offer.manifest();
        assert_eq!(m.version, "3815.2.1");
        let os = &m.packages.package[0];
        assert_eq!(
            (os.name.as_str(), os.size, os.required),
            ("flatcar_production_update.gz", 123_456, true)
        );
        assert_eq!(os.hash_sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(m.packages.package[1].name, "oem-qemu.gz");
        assert!(!m.packages.package[1].required);
        let post = m
            .actions
            .action
            .iter()
            .find(|a| a.event == "postinstall")
            .unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&post.sha256)
                .unwrap(),
            hex::decode(&sha).unwrap(),
            "{backend}: the postinstall sha256 is the base64 of the payload's digest"
        );
        let url = &offer
            .app()
            .updatecheck
            .as_ref()
            .unwrap()
            .urls
            .as_ref()
            .unwrap()
            .url[0]
            .codebase;
        assert_eq!(url, "https://mirror.example/amd64-usr/3815.2.1/");

        // The cap holds the second back; the hold keeps the third where it
        // is. Both are "noupdate", never an error status.
        assert_eq!(
            f[1].check(&s).await.check_status(),
            "noupdate",
            "{backend}: cap"
        );
        assert_eq!(
            f[2].check(&s).await.check_status(),
            "noupdate",
            "{backend}: held"
        );

        // Download, install, wait for the reboot.
        let offer = f[0].check(&s).await;
        assert_eq!(
            offer.check_status(),
            "ok",
            "{backend}: the offer is repeated while in flight"
        );
        let first = f[0].clone();
        f[0].install(&s, &offer).await;
        assert_eq!(
            node(&s, &first.machine_id).await["state"],
            "staged",
            "{backend}"
        );
        let attempts = s.db.node_attempts(&first.machine_id).await.unwrap();
        assert_eq!(attempts[0].phase.as_str(), "installed", "{backend}");
        let p = f[0].ping(&s).await;
        assert_eq!(p.status, 200);
        assert!(
            p.app().updatecheck.is_none() && p.app().ping.is_some(),
            "{}",
            p.text
        );
        assert_eq!(
            f[1].check(&s).await.check_status(),
            "noupdate",
            "{backend}: still capped"
        );

        // Rebooted into the new version: the next check reports it.
        f[0].version = "3815.2.1".into();
        assert_eq!(
            f[0].check(&s).await.check_status(),
            "noupdate",
            "{backend}: up to date"
        );
        let n = node(&s, &first.machine_id).await;
        assert_eq!(n["version"], "3815.2.1", "{backend}: {n}");
        assert_eq!(n["fallback_version"], "3815.2.0");
        assert_eq!(n["state"], "idle");
        let r = rollout_view(&s, id).await;
        assert_eq!(r["stats"]["unsigned_succeeded"], 1, "{backend}: {r}");
        assert_eq!(
            r["stats"]["healthy"], 0,
            "{backend}: an unsigned report is never healthy"
        );
        assert_eq!(r["stats"]["in_flight"], 0);
        let kinds: Vec<String> =
            s.db.node_events(&first.machine_id, None, 50)
                .await
                .unwrap()
                .into_iter()
                .rev()
                .map(|e| e.kind)
                .collect();
        assert_eq!(
            kinds,
            [
                "download_started",
                "download_finished",
                "installed",
                "booted_new_version"
            ],
            "{backend}"
        );

        // Its place under the cap is free again; the hold still applies.
        let offer = f[1].check(&s).await;
        assert_eq!(offer.check_status(), "ok", "{backend}: cap freed");
        assert_eq!(
            f[2].check(&s).await.check_status(),
            "noupdate",
            "{backend}: held"
        );
        f[1].install(&s, &offer).await;
        f[1].version = "3815.2.1".into();
        f[1].check(&s).await;
        assert_eq!(
            f[2].check(&s).await.check_status(),
            "noupdate",
            "{backend}: still held"
        );
        s.clock.advance(SignedDuration::from_hours(3));
        assert_eq!(
            f[2].check(&s).await.check_status(),
            "ok",
            "{backend}: hold expired, cap free"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_44_fails_the_attempt_and_the_rollout_pauses_per_its_policy() {
    for (backend, url) in backends().await {
        let s = omaha_server(&backend, &url).await;
        register(&s, "3815.2.1", &["stable"]).await;
        let id = rollout(
            &s,
            "3815.2.1",
            json!({"steps": [{"percent": 100}], "auto_pause": {"max_failure_percent": 20, "min_sample": 2}}),
        )
        .await;
        let mut f: Vec<FlatcarClient> = (0..4)
            .map(|i| FlatcarClient::new(&format!("rb-{i}")))
            .collect();
        let mut offers = Vec::new();
        for c in &mut f[..3] {
            let offer = c.check(&s).await;
            assert_eq!(offer.check_status(), "ok", "{backend}: {}", offer.text);
            offers.push(offer);
        }
        for (c, offer) in f[..2].iter_mut().zip(&offers) {
            c.install(&s, offer).await;
            // The new version does not come up; the old one boots again and
            // update_engine reports error 44 with its next check.
            let a = c.check(&s).await;
            assert_eq!(a.status, 200, "{backend}: {}", a.text);
            assert_eq!(a.app().events.len(), 1);
            assert_eq!(
                a.check_status(),
                "noupdate",
                "{backend}: a failed attempt is not offered again"
            );
        }
        // The rollout ticker (the one place a rollout moves by itself)
        // pauses it at its next pass.
        assert_eq!(s.tick().await, 1, "{backend}: one rollout paused");
        let r = rollout_view(&s, id).await;
        assert_eq!(r["stats"]["failed"], 2, "{backend}: {r}");
        assert_eq!(r["state"]["status"], "paused", "{backend}: {r}");
        assert_eq!(r["state"]["reason"]["by"], "failure_rate");
        assert_eq!(
            f[3].check(&s).await.check_status(),
            "noupdate",
            "{backend}: paused"
        );
        let attempts = s.db.node_attempts("rb-0").await.unwrap();
        assert_eq!(
            (attempts[0].status.as_str(), attempts[0].phase.as_str()),
            ("failed", "rolled_back"),
            "{backend}"
        );
        assert_eq!(
            s.db.rolled_back_versions("rb-0").await.unwrap(),
            vec!["3815.2.1".to_owned()]
        );
        let n = node(&s, "rb-0").await;
        assert_eq!(
            (n["version"].as_str(), n["state"].as_str()),
            (Some("3815.2.0"), Some("idle"))
        );

        // Any other error fails the attempt too, named on the node page.
        f[2].event(&s, 13, 1, None).await;
        f[2].event(&s, 3, 0, Some(10)).await;
        let attempts = s.db.node_attempts("rb-2").await.unwrap();
        assert_eq!(
            (attempts[0].status.as_str(), attempts[0].phase.as_str()),
            ("failed", "error")
        );
        let mut d = Dash::new(&s);
        d.login(&s.viewer).await;
        let page = d.get("/ui/nodes/rb-2").await;
        assert!(
            page.html
                .contains("omaha_10: update_engine error 10: payload hash mismatch"),
            "{}",
            page.html
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_successes_never_open_a_health_gate_and_a_revert_only_stops_offering() {
    for (backend, url) in backends().await {
        let s = omaha_server(&backend, &url).await;
        register(&s, "3815.2.1", &["stable"]).await;
        let mut f: Vec<FlatcarClient> = (0..4)
            .map(|i| FlatcarClient::new(&format!("hg-{i}")))
            .collect();
        for c in &mut f {
            c.check(&s).await;
        }
        let id = rollout(
            &s,
            "3815.2.1",
            json!({"steps": [{"percent": 50, "hold": "1h"}, {"percent": 100}], "health_gate": {"min_healthy_percent": 10}}),
        )
        .await;
        let mut updated = 0;
        for c in &mut f {
            let offer = c.check(&s).await;
            if offer.check_status() == "ok" {
                c.install(&s, &offer).await;
                c.version = "3815.2.1".into();
                assert_eq!(c.check(&s).await.check_status(), "noupdate");
                updated += 1;
            }
        }
        assert_eq!(updated, 2, "{backend}: half the scope is in line");
        s.clock.advance(SignedDuration::from_hours(2));
        for c in &mut f {
            c.check(&s).await;
        }
        assert_eq!(
            s.tick().await,
            0,
            "{backend}: the ticker finds no healthy report to advance on"
        );
        let r = rollout_view(&s, id).await;
        assert_eq!(r["stats"]["unsigned_succeeded"], 2, "{backend}: {r}");
        assert_eq!(
            r["current_percent"], 50.0,
            "{backend}: unsigned reports never pass a health gate: {r}"
        );
        assert_eq!(r["state"]["step"], 0, "{backend}");

        // Revert: Omaha cannot switch partitions. Nodes on the release are
        // answered noupdate (never an error) and nobody is offered it.
        let rev = s
            .admin(
                "POST",
                &format!("/rollouts/{id}/actions"),
                Some(json!({"action": "revert"})),
            )
            .await;
        assert_eq!(rev.status, 200, "{backend}: {:?}", rev.body);
        for c in &mut f {
            let a = c.check(&s).await;
            assert_eq!(a.status, 200, "{backend}");
            assert_eq!(a.check_status(), "noupdate", "{backend}: {}", a.text);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_foreign_requests_are_refused_and_store_nothing() {
    for (backend, url) in backends().await {
        let s = omaha_server(&backend, &url).await;
        let c = FlatcarClient::new("5f3b8c2a9d1e4f6a8b7c0d2e4f6a8b10");
        let good = c.body("<ping active=\"1\"></ping><updatecheck></updatecheck>");
        for (what, body, status) in [
            ("truncated", good[..good.len() / 2].to_owned(), 400),
            ("not xml", "{\"request\": 1}".to_owned(), 400),
            (
                "protocol 2.0",
                good.replace("protocol=\"3.0\"", "protocol=\"2.0\""),
                400,
            ),
            (
                "entity declaration",
                format!(
                    "<!DOCTYPE r [<!ENTITY x \"y\">]>{}",
                    &good[good.find("<request").unwrap()..]
                ),
                400,
            ),
            (
                "event type not a number",
                c.body("<event eventtype=\"x\" eventresult=\"1\"></event>"),
                400,
            ),
            (
                "bad machine id",
                good.replace("5f3b8c2a9d1e4f6a8b7c0d2e4f6a8b10", "a/b"),
                400,
            ),
            (
                "bad version",
                good.replace("version=\"3815.2.0\"", "version=\"3815.2.0 ; rm\""),
                400,
            ),
            (
                "no app",
                "<request protocol=\"3.0\"></request>".to_owned(),
                400,
            ),
            (
                "oversized",
                good.replace("<ping", &format!("<!--{}--><ping", "x".repeat(70_000))),
                413,
            ),
        ] {
            let a = c.post_raw(&s, body).await;
            assert_eq!(a.status, status, "{backend}: {what}: {}", a.text);
        }
        // A foreign application and an unknown track are answered (so the
        // client logs why) but nothing is stored either.
        let mut foreign = c.clone();
        foreign.app_id = "{87efface-864d-49a5-9bb3-4b050a7c227a}".into();
        let a = foreign.check(&s).await;
        assert_eq!(a.status, 200, "{backend}: {}", a.text);
        assert_eq!(a.app().status, "error-unknownApplication");
        assert!(a.app().updatecheck.is_none());
        let mut lost = c.clone();
        lost.track = "nightly".into();
        let a = lost.check(&s).await;
        assert_eq!(
            a.app().status,
            "error-unknownTrack",
            "{backend}: {}",
            a.text
        );
        assert!(
            s.db.node(&c.machine_id).await.unwrap().is_none(),
            "{backend}: nothing stored"
        );
        assert_eq!(s.db.event_count(&c.machine_id).await.unwrap(), 0);

        // An Omaha request may not speak for a Moho node (signed reports).
        let mut moho = TestNode::new("moho-1");
        moho.check_in(&s).await;
        let before = s.db.node("moho-1").await.unwrap().unwrap();
        let mut impostor = FlatcarClient::new("moho-1");
        impostor.previous_version = Some("1.0.0".into());
        let a = impostor.event(&s, 3, 0, Some(44)).await;
        assert_eq!(a.status, 403, "{backend}: {}", a.text);
        assert!(a.text.contains("moho_node"), "{}", a.text);
        assert_eq!(
            s.db.node("moho-1").await.unwrap().unwrap(),
            before,
            "{backend}"
        );
        assert_eq!(s.db.event_count("moho-1").await.unwrap(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omaha_is_off_unless_enabled_and_asks_for_the_enrollment_token() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let off = start("sqlite", &url, |_| {}).await;
    let mut c = FlatcarClient::new("m-1");
    let a = c.check(&off).await;
    assert_eq!(a.status, 404, "{}", a.text);
    assert!(a.text.contains("--omaha"), "{}", a.text);
    drop(off);

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let s = start("sqlite", &url, |cfg| {
        cfg.omaha = Some(OmahaConfig::default());
        cfg.enrollment_token = Some("s3cret".into());
    })
    .await;
    let a = c.check(&s).await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert!(s.db.node("m-1").await.unwrap().is_none());
    c.query = "?token=s3cret".into();
    assert_eq!(c.check(&s).await.check_status(), "noupdate");
    assert!(s.db.node("m-1").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flatcar_releases_are_checked_audited_and_shown_as_their_own_kind() {
    for (backend, url) in backends().await {
        let s = omaha_server(&backend, &url).await;
        let base = json!({
            "version": "3815.2.1", "board": "amd64-usr", "channels": ["stable"],
            "url": "https://mirror.example/amd64-usr/3815.2.1/",
            "payload": {"name": "flatcar_production_update.gz", "size": 10, "sha256": "ab".repeat(32)},
        });
        for (field, value, status) in [
            ("version", json!("3815"), 400),
            ("channels", json!(["nightly"]), 422),
            ("url", json!("file:///etc/"), 400),
            (
                "payload",
                json!({"name": "x.gz", "size": 10, "sha256": "ab"}),
                400,
            ),
        ] {
            let mut bad = base.clone();
            bad[field] = value;
            let a = s.admin("POST", "/releases/flatcar", Some(bad)).await;
            assert_eq!(a.status, status, "{backend}: {field}: {:?}", a.body);
        }
        assert!(
            s.admin("GET", "/releases", None).await.body["items"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        let viewer = s
            .api(
                "POST",
                "/releases/flatcar",
                Some(&s.viewer),
                Some(base.clone()),
            )
            .await;
        assert_eq!(viewer.status, 403, "{backend}");
        assert_eq!(
            s.admin("POST", "/releases/flatcar", Some(base.clone()))
                .await
                .status,
            201
        );
        assert_eq!(
            s.admin("POST", "/releases/flatcar", Some(base.clone()))
                .await
                .status,
            409,
            "{backend}: immutable"
        );
        let list = s.admin("GET", "/releases", None).await;
        let r = &list.body["items"][0];
        assert_eq!(
            (r["kind"].as_str(), r["present"].as_bool()),
            (Some("flatcar"), Some(true)),
            "{backend}: {r}"
        );
        assert_eq!(r["flatcar"]["payload"]["size"], 10);
        let audit = s.admin("GET", "/audit", None).await;
        let entry = &audit.body["items"][0];
        assert_eq!(
            (entry["action"].as_str(), entry["actor"].as_str()),
            (Some("release.register_flatcar"), Some("alice"))
        );

        // A Moho node is never offered a Flatcar release, even on its
        // board and channel.
        let mut moho = TestNode::new("moho-usr");
        moho.version = "3815.2.0".into();
        moho.board = "amd64-usr".into();
        rollout(&s, "3815.2.1", json!({"steps": [{"percent": 100}]})).await;
        let a = moho.check_in(&s).await;
        assert_eq!(a.body["action"], "wait", "{backend}: {:?}", a.body);
        assert_eq!(a.body["code"], "no_rollout", "{backend}: {:?}", a.body);

        let mut d = Dash::new(&s);
        d.login(&s.viewer).await;
        let page = d.get("/ui/releases").await;
        assert!(page.html.contains("data-kind=\"flatcar\""), "{}", page.html);
        assert!(
            page.html.contains("outside Moho's TUF chain"),
            "{}",
            page.html
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetlock_and_the_dashboard_show_flatcar_nodes_beside_moho_nodes() {
    for (backend, url) in backends().await {
        let s = omaha_server(&backend, &url).await;
        let mut flatcar = FlatcarClient::new("fc-1");
        flatcar.check(&s).await;
        let mut moho = TestNode::new("mo-1");
        moho.check_in(&s).await;

        // A Flatcar node has no key: it takes a reboot slot as a stock
        // FleetLock client does. A Moho node must still sign.
        let lock = |id: &str| {
            json!({"client_params": {"id": id, "group": "default"}})
                .to_string()
                .into_bytes()
        };
        let h = [
            ("fleet-lock-protocol", "true".to_owned()),
            ("content-type", "application/json".to_owned()),
        ];
        assert_eq!(
            s.post_raw("/v1/pre-reboot", &h, lock("fc-1")).await.status,
            200,
            "{backend}"
        );
        assert_eq!(
            s.post_raw("/v1/pre-reboot", &h, lock("mo-1")).await.status,
            401,
            "{backend}"
        );
        let view = s.admin("GET", "/fleetlock/default", None).await;
        assert_eq!(
            view.body["holders"][0]["node_id"], "fc-1",
            "{backend}: {:?}",
            view.body
        );
        assert_eq!(view.body["holders"][0]["kind"], "flatcar");

        let mut d = Dash::new(&s);
        d.login(&s.viewer).await;
        let page = d.get("/ui/fleetlock").await;
        assert!(page.html.contains("data-kind=\"flatcar\""), "{}", page.html);
        let nodes = d.get("/ui/nodes").await;
        for (id, kind) in [("fc-1", "flatcar"), ("mo-1", "moho")] {
            let row = &nodes.html[nodes.html.find(&format!("data-node=\"{id}\"")).unwrap()..];
            let row = &row[..row.find("</tr>").unwrap()];
            assert!(
                row.contains(&format!("data-kind=\"{kind}\"")),
                "{backend}: {row}"
            );
        }
        let only = d.get("/ui/nodes?kind=flatcar").await;
        assert!(
            only.html.contains("data-node=\"fc-1\"") && !only.html.contains("data-node=\"mo-1\""),
            "{backend}"
        );
        let api = s.admin("GET", "/nodes?kind=flatcar", None).await;
        assert_eq!(
            api.body["items"].as_array().unwrap().len(),
            1,
            "{backend}: {:?}",
            api.body
        );
        let page = d.get("/ui/nodes/fc-1").await;
        assert!(
            page.html.contains("update_engine over Omaha"),
            "{}",
            page.html
        );
        assert!(
            page.html.contains("track <code>stable</code>"),
            "{}",
            page.html
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flatcar_node_follows_its_groups_rollout_inside_its_windows_and_as_pins_allow() {
    for (backend, url) in backends().await {
        let s = omaha_server(&backend, &url).await;
        let g = s
            .admin("POST", "/groups", Some(json!({"name": "db"})))
            .await;
        assert_eq!(g.status, 201, "{backend}: {:?}", g.body);
        register(&s, "3815.2.1", &["stable"]).await;
        // Monday 10:00 UTC, inside the Monday 09:00-11:00 window.
        s.clock.set("2026-12-07T10:00:00Z".parse().unwrap());
        let r = s
            .admin(
                "POST",
                "/rollouts",
                Some(json!({
                    "version": "3815.2.1", "board": "amd64-usr", "channel": "stable", "group": "db",
                    "policy": {"steps": [{"percent": 100}],
                               "windows": [{"days": ["mon"], "start": "09:00", "length": "2h", "time_zone": "UTC"}]},
                })),
            )
            .await;
        assert_eq!(r.status, 201, "{backend}: {:?}", r.body);

        // GROUP=stable/db: in its group's rollout, inside the window.
        let mut db: Vec<FlatcarClient> = (0..2)
            .map(|i| {
                let mut c = FlatcarClient::new(&format!("db-{i}"));
                c.track = "stable/db".into();
                c
            })
            .collect();
        assert_eq!(db[0].check(&s).await.check_status(), "ok", "{backend}");
        assert_eq!(node(&s, "db-0").await["group"], "db", "{backend}");
        // A node pinned to the version it runs is not offered the release
        // (noupdate, never an error); one pinned to the release is.
        for (id, pinned, want) in [
            ("db-pinned", "3815.2.0", "noupdate"),
            ("db-pinned-up", "3815.2.1", "ok"),
        ] {
            let until = s.now().checked_add(SignedDuration::from_hours(24)).unwrap();
            let pin = s
                .admin("POST", "/holds", Some(json!({"target": {"kind": "node", "name": id}, "type": "pin", "version": pinned, "until": until})))
                .await;
            assert_eq!(pin.status, 201, "{backend}: {:?}", pin.body);
            let mut c = FlatcarClient::new(id);
            c.track = "stable/db".into();
            let a = c.check(&s).await;
            assert_eq!(
                (a.app().status.as_str(), a.check_status().as_str()),
                ("ok", want),
                "{backend}: {id}: {}",
                a.text
            );
        }
        // GROUP=stable: group default, which has no rollout.
        let mut other = FlatcarClient::new("default-0");
        assert_eq!(
            other.check(&s).await.check_status(),
            "noupdate",
            "{backend}: another group"
        );

        // 12:00: the window has closed; noupdate, never an error.
        s.clock.set("2026-12-07T12:00:00Z".parse().unwrap());
        let a = db[1].check(&s).await;
        assert_eq!(
            (a.app().status.as_str(), a.check_status().as_str()),
            ("ok", "noupdate"),
            "{backend}: window closed: {}",
            a.text
        );
        // The next Monday's window.
        s.clock.set("2026-12-14T09:30:00Z".parse().unwrap());
        assert_eq!(
            db[1].check(&s).await.check_status(),
            "ok",
            "{backend}: window open"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_flatcar_node_needs_an_enrollment_token_of_its_group_when_registration_is_closed() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| {
            c.omaha = Some(OmahaConfig::default());
            c.open_registration = false;
        })
        .await;
        let mut c = FlatcarClient::new("fc-new");
        let a = c.check(&s).await;
        assert_eq!(a.status, 403, "{backend}: {}", a.text);
        assert!(a.text.contains("enrollment_required"), "{}", a.text);
        assert!(s.db.node("fc-new").await.unwrap().is_none());
        let t = s
            .admin(
                "POST",
                "/enrollment-tokens",
                Some(json!({"name": "flatcar", "group": "default", "max_uses": 1})),
            )
            .await;
        let secret = t.body["secret"].as_str().unwrap().to_owned();
        c.query = format!("?token={secret}");
        assert_eq!(c.check(&s).await.check_status(), "noupdate", "{backend}");
        assert!(s.db.node("fc-new").await.unwrap().is_some());
        // Known now: its next requests use no token's uses.
        assert_eq!(c.check(&s).await.check_status(), "noupdate");
        let mut other = FlatcarClient::new("fc-other");
        other.query = format!("?token={secret}");
        let a = other.check(&s).await;
        assert_eq!(a.status, 403, "{backend}: {}", a.text);
        assert!(a.text.contains("enrollment_token_used_up"), "{}", a.text);
        assert!(s.db.node("fc-other").await.unwrap().is_none());
    }
}
