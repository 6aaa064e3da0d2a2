//! The dashboard's enrolment tokens page in headless Chromium (issue 16),
//! on SQLite and PostgreSQL, with registration closed: an admin creates a
//! token for a group through the confirmation page and sees its secret
//! once; a new node registers with it and lands in that group, and the page
//! counts the use; a bad name is refused naming the field; the admin
//! revokes it (confirmed) and the next node with it is refused; a post
//! with a wrong CSRF secret is refused and writes nothing; every change is
//! in the audit log under the admin's name; a viewer sees no form and no
//! revoke link, and its confirmation pages and forged posts are refused
//! with nothing written; the group selector scopes the list. Screenshots
//! under `target/tmp/dashboard/<test>/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod common;

use browser::Browser;
use common::{TestNode, TestServer, backends, start};
use fantoccini::Locator;
use serde_json::{Value, json};

async fn log_in(b: &Browser, s: &TestServer, token: &str) {
    b.open(&format!("{}/ui/login", s.base)).await;
    b.wait_for("#token").await.send_keys(token).await.unwrap();
    b.click("button[type=submit]").await;
    b.wait_for("[data-channel]").await;
}

async fn fill(b: &Browser, form: &str, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        let el = b.wait_for(&format!("{form} [name={name}]")).await;
        el.clear().await.unwrap();
        el.send_keys(value).await.unwrap();
    }
}

async fn last_audit(s: &TestServer) -> Value {
    s.admin("GET", "/audit?limit=1", None).await.body["items"][0].clone()
}

