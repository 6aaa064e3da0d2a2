//! Admin and viewer tokens through the admin API, on SQLite and PostgreSQL:
//! named tokens with an optional expiry, listed without secrets, revoked
//! by id or name; a revoked or expired token is refused at its next request
//! (API and dashboard session alike); viewers cannot manage tokens; the
//! last live admin token cannot be revoked; every change is audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::dash::Dash;
use common::{backends, start};
use jiff::SignedDuration;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_named_expire_and_revoke_at_once() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;

        // Create a viewer token that expires in an hour, and an admin one.
        let until = s.now() + SignedDuration::from_hours(1);
        let a = s
            .admin(
                "POST",
                "/tokens",
                Some(json!({"name": "grafana", "role": "viewer", "expires_at": until})),
            )
            .await;
        assert_eq!(a.status, 201, "{backend}: {:?}", a.body);
        let grafana = a.body["secret"].as_str().unwrap().to_owned();
        let grafana_id = a.body["token"]["id"].as_str().unwrap().to_owned();
        assert_eq!(grafana_id.len(), 16);
        assert_eq!(a.body["token"]["role"], "viewer");
        let a = s
            .admin(
                "POST",
                "/tokens",
                Some(json!({"name": "ci-deploy", "role": "admin"})),
            )
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        let ci = a.body["secret"].as_str().unwrap().to_owned();

        // A live name cannot be taken twice; bad names and past expiries are refused.
        let a = s
            .admin(
                "POST",
                "/tokens",
                Some(json!({"name": "grafana", "role": "admin"})),
            )
            .await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (409, Some("exists"))
        );
        for (body, code) in [
            (json!({"name": "system", "role": "admin"}), "invalid_name"),
            (json!({"name": "a b", "role": "admin"}), "invalid_name"),
            (
                json!({"name": "late", "role": "admin", "expires_at": s.now() - SignedDuration::from_secs(1)}),
                "invalid_value",
            ),
        ] {
            let a = s.admin("POST", "/tokens", Some(body.clone())).await;
            assert_eq!(
                (a.status, a.body["error"]["code"].as_str()),
                (400, Some(code)),
                "{body}: {:?}",
                a.body
            );
        }

        // The list shows names, roles and expiry, never a secret.
        let list = s.admin("GET", "/tokens", None).await;
        assert_eq!(list.status, 200);
        let text = list.body.to_string();
        assert!(!text.contains(&grafana) && !text.contains(&ci), "{text}");
        let mut names: Vec<&str> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["alice", "ci-deploy", "grafana", "victor"]);

        // whoami works for a viewer; a viewer may not manage tokens.
        let me = s.api("GET", "/whoami", Some(&grafana), None).await;
        assert_eq!(
            (me.status, me.body["name"].as_str()),
            (200, Some("grafana"))
        );
        for (method, path, body) in [
            ("GET", "/tokens".to_owned(), None),
            (
                "POST",
                "/tokens".to_owned(),
                Some(json!({"name": "sneaky", "role": "admin"})),
            ),
            ("DELETE", format!("/tokens/{grafana_id}"), None),
        ] {
            let a = s.api(method, &path, Some(&s.viewer), body).await;
            assert_eq!(a.status, 403, "{method} {path}: {:?}", a.body);
        }

        // A dashboard session of the viewer token works until it expires.
        let mut dash = Dash::new(&s);
        assert_eq!(dash.login(&grafana).await.status, 303);
        assert_eq!(dash.get("/ui/").await.status, 200);
        s.clock.advance(SignedDuration::from_mins(61));
        let a = s.api("GET", "/channels", Some(&grafana), None).await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (401, Some("token_expired")),
            "{:?}",
            a.body
        );
        assert!(
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("grafana"),
            "{:?}",
            a.body
        );
        assert_eq!(
            dash.get("/ui/").await.status,
            303,
            "expired token's session ends"
        );
        let p = Dash::new(&s).login(&grafana).await;
        assert_eq!(p.status, 401);
        assert!(p.html.contains("expired"), "{}", p.html);
        // Expired tokens leave the list unless asked for.
        let list = s.admin("GET", "/tokens", None).await;
        assert!(!list.body.to_string().contains("grafana"));
        let all = s.admin("GET", "/tokens?all=true", None).await;
        assert!(all.body.to_string().contains("grafana"));

        // Revoke by name: refused at the very next request, session and all.
        let mut ci_dash = Dash::new(&s);
        assert_eq!(ci_dash.login(&ci).await.status, 303);
        assert_eq!(s.api("GET", "/whoami", Some(&ci), None).await.status, 200);
        let a = s.admin("DELETE", "/tokens/ci-deploy", None).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert!(a.body["revoked_at"].is_string());
        let a = s.api("GET", "/channels", Some(&ci), None).await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (401, Some("token_revoked"))
        );
        assert_eq!(ci_dash.get("/ui/").await.status, 303);
        let a = s.admin("DELETE", "/tokens/ci-deploy", None).await;
        assert_eq!(a.status, 404, "a revoked name is no longer a live token's");
        let again = s.admin("GET", "/tokens?all=true", None).await.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "ci-deploy")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let a = s.admin("DELETE", &format!("/tokens/{again}"), None).await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (409, Some("already_revoked"))
        );
        // The name is free again once its token is revoked.
        let a = s
            .admin(
                "POST",
                "/tokens",
                Some(json!({"name": "ci-deploy", "role": "viewer"})),
            )
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);

        // The last live admin token cannot be revoked through the API.
        let a = s.admin("DELETE", "/tokens/alice", None).await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (409, Some("last_admin")),
            "{:?}",
            a.body
        );
        assert_eq!(s.admin("GET", "/whoami", None).await.status, 200);

        // Every change is in the audit log, with the actor and no secret.
        let audit = s.admin("GET", "/audit", None).await;
        let text = audit.body.to_string();
        assert!(!text.contains(&ci) && !text.contains(&grafana));
        let actions: Vec<(String, String)> = audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["actor"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let count = |action: &str, actor: &str| {
            actions
                .iter()
                .filter(|(a, b)| a == action && b == actor)
                .count()
        };
        assert_eq!(count("token.create", "alice"), 3, "{actions:?}");
        assert_eq!(count("token.create", "local"), 2, "{actions:?}");
        assert_eq!(count("token.revoke", "alice"), 1, "{actions:?}");
    }
}
