//! Test harness: runs the real server in-process on loopback against each
//! database backend (a SQLite file always; PostgreSQL when
//! `MOHO_TEST_POSTGRES_URL` is set, required when `MOHO_REQUIRE_POSTGRES=1`,
//! as `scripts/test.sh` sets), with a fake clock, admin/viewer tokens, and
//! simulated nodes that sign their requests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod dash;
pub mod fleet;

use std::net::SocketAddr;
use std::sync::Arc;

use axum_server::Handle;
use ed25519_dalek::SigningKey;
use jiff::{SignedDuration, Timestamp};
use moho_protocol::admin::Role;
use moho_protocol::node::{AgentState, BootedImage, CheckIn, Event, EventKind, EventReport, Slot};
use moho_protocol::signing::{encode_public_key, sign_request};
use serde_json::Value;
use update_server::clock::FakeClock;
use update_server::config::ServerConfig;
use update_server::http::auth::create_token;
use update_server::serve::serve;
use update_server::state::AppState;
use update_server::store::{Db, SyncedRelease};

/// The start of every test's virtual time.
pub const T0: &str = "2026-03-02T10:00:00Z";

/// Database URLs to run a test against.
pub async fn backends() -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap().keep();
    let mut out = vec![(
        "sqlite".to_owned(),
        format!("sqlite://{}?mode=rwc", dir.join("moho.db").display()),
    )];
    match std::env::var("MOHO_TEST_POSTGRES_URL") {
        Ok(base) if !base.is_empty() => {
            out.push(("postgres".to_owned(), fresh_pg_database(&base).await))
        }
        _ => {
            assert!(
                std::env::var("MOHO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "MOHO_REQUIRE_POSTGRES=1 but MOHO_TEST_POSTGRES_URL is not set: PostgreSQL tests cannot run"
            );
            eprintln!(
                "!!! SKIPPING PostgreSQL: set MOHO_TEST_POSTGRES_URL (scripts/test.sh does) to test it too"
            );
        }
    }
    out
}