/// Every enrolment token as the API lists it (revoked ones too).
async fn tokens(s: &TestServer) -> Vec<Value> {
    let a = s.admin("GET", "/enrollment-tokens?all=true", None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body["items"].as_array().unwrap().clone()
}

async fn none(b: &Browser, css: &str) -> bool {
    b.client
        .find_all(Locator::Css(css))
        .await
        .unwrap()
        .is_empty()
}

/// Posts a form built in the page (as a forger would).
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

/// A first check-in of a new node in group `db` carrying `token`.
async fn register(s: &TestServer, id: &str, token: &str) -> common::Answer {
    let mut n = TestNode::new(id);
    n.group = "db".into();
    n.enrollment_token = Some(token.to_owned());
    n.check_in(s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_create_and_revoke_enrollment_tokens_and_viewers_cannot() {
    let test = "admins_create_and_revoke_enrollment_tokens_and_viewers_cannot";
    let Some(b) = Browser::start(test).await else {
        return;
    };
    for (backend, url) in backends().await {
        // Registration closed, as in production.
        let s = start(&backend, &url, |c| c.open_registration = false).await;
        let shot = |name: &str| format!("{backend}-{name}");
        let g = s
            .admin(
                "POST",
                "/groups",
                Some(json!({"name": "db", "fleetlock_slots": 1})),
            )
            .await;
        assert_eq!(g.status, 201, "{:?}", g.body);
        log_in(&b, &s, &s.admin).await;

        // A bad name: refused, naming the field; nothing written.
        let audit_before = last_audit(&s).await;
        b.open(&format!("{}/ui/enrollment", s.base)).await;
        let form = "form[data-change=enrollment-token]";
        fill(&b, form, &[("name", "no spaces please"), ("group", "db")]).await;
        b.click(&format!("{form} button[type=submit]")).await;
        let refusal = b.wait_for("p.error[data-error=\"400\"]").await;
        assert_eq!(
            refusal.attr("data-field").await.unwrap().as_deref(),
            Some("name")
        );
        assert_eq!(last_audit(&s).await, audit_before, "{backend}");

        // Create: confirmation in words, then the secret, once.
        b.open(&format!("{}/ui/enrollment", s.base)).await;
        fill(
            &b,
            form,
            &[
                ("name", "rack-12"),
                ("group", "db"),
                ("expires_in", "7d"),
                ("max_uses", "2"),
            ],
        )
        .await;
        b.shot(&shot("01-new-token")).await;
        b.click(&format!("{form} button[type=submit]")).await;
        assert_eq!(
            b.text("main h1").await,
            "Create enrolment token rack-12 for group db?"
        );
        assert!(b.text("main").await.contains("at most 2 node(s)"));
        b.shot(&shot("02-confirm-create")).await;
        assert!(
            tokens(&s).await.is_empty(),
            "{backend}: written before confirming"
        );
        b.click("button[data-confirm=enrollment-token]").await;
        let secret = b.text("code.secret").await;
        assert!(secret.starts_with("mohoenr_"), "{secret}");
        assert!(b.text("main pre").await.contains(&secret));
        b.shot(&shot("03-secret-once")).await;
        let listed = tokens(&s).await;
        assert_eq!(listed.len(), 1, "{backend}");
        let id = listed[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(listed[0]["group"], "db");
        assert_eq!(listed[0]["max_uses"], 2);
        let audit = last_audit(&s).await;
        assert_eq!(audit["action"], "enrollment_token.create");
        assert_eq!(audit["actor"], "alice");
        assert!(
            !audit.to_string().contains(&secret),
            "the secret is not audited"
        );

        // The list never shows the secret again; a node enrols with it.
        b.click("a.button.primary").await;
        b.wait_for(&format!(
            "tr[data-enrollment-token=\"{id}\"][data-state=live]"
        ))
        .await;
        assert!(!b.text("main").await.contains(&secret));
        let a = register(&s, "enrolled-1", &secret).await;
        assert_eq!(a.status, 200, "{backend}: {:?}", a.body);
        let node = s.admin("GET", "/nodes/enrolled-1", None).await;
        assert_eq!(node.body["group"], "db", "{backend}: {:?}", node.body);
        b.open(&format!("{}/ui/enrollment", s.base)).await;
        let row = format!("tr[data-enrollment-token=\"{id}\"]");
        assert!(
            b.text(&format!("{row} td.num")).await.starts_with("1 / 2"),
            "{}",
            b.text(&row).await
        );
        b.shot(&shot("04-used-once")).await;

        // A second token (API), for the CSRF and viewer checks.
        let other = s
            .admin(
                "POST",
                "/enrollment-tokens",
                Some(json!({"name": "spare", "group": "db"})),
            )
            .await;
        assert_eq!(other.status, 201, "{:?}", other.body);
        let other_id = other.body["token"]["id"].as_str().unwrap().to_owned();

        // Revoke rack-12: confirmed, audited, refused from the next node on.
        b.open(&format!("{}/ui/enrollment", s.base)).await;
        b.click(&format!("a[data-revoke=\"{id}\"]")).await;
        assert_eq!(b.text("main h1").await, "Revoke enrolment token rack-12?");
        b.shot(&shot("05-confirm-revoke")).await;
        b.click("button[data-confirm=revoke-enrollment-token]")
            .await;
        let path = b.path().await;
        assert_eq!(path, "/ui/enrollment?done=enrollment_token.revoke");
        b.wait_for(&format!("{row}[data-state=revoked]")).await;
        assert!(none(&b, &format!("a[data-revoke=\"{id}\"]")).await);
        b.shot(&shot("06-revoked")).await;
        let audit = last_audit(&s).await;
        assert_eq!(audit["action"], "enrollment_token.revoke");
        assert_eq!(audit["actor"], "alice");
        assert_eq!(audit["subject"], format!("enrollment_token/{id}"));
        let a = register(&s, "enrolled-2", &secret).await;
        assert_eq!(a.status, 403, "{backend}: {:?}", a.body);
        assert_eq!(s.admin("GET", "/nodes/enrolled-2", None).await.status, 404);

        // A wrong CSRF secret: refused, nothing written.
        let audit_before = last_audit(&s).await;
        b.open(&format!(
            "{}/ui/changes/revoke-enrollment-token/confirm?token={other_id}",
            s.base
        ))
        .await;
        b.client
            .execute(
                "document.querySelector('form.confirm input[name=csrf]').value = 'forged';",
                vec![],
            )
            .await
            .unwrap();
        b.click("button[data-confirm=revoke-enrollment-token]")
            .await;
        let refusal = b.wait_for("p.error[data-error=\"403\"]").await;
        assert!(refusal.text().await.unwrap().contains("stale"));
        assert_eq!(last_audit(&s).await, audit_before, "{backend}");

        // The group selector: scoped to "default", db's tokens are not listed.
        b.open(&format!(
            "{}/ui/scope?group=default&back=/ui/enrollment",
            s.base
        ))
        .await;
        b.wait_for("p.scoped[data-scope=default]").await;
        assert!(none(&b, "tr[data-enrollment-token]").await, "{backend}");
        b.open(&format!("{}/ui/scope?group=db&back=/ui/enrollment", s.base))
            .await;
        b.wait_for(&format!("tr[data-enrollment-token=\"{other_id}\"]"))
            .await;
        b.open(&format!("{}/ui/scope?group=&back=/ui/enrollment", s.base))
            .await;

        // A viewer: no form, no revoke link; confirmation and forged posts
        // refused, nothing written.
        b.click("form.logout button").await;
        log_in(&b, &s, &s.viewer).await;
        b.open(&format!("{}/ui/enrollment", s.base)).await;
        b.wait_for(&format!("tr[data-enrollment-token=\"{other_id}\"]"))
            .await;
        assert!(none(&b, "form[data-change]").await, "a form for a viewer");
        assert!(
            none(&b, "a[data-revoke]").await,
            "a revoke link for a viewer"
        );
        b.shot(&shot("07-viewer")).await;
        b.open(&format!(
            "{}/ui/changes/enrollment-token/confirm?name=x&group=db",
            s.base
        ))
        .await;
        assert!(
            b.text("p.error[data-error=\"403\"]")
                .await
                .contains("viewer")
        );
        b.open(&format!("{}/ui/enrollment", s.base)).await;
        let csrf = b
            .wait_for("form.logout input[name=csrf]")
            .await
            .attr("value")
            .await
            .unwrap()
            .unwrap();
        for (kind, fields) in [
            (
                "revoke-enrollment-token",
                json!({"token": other_id, "csrf": csrf}),
            ),
            (
                "enrollment-token",
                json!({"name": "sneaky", "group": "db", "csrf": csrf}),
            ),
        ] {
            b.open(&format!("{}/ui/enrollment", s.base)).await;
            forge(&b, &format!("/ui/changes/{kind}"), fields).await;
            let refusal = b.wait_for("p.error[data-error=\"403\"]").await;
            assert!(refusal.text().await.unwrap().contains("viewer"), "{kind}");
        }
        b.shot(&shot("08-viewer-refused")).await;
        assert_eq!(last_audit(&s).await, audit_before, "{backend}");
        let after = tokens(&s).await;
        assert_eq!(after.len(), 2, "{backend}");
        assert!(
            after
                .iter()
                .any(|t| t["id"] == other_id.as_str() && t["revoked_at"].is_null()),
            "{backend}: {after:?}"
        );
        b.open(&format!("{}/ui/", s.base)).await;
        b.click("form.logout button").await;
    }
    b.close().await;
}
