//! The `update-server` binary as systemd runs it (PID 1 here is not
//! systemd, so the test plays the service manager: it owns the
//! `$NOTIFY_SOCKET` datagram socket and sends the signals). `READY=1`
//! comes once the database is open and the repository verified (the
//! metadata's expiry is already in `/metrics`); SIGHUP swaps the TLS
//! certificate for new connections (a bad file keeps the old one);
//! SIGTERM sends `STOPPING=1`, closes the listener, ends open live event
//! streams (they must not hold the drain), lets a download in flight
//! finish to its last byte and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use moho_repo::keys::{generate_pem, write_new_key};
use moho_repo::{Expiries, KeyRing, RepoDir, Thresholds};

/// A signed, empty repository at `repo`; its root also as the data
/// directory's trusted root.
fn make_repo(data: &Path) {
    let keys = data.join("../keys");
    std::fs::create_dir_all(&keys).unwrap();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        write_new_key(
            &keys.join(format!("{role}-1.pem")),
            &generate_pem().unwrap(),
        )
        .unwrap();
    }
    let now = std::time::SystemTime::now();
    let (publication, _) = moho_repo::init(
        &KeyRing::load(&keys).unwrap(),
        Thresholds::default(),
        &Expiries::default(),
        now,
    )
    .unwrap();
    let repo = data.join("repo");
    RepoDir::new(&repo).initialize(&publication, now).unwrap();
    std::fs::copy(
        repo.join("metadata/1.root.json"),
        data.join("trusted-root.json"),
    )
    .unwrap();
}

struct Cert {
    pem: String,
    key: String,
    der: Vec<u8>,
}

fn new_cert() -> Cert {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Cert {
        pem: c.cert.pem(),
        key: c.signing_key.serialize_pem(),
        der: c.cert.der().to_vec(),
    }
}

/// The next notification (one datagram), or a panic after `within`.
fn notification(sock: &UnixDatagram, within: Duration, server: &mut Child) -> String {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 4096];
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            panic!("update-server exited ({status}) before notifying");
        }
        match sock.recv(&mut buf) {
            Ok(n) => return String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                assert!(
                    Instant::now() < deadline,
                    "no notification within {within:?}"
                );
            }
            Err(e) => panic!("notify socket: {e}"),
        }
    }
}