/// Creates an empty database on the server at `base` for one test.
async fn fresh_pg_database(base: &str) -> String {
    sqlx::any::install_default_drivers();
    let name = format!("moho_t_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::AnyPool::connect(base)
        .await
        .expect("connect to MOHO_TEST_POSTGRES_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("postgres URL with a database name");
    format!("{prefix}/{name}")
}

/// A running server.
pub struct TestServer {
    pub backend: String,
    pub url: String,
    pub base: String,
    pub db: Db,
    pub clock: Arc<FakeClock>,
    pub state: AppState,
    pub admin: String,
    pub viewer: String,
    pub http: reqwest::Client,
    pub repo_dir: std::path::PathBuf,
    handle: Handle<SocketAddr>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Starts a server on `url` with `tweak` applied to its config.
pub async fn start(backend: &str, url: &str, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    start_with(backend, url, tweak, None).await
}

/// Starts a server on a database that already holds the admin and viewer
/// tokens `tokens` (a restored backup).
pub async fn start_existing(backend: &str, url: &str, tokens: (String, String)) -> TestServer {
    start_with(backend, url, |_| {}, Some(tokens)).await
}

/// Starts another replica on `first`'s database (its tokens work here
/// too) with `tweak` applied to its config.
pub async fn start_replica(
    first: &TestServer,
    tweak: impl FnOnce(&mut ServerConfig),
) -> TestServer {
    let url = first.url.clone();
    start_with(
        &first.backend,
        &url,
        tweak,
        Some((first.admin.clone(), first.viewer.clone())),
    )
    .await
}

async fn start_with(
    backend: &str,
    url: &str,
    tweak: impl FnOnce(&mut ServerConfig),
    tokens: Option<(String, String)>,
) -> TestServer {
    let repo_dir = tempfile::tempdir().unwrap().keep();
    let mut config = ServerConfig::new(repo_dir.clone());
    config.stats_ttl = SignedDuration::ZERO;
    config.index_ttl = SignedDuration::ZERO;
    config.summary_ttl = SignedDuration::ZERO;
    // Simulated fleets register hundreds of nodes from 127.0.0.1; the
    // limits are tested where a test turns them on again.
    config.rate_limits = update_server::http::limits::RateLimitConfig::NONE;
    // Simulated nodes register freely unless a test closes registration
    // (the production default) to test enrolment.
    config.open_registration = true;
    tweak(&mut config);
    let db = Db::connect(url).await.unwrap();
    let clock = Arc::new(FakeClock::new(T0.parse().unwrap()));
    let state = AppState::new(db.clone(), clock.clone(), config);
    let now = clock.now_ts();
    let (admin, viewer) = match tokens {
        Some(t) => t,
        None => (
            create_token(&db, "alice", Role::Admin, now)
                .await
                .unwrap()
                .secret,
            create_token(&db, "victor", Role::Viewer, now)
                .await
                .unwrap()
                .secret,
        ),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = Handle::new();
    let h = handle.clone();
    let st = state.clone();
    tokio::spawn(async move { serve(listener, st, None, h).await.unwrap() });
    TestServer {
        backend: backend.to_owned(),
        url: url.to_owned(),
        base: format!("http://{addr}"),
        db,
        clock,
        state,
        admin,
        viewer,
        http: reqwest::Client::new(),
        repo_dir,
        handle,
    }
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for FakeClock {
    fn now_ts(&self) -> Timestamp {
        update_server::clock::Clock::now(self)
    }
}

/// An HTTP answer: status and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

impl TestServer {
    pub fn now(&self) -> Timestamp {
        self.clock.now_ts()
    }

    /// An admin API call with a token (or none).
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}/api/v1{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req.send().await.unwrap()).await
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.api(method, path, Some(&self.admin.clone()), body)
            .await
    }

    /// A raw POST.
    pub async fn post_raw(&self, path: &str, headers: &[(&str, String)], body: Vec<u8>) -> Answer {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        answer(req.send().await.unwrap()).await
    }

    /// Makes a release known as if synced from the signed repository.
    pub async fn add_release(&self, version: &str, channels: &[&str]) {
        let mut all = self.state.db.releases().await.unwrap();
        all.retain(|r| !(r.version == version && r.board == "amd64-generic"));
        let mut list: Vec<SyncedRelease> = all
            .into_iter()
            .filter(|r| r.present)
            .map(|r| SyncedRelease {
                version: r.version,
                board: r.board,
                target: r.target,
                channels: r.channels,
                min_version: r.min_version,
                size: r.size,
            })
            .collect();
        list.push(SyncedRelease {
            version: version.to_owned(),
            board: "amd64-generic".to_owned(),
            target: format!("amd64-generic/{version}/image.raw"),
            channels: channels.iter().map(|c| (*c).to_owned()).collect(),
            min_version: None,
            size: Some(64 << 20),
        });
        self.db.sync_releases(&list).await.unwrap();
    }

    /// One pass of the rollout ticker, the background job that moves
    /// rollouts on (auto-pause, ramp steps); returns how many changed.
    pub async fn tick(&self) -> usize {
        update_server::jobs::rollouts::tick_all(&self.state)
            .await
            .unwrap()
            .len()
    }

    /// Creates a rollout of `version` to stable/default; returns its id.
    pub async fn rollout(&self, version: &str, policy: Value) -> i64 {
        let a = self
            .admin(
                "POST",
                "/rollouts",
                Some(serde_json::json!({"version": version, "board": "amd64-generic", "channel": "stable", "group": "default", "policy": policy})),
            )
            .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        a.body["id"].as_i64().unwrap()
    }
}

/// A simulated node with its own key and counter.
pub struct TestNode {
    pub id: String,
    pub key: SigningKey,
    pub counter: u64,
    pub version: String,
    pub channel: String,
    pub group: String,
    pub board: String,
    pub enrollment_token: Option<String>,
    pub hostname: Option<String>,
    /// What the agent says it is doing (idle unless a test stages a release).
    pub state: AgentState,
    /// The version staged or on trial, sent with state `staged` or `trial`.
    pub staged_version: Option<String>,
}

impl TestNode {
    pub fn new(id: &str) -> Self {
        let seed: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(id.as_bytes()).into();
        Self {
            id: id.to_owned(),
            key: SigningKey::from_bytes(&seed),
            counter: 0,
            version: "1.0.0".to_owned(),
            channel: "stable".to_owned(),
            group: "default".to_owned(),
            board: "amd64-generic".to_owned(),
            enrollment_token: None,
            hostname: None,
            state: AgentState::Idle,
            staged_version: None,
        }
    }

    pub fn check_in_body(&self) -> Vec<u8> {
        serde_json::to_vec(&CheckIn {
            node_id: self.id.clone(),
            public_key: encode_public_key(&self.key.verifying_key()),
            channel: self.channel.clone(),
            group: self.group.clone(),
            board: self.board.clone(),
            booted: BootedImage {
                version: self.version.clone(),
                slot: Slot::A,
            },
            fallback_version: None,
            state: self.state,
            staged_version: self.staged_version.clone(),
            hostname: self.hostname.clone(),
            enrollment_token: self.enrollment_token.clone(),
        })
        .unwrap()
    }

    /// Signs `body` for `path` with the next counter.
    pub fn signed(&mut self, path: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        self.counter += 1;
        sign_request(&self.key, "POST", path, &self.id, self.counter, body)
            .headers()
            .to_vec()
    }

    pub async fn check_in(&mut self, s: &TestServer) -> Answer {
        let body = self.check_in_body();
        let headers = self.signed("/v1/check-in", &body);
        let h: Vec<(&str, String)> = headers.into_iter().collect();
        s.post_raw("/v1/check-in", &h, body).await
    }

    /// A FleetLock request (`path`: pre-reboot or steady-state) for the
    /// node's group, signed with its key as the agent sends it.
    pub async fn fleetlock(&mut self, s: &TestServer, path: &str) -> Answer {
        let body = serde_json::to_vec(
            &serde_json::json!({"client_params": {"id": self.id, "group": self.group}}),
        )
        .unwrap();
        let mut h = self.signed(path, &body);
        h.push(("fleet-lock-protocol", "true".into()));
        s.post_raw(path, &h, body).await
    }

    pub fn report_body(&self, kinds: Vec<EventKind>, at: Timestamp) -> Vec<u8> {
        let events = kinds.into_iter().map(|kind| Event { at, kind }).collect();
        serde_json::to_vec(&EventReport {
            node_id: self.id.clone(),
            events,
        })
        .unwrap()
    }

    pub async fn report(&mut self, s: &TestServer, kinds: Vec<EventKind>) -> Answer {
        let body = self.report_body(kinds, s.now());
        let headers = self.signed("/v1/events", &body);
        s.post_raw("/v1/events", &headers, body).await
    }
}
