//! The server's operational surface: TLS, probes, Prometheus metrics, the
//! OpenAPI document (every documented route exists), and `token create`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{TestNode, start};
use update_server::http::openapi::OPERATIONS;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route_and_metrics_count_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let s = start("sqlite", &url, |_| {}).await;
    let doc: serde_json::Value = s
        .http
        .get(format!("{}/api/v1/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path, _, _) in OPERATIONS {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the document"
        );
        let concrete = path
            .replace("{path}", "metadata/x.json")
            .replace(['{', '}'], "");
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = s
            .http
            .request(m, format!("{}{concrete}", s.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        // The route exists: anything but the router's own 404/405.
        assert!(
            status != 405 && body["error"]["code"] != "not_found" || path.starts_with("/repo"),
            "{method} {path}: {status} {body}"
        );
    }

    let mut n = TestNode::new("node-1");
    n.check_in(&s).await;
    let m = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("moho_check_ins_total 1"), "{m}");
    assert!(
        m.contains(r#"moho_nodes{channel="stable",version="1.0.0",state="idle"} 1"#),
        "{m}"
    );
    assert!(
        m.contains("moho_http_request_duration_seconds_bucket"),
        "{m}"
    );
    assert!(m.trim_end().ends_with("# EOF"));
    assert_eq!(
        s.http
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let db = update_server::store::Db::connect(&url).await.unwrap();
    let mut config = update_server::config::ServerConfig::new(dir.path().join("repo"));
    config.tls = true;
    let state = update_server::state::AppState::new(
        db,
        std::sync::Arc::new(update_server::clock::SystemClock),
        config,
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    let tls = update_server::serve::TlsFiles {
        cert: cert_path,
        key: key_path,
    };
    let config = tls.load().await.unwrap();
    tokio::spawn(async move {
        update_server::serve::serve(listener, state, Some(config), h)
            .await
            .unwrap()
    });
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let mut last = None;
    for _ in 0..50 {
        match client
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
        {
            Ok(r) => {
                last = Some(r.status().as_u16());
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    assert_eq!(last, Some(200));
    // Plain HTTP to the TLS port does not get an answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(!plain.map(|r| r.status().is_success()).unwrap_or(false));
    handle.shutdown();
}

#[test]
fn token_create_prints_a_token_the_api_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_update-server");
    let out = Command::new(bin)
        .args(["token", "create", "--role", "viewer", "--name", "dash"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("moho_") && token.len() > 60, "{token}");
    let bad = Command::new(bin)
        .args(["token", "create", "--role", "root"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown role \"root\""));

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("moho.db").display());
        let s = start("sqlite", &url, |_| {}).await;
        assert_eq!(s.api("GET", "/nodes", Some(&token), None).await.status, 200);
        let a = s
            .api(
                "POST",
                "/channels",
                Some(&token),
                Some(serde_json::json!({"name": "x"})),
            )
            .await;
        assert_eq!(a.status, 403, "a viewer token cannot change anything");
    });
}
