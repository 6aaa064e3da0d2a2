//! The dashboard over plain HTTP, on SQLite and PostgreSQL: login and its
//! CSRF check, sessions, viewers refused when they post, CSRF on every
//! change, rollout actions and policy changes landing in the API and the
//! audit log, escaping of node strings, node filters and keyset paging,
//! the overview's figures against the admin API, and the set-up forms'
//! bounds: a refused field is named, a form over 16 KiB is not read, a
//! confirmation page writes nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

mod common;

use common::dash::{Dash, csrf, figure};
use common::fleet::{BETA_NODES, HOSTILE_MESSAGE, HOSTILE_NAME, STABLE_NODES, simulated_fleet};
use common::{backends, start};
use serde_json::json;

async fn audit_actions(s: &common::TestServer) -> Vec<(String, String)> {
    let a = s.admin("GET", "/audit?limit=1000", None).await;
    a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_csrf_and_roles_guard_every_change() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let fleet = simulated_fleet(&s).await;
        let id = fleet.rollout;
        let mut anon = Dash::new(&s);
        let p = anon.get("/ui/").await;
        assert_eq!((p.status, p.location.as_deref()), (303, Some("/ui/login")));
        assert_eq!(anon.get("/ui/?part=live").await.status, 401);
        assert_eq!(anon.get("/").await.location.as_deref(), Some("/ui/"));

        // The login form needs its double-submit secret and a real token.
        let mut forged = Dash::new(&s);
        let p = forged
            .post(
                "/ui/login",
                &[("token", &s.admin), ("csrf", "f".repeat(64).as_str())],
            )
            .await;
        assert_eq!(p.status, 403, "{backend}: {}", p.html);
        assert!(!forged.cookies.iter().any(|(k, _)| k == "moho_session"));
        let mut wrong = Dash::new(&s);
        let p = wrong.login("moho_not-a-token").await;
        assert_eq!(p.status, 401);
        assert!(p.html.contains("unknown or revoked token"));

        let mut admin = Dash::new(&s);
        let p = admin.login(&s.admin).await;
        assert_eq!(
            (p.status, p.location.as_deref()),
            (303, Some("/ui/")),
            "{}",
            p.html
        );
        let set = p
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        let session = set.iter().find(|c| c.starts_with("moho_session=")).unwrap();
        assert!(
            session.contains("HttpOnly") && session.contains("SameSite=Strict"),
            "{session}"
        );
        let home = admin.get("/ui/").await;
        assert_eq!(home.status, 200);
        let csp = home.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(
            home.headers["server-timing"]
                .to_str()
                .unwrap()
                .starts_with("app;dur=")
        );
        assert!(
            home.html.contains(&format!(r#"data-rollout="{id}""#)),
            "{}",
            home.html
        );

        // A viewer sees no actions and is refused when posting anyway, even
        // with its own valid CSRF secret.
        let mut viewer = Dash::new(&s);
        assert_eq!(viewer.login(&s.viewer).await.status, 303);
        let page = viewer.get(&format!("/ui/rollouts/{id}")).await;
        assert_eq!(page.status, 200);
        assert!(!page.html.contains("data-action="), "viewer sees actions");
        assert!(!page.html.contains("Change ramp or caps"));
        assert_eq!(
            viewer
                .get(&format!("/ui/rollouts/{id}/confirm?action=pause"))
                .await
                .status,
            403
        );
        let vcsrf = viewer.csrf().await;
        let p = viewer
            .post(
                &format!("/ui/rollouts/{id}/action"),
                &[("action", "pause"), ("csrf", &vcsrf)],
            )
            .await;
        assert_eq!(p.status, 403, "{}", p.html);
        assert!(p.html.contains("viewer"), "{}", p.html);
        let p = viewer
            .post(
                &format!("/ui/rollouts/{id}/policy"),
                &[("ramp", "100%"), ("csrf", &vcsrf)],
            )
            .await;
        assert_eq!(p.status, 403);

        // An admin's post without the right CSRF secret changes nothing.
        let acsrf = admin.csrf().await;
        assert_ne!(acsrf, vcsrf);
        for bad in ["", vcsrf.as_str(), "0"] {
            let p = admin
                .post(
                    &format!("/ui/rollouts/{id}/action"),
                    &[("action", "pause"), ("csrf", bad)],
                )
                .await;
            assert_eq!(p.status, 403, "csrf {bad:?}");
        }
        let api = s.admin("GET", &format!("/rollouts/{id}"), None).await;
        assert_eq!(api.body["state"]["status"], "active", "{backend}");
        assert!(
            !audit_actions(&s)
                .await
                .iter()
                .any(|(a, _)| a == "rollout.pause")
        );

        // The confirmation page, then the post: paused in the API and audited.
        let confirm = admin
            .get(&format!("/ui/rollouts/{id}/confirm?action=pause"))
            .await;
        assert_eq!(confirm.status, 200);
        assert_eq!(csrf(&confirm.html), acsrf);
        let p = admin
            .post(
                &format!("/ui/rollouts/{id}/action"),
                &[("action", "pause"), ("csrf", &acsrf)],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.html);
        let api = s.admin("GET", &format!("/rollouts/{id}"), None).await;
        assert_eq!(api.body["state"]["status"], "paused", "{backend}");
        assert!(
            audit_actions(&s)
                .await
                .contains(&("rollout.pause".into(), "alice".into()))
        );
        // Pausing twice is refused with the reason.
        let p = admin
            .post(
                &format!("/ui/rollouts/{id}/action"),
                &[("action", "pause"), ("csrf", &acsrf)],
            )
            .await;
        assert_eq!(p.status, 409);

        // Change the ramp and caps: reviewed in words, then applied.
        let review = admin
            .get(&format!("/ui/rollouts/{id}/change?ramp=50%25+1h%2C+75%25+30m%2C+100%25&max_in_flight=20&period_count=&period="))
            .await;
        assert_eq!(review.status, 200, "{}", review.html);
        assert!(
            review.html.contains("At most 20 nodes update at once."),
            "{}",
            review.html
        );
        let bad = admin
            .get(&format!("/ui/rollouts/{id}/change?ramp=50%25%2C+10%25"))
            .await;
        assert_eq!(bad.status, 400);
        assert!(bad.html.contains("must be larger"), "{}", bad.html);
        let p = admin
            .post(
                &format!("/ui/rollouts/{id}/policy"),
                &[
                    ("ramp", "50% 1h, 75% 30m, 100%"),
                    ("max_in_flight", "20"),
                    ("period_count", ""),
                    ("period", ""),
                    ("csrf", &acsrf),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.html);
        let api = s.admin("GET", &format!("/rollouts/{id}"), None).await;
        assert_eq!(api.body["policy"]["steps"].as_array().unwrap().len(), 3);
        assert_eq!(api.body["policy"]["max_in_flight"], 20);
        assert!(
            audit_actions(&s)
                .await
                .contains(&("rollout.policy".into(), "alice".into()))
        );

        // The same change through the API: viewers refused, admins not.
        let body = json!({"policy": {"steps": [{"percent": 100}]}});
        let r = s
            .api(
                "PATCH",
                &format!("/rollouts/{id}"),
                Some(&s.viewer),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status, 403);
        let r = s
            .admin("PATCH", &format!("/rollouts/{id}"), Some(body))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["state"]["step"], 0);

        // Logging out ends the session.
        assert_eq!(
            admin.post("/ui/logout", &[("csrf", &acsrf)]).await.status,
            303
        );
        assert_eq!(admin.get("/ui/").await.status, 303);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_escape_node_strings_page_through_nodes_and_match_the_api() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let fleet = simulated_fleet(&s).await;
        let mut d = Dash::new(&s);
        assert_eq!(d.login(&s.viewer).await.status, 303);

        // Overview figures are the API's.
        let html = d.get("/ui/").await.html;
        let api = s
            .admin("GET", &format!("/rollouts/{}", fleet.rollout), None)
            .await
            .body;
        let anchor = format!(r#"data-rollout="{}""#, fleet.rollout);
        for key in ["offered", "in_flight", "healthy", "failed"] {
            assert_eq!(
                figure(&html, &anchor, key),
                api["stats"][key].as_u64().unwrap(),
                "{backend}: {key}"
            );
        }
        let scope = api["stats"]["scope_size"].as_u64().unwrap();
        assert_eq!(scope, STABLE_NODES as u64);
        let pct = api["current_percent"].as_f64().unwrap();
        assert_eq!(
            figure(&html, &anchor, "target"),
            (pct * scope as f64 / 100.0).ceil() as u64
        );
        assert_eq!(
            figure(&html, r#"data-channel="stable""#, "nodes"),
            STABLE_NODES as u64
        );
        assert_eq!(
            figure(&html, r#"data-channel="beta""#, "nodes"),
            BETA_NODES as u64
        );
        // Phases: two downloading, two installed, one rolled back, one error.
        assert_eq!(figure(&html, &anchor, "downloading"), 2);
        assert_eq!(figure(&html, &anchor, "installed"), 2);
        assert_eq!(figure(&html, &anchor, "rolled_back"), 1);
        assert_eq!(figure(&html, &anchor, "errors"), 1);

        // Node strings are text, never markup.
        let nodes = d.get("/ui/nodes?channel=stable").await.html;
        assert!(
            nodes.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{backend}"
        );
        assert!(!nodes.contains(HOSTILE_NAME));
        let node = d.get(&format!("/ui/nodes/{}", fleet.hostile)).await;
        assert_eq!(node.status, 200);
        assert!(!node.html.contains(HOSTILE_NAME) && !node.html.contains(HOSTILE_MESSAGE));
        assert!(
            node.html
                .contains("&lt;img src=x onerror=alert(2)&gt;disk full"),
            "{}",
            node.html
        );
        assert!(node.html.contains("&lt;b&gt;code&lt;/b&gt;"));

        // Keyset paging: 50 + 10 stable nodes, in id order, no overlap.
        let count = |h: &str| h.matches("<tr data-node=").count();
        assert_eq!(count(&nodes), 50);
        let next = nodes
            .split(r#"rel="next" href=""#)
            .nth(1)
            .map(|r| r[..r.find('"').unwrap()].replace("&amp;", "&"))
            .expect("a next page");
        assert!(next.contains("after=node-049"), "{next}");
        let page2 = d.get(&next).await.html;
        assert_eq!(count(&page2), STABLE_NODES - 50);
        assert!(page2.contains(r#"data-node="node-050""#));
        assert!(!page2.contains(r#"rel="next""#));
        assert_eq!(
            count(&d.get("/ui/nodes?channel=beta").await.html),
            BETA_NODES
        );
        assert_eq!(count(&d.get("/ui/nodes?version=9.9.9").await.html), 0);
        let all = d
            .get("/ui/nodes?state=idle&group=default&seen=1h")
            .await
            .html;
        assert_eq!(count(&all), 50);
        assert!(all.contains(r#"rel="next""#));
        assert_eq!(count(&d.get("/ui/nodes?seen=not1h").await.html), 0);
        assert_eq!(d.get("/ui/nodes?seen=someday").await.status, 400);

        // The node that rolled back has 1.1.0 on its deny list.
        let offered: Vec<_> = s
            .admin("GET", "/nodes?channel=stable&limit=1000", None)
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .clone()
            .into_iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect();
        let mut denied = 0;
        for id in &offered {
            let h = d.get(&format!("/ui/nodes/{id}")).await.html;
            if h.contains(r#"data-deny="1.1.0""#) {
                denied += 1;
            }
        }
        assert_eq!(denied, 1, "{backend}");

        // The other pages render what the API holds.
        let rel = d.get("/ui/releases").await;
        assert!(rel.html.contains(r#"data-release="1.1.0""#) && rel.html.contains("64.0 MiB"));
        let fl = d.get("/ui/fleetlock").await;
        assert!(fl.html.contains(r#"data-holder="node-059""#), "{}", fl.html);
        let audit = d.get("/ui/audit").await;
        assert!(audit.html.contains(r#"data-action="rollout.create""#));
        let ro = d.get(&format!("/ui/rollouts/{}", fleet.rollout)).await;
        assert!(
            ro.html
                .contains("Ramp: 50% of the nodes for 1h, then 100% of the nodes.")
        );
        assert!(ro.html.contains("<svg class=\"timeline\""));
        assert_eq!(d.get("/ui/rollouts/999").await.status, 404);
        let live = d
            .get(&format!("/ui/rollouts/{}?part=live", fleet.rollout))
            .await
            .html;
        assert!(live.starts_with(r#"<div id="live""#), "{live}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_up_forms_bound_their_fields_and_name_the_one_refused() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let mut admin = Dash::new(&s);
        admin.login(&s.admin).await;
        let secret = admin.csrf().await;
        let before = audit_actions(&s).await.len();
        let long = "a".repeat(300);
        for (form, field, status) in [
            (vec![("name", long.as_str())], "name", 400),
            (
                vec![
                    ("name", "web"),
                    ("fleetlock_slots", "0"),
                    ("fleetlock_lease", "1h"),
                ],
                "fleetlock_slots",
                400,
            ),
            (
                vec![
                    ("name", "web"),
                    ("fleetlock_slots", "1"),
                    ("fleetlock_lease", "soon"),
                ],
                "fleetlock_lease",
                400,
            ),
            (
                vec![
                    ("name", "Web Servers"),
                    ("fleetlock_slots", "1"),
                    ("fleetlock_lease", "1h"),
                ],
                "name",
                400,
            ),
        ] {
            let mut form = form.clone();
            form.push(("csrf", &secret));
            let p = admin.post("/ui/changes/group", &form).await;
            assert_eq!(p.status, status, "{backend} {field}: {}", p.html);
            assert!(
                p.html.contains(&format!("data-field=\"{field}\"")),
                "{backend} {field}: {}",
                p.html
            );
        }
        // A hold on a group that does not exist: the shared rule, naming the field.
        let p = admin
            .post(
                "/ui/changes/hold",
                &[
                    ("target_kind", "group"),
                    ("target", "nowhere"),
                    ("hold_type", "hold"),
                    ("duration", "1d"),
                    ("csrf", &secret),
                ],
            )
            .await;
        assert_eq!(p.status, 422, "{}", p.html);
        assert!(p.html.contains("data-field=\"target\""), "{}", p.html);
        // A form over 16 KiB is not read.
        let huge = "x".repeat(20 * 1024);
        let p = admin
            .post("/ui/changes/channel", &[("name", &huge), ("csrf", &secret)])
            .await;
        assert_eq!(p.status, 413, "{backend}");
        // The confirmation page changes nothing; only its post does.
        let p = admin
            .get("/ui/changes/group/confirm?name=web&fleetlock_slots=2&fleetlock_lease=10m")
            .await;
        assert_eq!(p.status, 200, "{}", p.html);
        assert!(p.html.contains("Create group web?"));
        assert_eq!(audit_actions(&s).await.len(), before, "{backend}");
        assert_eq!(s.admin("GET", "/groups/web", None).await.status, 404);
        let p = admin
            .post(
                "/ui/changes/group",
                &[
                    ("name", "web"),
                    ("fleetlock_slots", "2"),
                    ("fleetlock_lease", "10m"),
                    ("csrf", &csrf(&p.html)),
                ],
            )
            .await;
        assert_eq!(
            (p.status, p.location.as_deref()),
            (303, Some("/ui/groups?done=group.create")),
            "{}",
            p.html
        );
        assert_eq!(
            s.admin("GET", "/groups/web", None).await.body["fleetlock_lease_secs"],
            600
        );
        let actions = audit_actions(&s).await;
        assert_eq!(actions.len(), before + 1);
        assert_eq!(actions[0], ("group.create".to_owned(), "alice".to_owned()));
    }
}
