//! The dashboard's forms in headless Chromium (issue 16 acceptance), on
//! SQLite and PostgreSQL with the simulated fleet: an admin creates a
//! rollout, a channel, a group, a hold (and removes it) and frees a
//! FleetLock slot, each through its confirmation page, and each change
//! shows in the API and the audit log under the admin's name; a field out
//! of bounds is refused naming the field; a form posted without or with a
//! wrong CSRF secret is refused and writes nothing; a viewer sees no form
//! and no link, and its confirmation pages and forged posts are refused
//! with nothing written. Screenshots under `target/tmp/dashboard/<test>/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod common;

use browser::Browser;
use common::fleet::simulated_fleet;
use common::{TestServer, backends, start};
use fantoccini::Locator;
use serde_json::{Value, json};

async fn log_in(b: &Browser, s: &TestServer, token: &str) {
    b.open(&format!("{}/ui/login", s.base)).await;
    b.wait_for("#token").await.send_keys(token).await.unwrap();
    b.click("button[type=submit]").await;
    b.wait_for("[data-channel]").await;
}

/// Fills the text/number inputs and selects of the form matching `form`.
async fn fill(b: &Browser, form: &str, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        let css = format!("{form} [name={name}]");
        let el = b.wait_for(&css).await;
        if el.tag_name().await.unwrap() == "select" {
            el.select_by_value(value).await.unwrap();
        } else {
            el.clear().await.unwrap();
            el.send_keys(value).await.unwrap();
        }
    }
}

/// The newest audit entry.
async fn last_audit(s: &TestServer) -> Value {
    s.admin("GET", "/audit?limit=1", None).await.body["items"][0].clone()
}