fn signal(server: &Child, name: &str) {
    let ok = Command::new("kill")
        .args(["-s", name, &server.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -s {name}");
}

/// A client that trusts both certificates and reports the one it was shown.
fn client(certs: &[&Cert]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only(
            certs
                .iter()
                .map(|c| reqwest::Certificate::from_pem(c.pem.as_bytes()).unwrap()),
        )
        .tls_info(true)
        .build()
        .unwrap()
}

/// The certificate a new connection to `url` is served.
async fn served_cert(certs: &[&Cert], url: &str) -> Vec<u8> {
    let resp = client(certs).get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("TLS info")
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_as_a_notify_service_reloads_tls_on_sighup_and_drains_on_sigterm() {
    for (backend, url) in common::backends().await {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        make_repo(&data);
        // A large file in the served repository: a download that outlives
        // the SIGTERM.
        let big_len: usize = 64 << 20;
        let big: Vec<u8> = (0..=250u8).cycle().take(big_len).collect();
        std::fs::write(data.join("repo/targets/big.bin"), &big).unwrap();
        let (a, b) = (new_cert(), new_cert());
        let (cert, key) = (tmp.path().join("tls.crt"), tmp.path().join("tls.key"));
        std::fs::write(&cert, &a.pem).unwrap();
        std::fs::write(&key, &a.key).unwrap();
        let notify_path = tmp.path().join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // A viewer token, for a live event stream open at SIGTERM.
        let token = Command::new(env!("CARGO_BIN_EXE_update-server"))
            .args(["token", "create", "--role", "viewer", "--name", "watcher"])
            .arg("--data-dir")
            .arg(&data)
            .env("MOHO_DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(token.status.success(), "{token:?}");
        let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
        let log = tmp.path().join("server.log");
        let mut server = Command::new(env!("CARGO_BIN_EXE_update-server"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .args(["--drain-timeout", "2min"])
            .env("MOHO_DATABASE_URL", &url)
            .env("NOTIFY_SOCKET", &notify_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let base = format!("https://localhost:{port}");

        // READY=1: the server answers at once, with the repository loaded.
        let ready = notification(&notify, Duration::from_secs(120), &mut server);
        assert!(ready.lines().any(|l| l == "READY=1"), "{backend}: {ready}");
        assert!(ready.contains("STATUS=serving on"), "{ready}");
        let metrics = client(&[&a])
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics
                .contains("moho_repository_metadata_expiry_timestamp_seconds{role=\"timestamp\"}"),
            "{backend}: the repository is loaded before READY=1: {metrics}"
        );
        let started = std::fs::read_to_string(&log).unwrap();
        assert!(
            started.contains("no online keys"),
            "no online keys: a warning at start: {started}"
        );
        assert_eq!(
            served_cert(&[&a, &b], &format!("{base}/healthz")).await,
            a.der
        );

        // SIGHUP with a new certificate: new connections see it.
        std::fs::write(&cert, &b.pem).unwrap();
        std::fs::write(&key, &b.key).unwrap();
        signal(&server, "HUP");
        let reloading = notification(&notify, Duration::from_secs(30), &mut server);
        assert!(reloading.contains("RELOADING=1"), "{reloading}");
        assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
        let reloaded = notification(&notify, Duration::from_secs(30), &mut server);
        assert!(reloaded.contains("READY=1"), "{reloaded}");
        assert_eq!(
            served_cert(&[&a, &b], &format!("{base}/healthz")).await,
            b.der
        );
        // A broken file: the server keeps serving the certificate it has.
        std::fs::write(&cert, "not a certificate").unwrap();
        signal(&server, "HUP");
        let _ = notification(&notify, Duration::from_secs(30), &mut server);
        let failed = notification(&notify, Duration::from_secs(30), &mut server);
        assert!(failed.contains("TLS reload failed"), "{failed}");
        assert_eq!(
            served_cert(&[&a, &b], &format!("{base}/healthz")).await,
            b.der
        );
        assert!(
            server.try_wait().unwrap().is_none(),
            "SIGHUP does not stop it"
        );

        // SIGTERM with a download in flight and a live event stream open:
        // the stream ends at once, the download drains.
        let mut stream = client(&[&b])
            .get(format!("{base}/api/v1/events/live"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200, "{backend}");
        let mut download = client(&[&b])
            .get(format!("{base}/repo/targets/big.bin"))
            .send()
            .await
            .unwrap();
        assert_eq!(download.status(), 200);
        let mut got = download.chunk().await.unwrap().unwrap().to_vec();
        signal(&server, "TERM");
        let stopping = notification(&notify, Duration::from_secs(30), &mut server);
        assert!(stopping.contains("STOPPING=1"), "{stopping}");
        // No new connections are taken while the download drains.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client(&[&b]).get(format!("{base}/healthz")).send().await {
                Err(e) if e.is_connect() => break,
                _ => {
                    assert!(Instant::now() < deadline, "the listener is still open");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        assert!(
            server.try_wait().unwrap().is_none(),
            "{backend}: the server exited with a download in flight"
        );
        // (A hang guard: with the 2 min drain, a stream that held it would
        // keep the server up well past this.)
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
                .await
                .expect("the live event stream did not end at SIGTERM");
            match chunk {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        while let Some(chunk) = download.chunk().await.unwrap() {
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got.len(), big_len, "the whole file arrived");
        assert!(got == big, "and its bytes are right");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = server.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "still running after the drain");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let log_text = std::fs::read_to_string(&log).unwrap();
        assert!(status.success(), "{backend}: {status}: {log_text}");
        assert!(log_text.contains("stopped"), "{log_text}");
    }
}
