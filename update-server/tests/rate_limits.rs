//! Per-source rate limits on what anyone can send without a key or token:
//! a burst of first check-ins, unsigned FleetLock calls or log-ins from one
//! address gets `429` with `Retry-After` (and the refused registrations
//! store nothing), while another address is still served and a registered
//! node's signed check-ins are never limited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::num::NonZeroU32;

use common::{TestNode, backends, start};
use serde_json::json;
use update_server::http::limits::RateLimitConfig;

/// A client whose connections come from `ip` (any 127.0.0.0/8 address
/// reaches the loopback listener).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post(
    http: &reqwest::Client,
    url: String,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = http.post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap()
}

fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_one_source_gets_429_while_others_are_served() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| {
            c.rate_limits = RateLimitConfig {
                // 2 per minute: one more every 30 s, so a test slowed down by
                // a busy machine still sends its burst well within that.
                registrations: NonZeroU32::new(2),
                fleetlock: NonZeroU32::new(2),
                logins: NonZeroU32::new(2),
            };
        })
        .await;
        let (one, two) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
        let check_in = format!("{}/v1/check-in", s.base);

        // Registrations: 2 pass, the 3rd new node from the same address waits.
        let mut nodes: Vec<TestNode> = (0..4).map(|i| TestNode::new(&format!("n{i}"))).collect();
        for n in nodes.iter_mut().take(2) {
            let body = n.check_in_body();
            let h = n.signed("/v1/check-in", &body);
            assert_eq!(post(&one, check_in.clone(), &h, body).await.status(), 200);
        }
        let body = nodes[2].check_in_body();
        let h = nodes[2].signed("/v1/check-in", &body);
        let refused = post(&one, check_in.clone(), &h, body).await;
        assert_eq!(refused.status(), 429, "{backend}");
        let wait = retry_after(&refused);
        assert!(
            (1..=30).contains(&wait),
            "2 per minute: one more within 30 s, not {wait}"
        );
        let doc: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(doc["error"]["code"], "rate_limited");
        assert!(
            s.db.node("n5").await.unwrap().is_none(),
            "{backend}: nothing stored"
        );
        // Another source registers at once.
        let body = nodes[3].check_in_body();
        let h = nodes[3].signed("/v1/check-in", &body);
        assert_eq!(post(&two, check_in.clone(), &h, body).await.status(), 200);
        // Registered nodes' signed check-ins are not limited.
        for _ in 0..20 {
            let body = nodes[0].check_in_body();
            let h = nodes[0].signed("/v1/check-in", &body);
            assert_eq!(post(&one, check_in.clone(), &h, body).await.status(), 200);
        }

        // Unsigned FleetLock calls.
        s.admin(
            "POST",
            "/groups",
            Some(json!({"name": "db", "fleetlock_slots": 100, "fleetlock_lease_secs": 600})),
        )
        .await;
        let lock = |id: &str| {
            serde_json::to_vec(&json!({"client_params": {"id": id, "group": "db"}})).unwrap()
        };
        let fl = [("fleet-lock-protocol", "true".to_owned())];
        let pre = format!("{}/v1/pre-reboot", s.base);
        // Unknown ids pass the limiter and are refused as not enrolled.
        for i in 0..2 {
            let r = post(&one, pre.clone(), &fl, lock(&format!("zincati-{i}"))).await;
            assert_eq!(r.status(), 403, "{backend}");
        }
        let r = post(&one, pre.clone(), &fl, lock("zincati-2")).await;
        assert_eq!(r.status(), 429, "{backend}");
        assert!(retry_after(&r) >= 1);
        let doc: serde_json::Value = r.json().await.unwrap();
        assert_eq!(doc["kind"], "rate_limited");
        let holders = s.admin("GET", "/fleetlock", None).await.body.to_string();
        assert!(!holders.contains("zincati"), "{backend}: {holders}");
        // Another source is not limited (and told why it is refused).
        let r = post(&two, pre.clone(), &fl, lock("zincati-2")).await;
        assert_eq!(r.status(), 403, "{backend}");
        let doc: serde_json::Value = r.json().await.unwrap();
        assert_eq!(doc["kind"], "unknown_node");

        // Log-ins: 2 attempts, then 429, even with the right token.
        let login = |http: reqwest::Client, token: String| {
            let base = s.base.clone();
            async move {
                let form = http.get(format!("{base}/ui/login")).send().await.unwrap();
                let cookie = form
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
                    .collect::<Vec<_>>()
                    .join("; ");
                let html = form.text().await.unwrap();
                let csrf = common::dash::csrf(&html);
                http.post(format!("{base}/ui/login"))
                    .header("cookie", cookie)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(common::dash::urlencoded(&[
                        ("token", &token),
                        ("csrf", &csrf),
                    ]))
                    .send()
                    .await
                    .unwrap()
            }
        };
        for _ in 0..2 {
            let r = login(one.clone(), "moho_wrong".to_owned()).await;
            assert_eq!(r.status(), 401, "{backend}");
        }
        let r = login(one.clone(), s.viewer.clone()).await;
        assert_eq!(r.status(), 429, "{backend}: even the right token waits");
        assert!(retry_after(&r) >= 1);
        assert!(r.text().await.unwrap().contains("Too many log-in attempts"));
        let r = login(two.clone(), s.viewer.clone()).await;
        assert_eq!(r.status(), 303, "{backend}: another source logs in");
    }
}