async fn holders(s: &TestServer) -> Vec<String> {
    s.admin("GET", "/fleetlock/default", None).await.body["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["node_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Posts a form built in the page (as a forger would), with `fields`.
async fn forge(b: &Browser, action: &str, fields: Value) {
    b.client
        .execute(
            "const f = document.createElement('form');
             f.method = 'post'; f.action = arguments[0];
             for (const [k, v] of Object.entries(arguments[1])) {
               const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
             }
             document.body.appendChild(f); f.submit();",
            vec![json!(action), fields],
        )
        .await
        .unwrap();
}

async fn none(b: &Browser, css: &str) -> bool {
    b.client
        .find_all(Locator::Css(css))
        .await
        .unwrap()
        .is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_change_the_fleet_through_the_forms_and_viewers_cannot() {
    let Some(b) =
        Browser::start("admins_change_the_fleet_through_the_forms_and_viewers_cannot").await
    else {
        return;
    };
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let mut fleet = simulated_fleet(&s).await;
        let shot = |name: &str| format!("{backend}-{name}");
        log_in(&b, &s, &s.admin).await;

        // A rollout of 1.1.0 to beta (it is signed for beta).
        b.open(&format!("{}/ui/releases", s.base)).await;
        let release = b
            .wait_for("form[data-change=rollout] select[name=release] option")
            .await
            .attr("value")
            .await
            .unwrap()
            .unwrap();
        assert!(release.ends_with("/1.1.0"), "{release}");
        let form = "form[data-change=rollout]";
        fill(
            &b,
            form,
            &[
                ("release", &release),
                ("channel", "beta"),
                ("group", "default"),
                ("ramp", "20% 1h, 100%"),
                ("max_in_flight", "3"),
                ("auto_pause_percent", "10"),
                ("auto_pause_min_sample", "20"),
                (
                    "windows",
                    "mon-fri 02:00 3h Europe/Berlin; sat,sun 00:00 1d UTC",
                ),
                ("health_gate_percent", "90"),
                ("update_timeout", "7d"),
            ],
        )
        .await;
        b.shot(&shot("01-new-rollout")).await;
        b.click(&format!("{form} button[type=submit]")).await;
        assert_eq!(
            b.text("main h1").await,
            "Roll out 1.1.0 to beta/default?",
            "{}",
            b.text("main").await
        );
        b.shot(&shot("02-confirm-rollout")).await;
        let before = s.admin("GET", "/rollouts", None).await.body["items"]
            .as_array()
            .unwrap()
            .len();
        b.click("button[data-confirm=rollout]").await;
        let path = b.path().await;
        assert!(path.ends_with("?done=create"), "{path}");
        let rollouts = s.admin("GET", "/rollouts", None).await.body["items"].clone();
        let rollouts = rollouts.as_array().unwrap();
        assert_eq!(rollouts.len(), before + 1, "{backend}");
        let new = rollouts.iter().find(|r| r["channel"] == "beta").unwrap();
        assert_eq!(path, format!("/ui/rollouts/{}?done=create", new["id"]));
        assert_eq!(new["policy"]["max_in_flight"], 3);
        assert_eq!(new["policy"]["steps"].as_array().unwrap().len(), 2);
        let auto_pause = &new["policy"]["auto_pause"];
        assert_eq!(auto_pause["min_sample"], 20, "{auto_pause}");
        assert_eq!(auto_pause["max_failure_percent"].as_f64(), Some(10.0));
        let policy: moho_rollout::RolloutPolicy =
            serde_json::from_value(new["policy"].clone()).unwrap();
        let zones: Vec<String> = policy
            .windows
            .windows()
            .iter()
            .map(|w| w.to_spec().time_zone)
            .collect();
        assert_eq!(zones, ["Europe/Berlin", "UTC"], "{}", new["policy"]);
        assert_eq!(
            policy.health_gate.map(|g| g.min_healthy),
            Some(moho_rollout::Share::from_percent(90.0).unwrap()),
            "{}",
            new["policy"]
        );
        assert_eq!(
            policy.update_timeout,
            jiff::SignedDuration::from_hours(7 * 24),
            "{}",
            new["policy"]
        );
        let audit = last_audit(&s).await;
        assert_eq!(audit["action"], "rollout.create");
        assert_eq!(audit["actor"], "alice");
        b.shot(&shot("03-rollout-created")).await;

        // A ramp that goes down is refused, naming the field, and nothing
        // is created.
        b.open(&format!("{}/ui/releases", s.base)).await;
        fill(&b, form, &[("channel", "beta"), ("ramp", "50% 1h, 10%")]).await;
        b.click(&format!("{form} button[type=submit]")).await;
        let refusal = b.wait_for("p.error[data-error=\"400\"]").await;
        assert_eq!(
            refusal.attr("data-field").await.unwrap().as_deref(),
            Some("policy")
        );
        b.shot(&shot("04-bad-ramp")).await;
        // So is a window in a time zone that does not exist.
        b.open(&format!("{}/ui/releases", s.base)).await;
        fill(
            &b,
            form,
            &[
                ("channel", "beta"),
                ("ramp", "100%"),
                ("windows", "mon-fri 02:00 3h Mars/Olympus"),
            ],
        )
        .await;
        b.click(&format!("{form} button[type=submit]")).await;
        let refusal = b.wait_for("p.error[data-error=\"400\"]").await;
        assert_eq!(
            refusal.attr("data-field").await.unwrap().as_deref(),
            Some("windows")
        );
        assert!(refusal.text().await.unwrap().contains("Mars/Olympus"));
        let n = s.admin("GET", "/rollouts", None).await.body["items"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(n, before + 1);

        // A channel and a group.
        b.open(&format!("{}/ui/groups", s.base)).await;
        fill(&b, "form[data-change=channel]", &[("name", "edge")]).await;
        b.click("form[data-change=channel] button[type=submit]")
            .await;
        assert_eq!(b.text("main h1").await, "Create channel edge?");
        b.click("button[data-confirm=channel]").await;
        b.wait_for("[data-channel-name=edge]").await;
        assert_eq!(last_audit(&s).await["action"], "channel.create");
        let group_form = "form[data-change=group]";
        fill(
            &b,
            group_form,
            &[
                ("name", "db"),
                ("fleetlock_slots", "2"),
                ("fleetlock_lease", "30m"),
            ],
        )
        .await;
        b.click(&format!("{group_form} button[type=submit]")).await;
        assert_eq!(b.text("main h1").await, "Create group db?");
        b.shot(&shot("05-confirm-group")).await;
        b.click("button[data-confirm=group]").await;
        b.wait_for("tr[data-group=db]").await;
        let g = s.admin("GET", "/groups/db", None).await.body;
        assert_eq!(g["fleetlock_slots"], 2);
        assert_eq!(g["fleetlock_lease_secs"], 1800);
        assert_eq!(last_audit(&s).await["action"], "group.create");

        // A hold on group db, then its removal.
        let hold_form = "form[data-change=hold]";
        fill(
            &b,
            hold_form,
            &[
                ("target_kind", "group"),
                ("target", "db"),
                ("hold_type", "hold"),
                ("duration", "7d"),
            ],
        )
        .await;
        b.click(&format!("{hold_form} button[type=submit]")).await;
        assert_eq!(b.text("main h1").await, "Hold every node of group db?");
        b.shot(&shot("06-confirm-hold")).await;
        b.click("button[data-confirm=hold]").await;
        let holds = s.admin("GET", "/holds", None).await.body["items"].clone();
        assert_eq!(holds.as_array().unwrap().len(), 1, "{holds}");
        assert_eq!(holds[0]["target"], json!({"kind": "group", "name": "db"}));
        let hold_id = holds[0]["id"].as_i64().unwrap();
        let until: jiff::Timestamp = holds[0]["until"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            until.duration_since(s.now()),
            jiff::SignedDuration::from_hours(168)
        );
        let audit = last_audit(&s).await;
        assert_eq!(audit["action"], "hold.create");
        assert_eq!(audit["actor"], "alice");
        b.wait_for(&format!("tr[data-hold=\"{hold_id}\"]")).await;
        b.shot(&shot("07-hold-created")).await;
        b.click(&format!("a[data-remove=\"{hold_id}\"]")).await;
        assert_eq!(b.text("main h1").await, format!("Remove hold #{hold_id}?"));
        b.click("button[data-confirm=unhold]").await;
        assert!(
            s.admin("GET", "/holds", None).await.body["items"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_eq!(last_audit(&s).await["action"], "hold.delete");
        // A pin whose version is not a version: refused, naming the field.
        fill(
            &b,
            hold_form,
            &[
                ("target_kind", "node"),
                ("target", "node-001"),
                ("hold_type", "pin"),
                ("version", "latest"),
            ],
        )
        .await;
        b.click(&format!("{hold_form} button[type=submit]")).await;
        let refusal = b.wait_for("p.error[data-error=\"400\"]").await;
        assert_eq!(
            refusal.attr("data-field").await.unwrap().as_deref(),
            Some("version")
        );

        // Free the FleetLock slot that the fleet's stock client holds.
        let held = holders(&s).await;
        assert_eq!(held.len(), 1, "{held:?}");
        let holder = held[0].clone();
        b.open(&format!("{}/ui/fleetlock", s.base)).await;
        b.click(&format!("a[data-free=\"{holder}\"]")).await;
        assert!(b.text("main h1").await.starts_with("Free the reboot slot"));
        b.shot(&shot("08-confirm-free")).await;
        b.click("button[data-confirm=free-slot]").await;
        assert_eq!(b.path().await, "/ui/fleetlock?done=fleetlock.release");
        assert!(holders(&s).await.is_empty());
        let audit = last_audit(&s).await;
        assert_eq!(audit["action"], "fleetlock.release");
        assert_eq!(audit["subject"], format!("fleetlock/default/{holder}"));
        b.shot(&shot("09-slot-freed")).await;

        // A Moho node takes the slot again.
        let n = &mut fleet.stable[0];
        let body = serde_json::to_vec(&json!({"client_params": {"id": n.id, "group": "default"}}))
            .unwrap();
        let mut headers = n.signed("/v1/pre-reboot", &body);
        headers.push(("fleet-lock-protocol", "true".into()));
        let a = s.post_raw("/v1/pre-reboot", &headers, body).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let holder = n.id.clone();
        assert_eq!(holders(&s).await, vec![holder.clone()]);
        let audit_before = last_audit(&s).await;

        // The confirmation's form with a wrong CSRF secret, then without
        // one: refused, nothing written.
        for (case, script) in [
            (
                "wrong",
                "document.querySelector('form.confirm input[name=csrf]').value = 'forged';",
            ),
            (
                "missing",
                "document.querySelector('form.confirm input[name=csrf]').remove();",
            ),
        ] {
            b.open(&format!(
                "{}/ui/changes/free-slot/confirm?group=default&node={holder}",
                s.base
            ))
            .await;
            b.client.execute(script, vec![]).await.unwrap();
            b.click("button[data-confirm=free-slot]").await;
            let refusal = b.wait_for("p.error[data-error=\"403\"]").await;
            assert!(refusal.text().await.unwrap().contains("stale"), "{case}");
            b.shot(&shot(&format!("10-csrf-{case}"))).await;
            assert_eq!(holders(&s).await, vec![holder.clone()], "{backend}: {case}");
            assert_eq!(last_audit(&s).await, audit_before, "{backend}: {case}");
        }

        // A viewer: no forms, no links; confirmation pages and forged
        // posts refused, nothing written.
        let a = s
            .admin(
                "POST",
                "/holds",
                Some(json!({"target": {"kind": "group", "name": "db"}, "type": "hold",
                            "until": s.now().checked_add(jiff::SignedDuration::from_hours(1)).unwrap()})),
            )
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        let audit_before = last_audit(&s).await;
        let rollouts_before = s.admin("GET", "/rollouts", None).await.body["items"]
            .as_array()
            .unwrap()
            .len();
        b.open(&format!("{}/ui/", s.base)).await;
        b.click("form.logout button").await;
        log_in(&b, &s, &s.viewer).await;
        for (page, link) in [
            ("/ui/releases", "a[data-roll-out]"),
            ("/ui/groups", "a[data-remove]"),
            ("/ui/fleetlock", "a[data-free]"),
        ] {
            b.open(&format!("{}{page}", s.base)).await;
            b.wait_for("main h1").await;
            assert!(
                none(&b, "form[data-change]").await,
                "{page}: a form for a viewer"
            );
            assert!(none(&b, link).await, "{page}: {link} for a viewer");
        }
        b.wait_for(&format!("tr[data-holder=\"{holder}\"]")).await;
        b.shot(&shot("11-viewer-fleetlock")).await;
        b.open(&format!(
            "{}/ui/changes/free-slot/confirm?group=default&node={holder}",
            s.base
        ))
        .await;
        assert!(
            b.text("p.error[data-error=\"403\"]")
                .await
                .contains("viewer")
        );
        // The error page has no session form: take the secret from a page.
        b.open(&format!("{}/ui/groups", s.base)).await;
        let csrf = b
            .wait_for("form.logout input[name=csrf]")
            .await
            .attr("value")
            .await
            .unwrap()
            .unwrap();
        for (kind, fields) in [
            (
                "free-slot",
                json!({"group": "default", "node": holder, "csrf": csrf}),
            ),
            (
                "unhold",
                json!({"hold": a.body["id"].to_string(), "csrf": csrf}),
            ),
            (
                "rollout",
                json!({"release": release, "channel": "stable", "group": "db", "ramp": "100%", "csrf": csrf}),
            ),
            (
                "group",
                json!({"name": "web", "fleetlock_slots": "1", "fleetlock_lease": "1h", "csrf": csrf}),
            ),
        ] {
            b.open(&format!("{}/ui/groups", s.base)).await;
            forge(&b, &format!("/ui/changes/{kind}"), fields).await;
            let refusal = b.wait_for("p.error[data-error=\"403\"]").await;
            assert!(refusal.text().await.unwrap().contains("viewer"), "{kind}");
        }
        b.shot(&shot("12-viewer-refused")).await;
        assert_eq!(holders(&s).await, vec![holder.clone()], "{backend}");
        assert_eq!(last_audit(&s).await, audit_before, "{backend}");
        assert_eq!(
            s.admin("GET", "/rollouts", None).await.body["items"]
                .as_array()
                .unwrap()
                .len(),
            rollouts_before
        );
        assert_eq!(s.admin("GET", "/groups/web", None).await.status, 404);
        b.open(&format!("{}/ui/", s.base)).await;
        b.click("form.logout button").await;
    }
    b.close().await;
}
