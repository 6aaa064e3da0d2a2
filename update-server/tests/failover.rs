//! Two real `update-server` processes on one PostgreSQL and one shared
//! repository directory, a simulated fleet whose check-ins, reports,
//! FleetLock calls and metadata fetches are spread across both, and the
//! replica that runs the background jobs killed (SIGKILL) mid-rollout: the
//! other takes the lease (its `/metrics` says so) and its jobs carry on —
//! it re-signs the timestamp and moves the health-gated ramp to its next
//! step, which only a ticker can do. Throughout, no node ever sees a
//! timestamp or snapshot older than one it saw before, no more nodes
//! update at once than the rollout's cap, no more hold a reboot slot than
//! the group has; at the end every node is healthy on the new release and
//! the rollout's counters say so, with one ramp step in the audit log.
//!
//! PostgreSQL only (replicas need it): skipped without
//! `MOHO_TEST_POSTGRES_URL`, required with `MOHO_REQUIRE_POSTGRES=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::{TestNode, backends};
use moho_protocol::node::EventKind;
use moho_repo::keys::{generate_pem, write_new_key};
use moho_repo::{Expiries, ImageFile, KeyRing, NewRelease, RepoDir, Thresholds};
use serde_json::{Value, json};

/// Simulated nodes (half of them are in the first ramp step).
const NODES: usize = 24;
/// The rollout's `max_in_flight`.
const CAP: usize = 3;
/// How long the timestamps the replicas sign stay valid (`--timestamp-expiry`):
/// re-signed every few seconds, so the fleet sees new ones all along.
const TIMESTAMP_EXPIRY: &str = "8s";
const BOARD: &str = "amd64-generic";

/// Polls `cond` every 100 ms for up to `limit` (a wait, not a timing
/// assert); `what` says what did not happen (with the logs, say).
async fn eventually(
    what: impl Fn() -> String,
    limit: Duration,
    mut cond: impl AsyncFnMut() -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting after {limit:?}: {}", what());
}

/// Keys, and a repository with release 1.1.0 for stable whose first
/// timestamp lives `first_timestamp` (the replicas re-sign it from then on).
fn make_repo(keys: &Path, repo: &Path, work: &Path, first_timestamp: Duration) {
    std::fs::create_dir_all(keys).unwrap();
    for role in ["root", "targets", "snapshot", "timestamp"] {
        write_new_key(
            &keys.join(format!("{role}-1.pem")),
            &generate_pem().unwrap(),
        )
        .unwrap();
    }
    let ring = KeyRing::load(keys).unwrap();
    let expiries = Expiries {
        timestamp: first_timestamp,
        ..Expiries::default()
    };
    let now = SystemTime::now();
    let (publication, _) = moho_repo::init(&ring, Thresholds::default(), &expiries, now).unwrap();
    let dir = RepoDir::new(repo);
    dir.initialize(&publication, now).unwrap();

    let image = work.join("root.img");
    let bytes: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&image, &bytes).unwrap();
    let chunk_size = 64 * 1024;
    let index = moho_release::ChunkIndex::build(&bytes[..], chunk_size).unwrap();
    let release = NewRelease {
        board: BOARD.into(),
        version: "1.1.0".into(),
        channels: BTreeSet::from(["stable".to_owned()]),
        min_version: None,
        allow_downgrade: false,
        chunk_size,
        image: ImageFile {
            path: image,
            length: index.image_length(),
            sha256: index.image_sha256(),
        },
        chunk_index: index.to_bytes(),
    };
    let current = dir.load().unwrap();
    let (publication, _) = moho_repo::add(&current, &release, &ring, &expiries, now).unwrap();
    dir.publish(&publication, now).unwrap();
}

/// One `update-server serve` process.
struct Replica {
    name: &'static str,
    base: String,
    child: Mutex<Option<Child>>,
    log: PathBuf,
    /// False once killed: the simulated load balancer sends nothing there.
    alive: AtomicBool,
}

impl Replica {
    fn start(name: &'static str, dir: &Path, db: &str, repo: &Path, keys: &Path) -> Self {
        let data = dir.join(format!("data-{name}"));
        std::fs::create_dir_all(&data).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_update-server"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .arg("--database")
            .arg(db)
            .arg("--repo")
            .arg(repo)
            .arg("--trusted-root")
            .arg(repo.join("metadata/1.root.json"))
            .arg("--online-keys")
            .arg(keys)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--lease-check", "1s"])
            .args(["--resign-check", "1s"])
            .args(["--timestamp-expiry", TIMESTAMP_EXPIRY])
            .arg("--open-registration")
            .args(["--rate-limit-registrations", "0"])
            .args(["--rate-limit-fleetlock", "0"])
            .args(["--summary-ttl", "0s"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting update-server");
        Self {
            name,
            base: format!("http://127.0.0.1:{port}"),
            child: Mutex::new(Some(child)),
            log,
            alive: AtomicBool::new(true),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no drain, no lease release, no write-behind flush.
    fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
        if let Some(mut c) = self.child.lock().unwrap().take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// `moho_jobs_leader` from its `/metrics`, if it answers.
    async fn leading(&self, http: &reqwest::Client) -> Option<bool> {
        let text = http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("moho_jobs_leader "))
            .map(|v| v.trim() == "1")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The two replicas behind a simulated load balancer: each request goes to
/// the next live replica in turn.
struct Balancer {
    replicas: Vec<Replica>,
    next: AtomicUsize,
    http: reqwest::Client,
}

impl Balancer {
    /// Sends `req(base)` to a live replica (the other one when the first
    /// cannot be reached, as a load balancer's health check would); `req`
    /// is called again for every attempt.
    async fn send(
        &self,
        mut req: impl FnMut(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> (u16, Value) {
        for _ in 0..40 {
            let i = self.next.fetch_add(1, Ordering::SeqCst) % self.replicas.len();
            let r = &self.replicas[i];
            if !r.alive.load(Ordering::SeqCst) {
                continue;
            }
            match req(&self.http, &r.base).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    return (status, serde_json::from_str(&text).unwrap_or(Value::Null));
                }
                // Killed meanwhile: the next live one answers.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        panic!("no replica answered");
    }

    /// A signed node request; signed again (a higher counter) for every
    /// attempt, as the agent does: the killed replica may have taken the
    /// first one before it died.
    async fn signed(&self, node: &mut TestNode, path: &str, body: Vec<u8>) -> (u16, Value) {
        let fleetlock = path != "/v1/check-in" && path != "/v1/events";
        self.send(|http, base| {
            let mut headers = node.signed(path, &body);
            if fleetlock {
                headers.push(("fleet-lock-protocol", "true".into()));
            }
            let mut r = http.post(format!("{base}{path}")).body(body.clone());
            for (k, v) in &headers {
                r = r.header(*k, v);
            }
            r
        })
        .await
    }

    async fn admin(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (status, answer) = self
            .send(|http, base| {
                let r = http
                    .request(m.clone(), format!("{base}/api/v1{path}"))
                    .bearer_auth(token);
                match &body {
                    Some(b) => r.json(b),
                    None => r,
                }
            })
            .await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
        answer
    }
}

/// What the fleet observed, shared by the node tasks.
#[derive(Default)]
struct Observed {
    /// Nodes that were told to install and have not yet reported healthy.
    updating: Mutex<BTreeSet<String>>,
    most_updating: AtomicUsize,
    /// Nodes holding the reboot slot, as the server granted it.
    rebooting: Mutex<BTreeSet<String>>,
    most_rebooting: AtomicUsize,
    /// Highest timestamp version any node saw.
    newest_timestamp: AtomicU64,
    /// Healthy reports the server accepted.
    healthy: AtomicUsize,
}

/// Fetches the timestamp and the snapshot it names, as an agent does, and
/// checks that neither is older than what `seen` (this node's highest
/// versions) holds.
async fn fetch_metadata(lb: &Balancer, id: &str, seen: &mut (u64, u64), obs: &Observed) {
    let (status, ts) = lb
        .send(|http, base| http.get(format!("{base}/repo/metadata/timestamp.json")))
        .await;
    assert_eq!(status, 200, "{id}: timestamp.json");
    let version = ts["signed"]["version"].as_u64().unwrap();
    let snapshot = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    assert!(
        version >= seen.0,
        "{id} saw timestamp {version} after timestamp {}",
        seen.0
    );
    assert!(
        snapshot >= seen.1,
        "{id} saw snapshot {snapshot} after snapshot {}",
        seen.1
    );
    *seen = (version, snapshot);
    obs.newest_timestamp.fetch_max(version, Ordering::SeqCst);
    // The snapshot it names is served (by whichever replica answers).
    let (status, snap) = lb
        .send(|http, base| http.get(format!("{base}/repo/metadata/{snapshot}.snapshot.json")))
        .await;
    assert_eq!(status, 200, "{id}: {snapshot}.snapshot.json");
    assert_eq!(snap["signed"]["version"].as_u64(), Some(snapshot), "{id}");
}

async fn report(lb: &Balancer, node: &mut TestNode, kinds: Vec<EventKind>) {
    loop {
        let body = node.report_body(kinds.clone(), jiff::Timestamp::now());
        let (status, answer) = lb.signed(node, "/v1/events", body).await;
        if status == 200 {
            return;
        }
        assert!(
            status >= 500,
            "{}: report refused: {status} {answer}",
            node.id
        );
    }
}

fn set_insert(set: &Mutex<BTreeSet<String>>, most: &AtomicUsize, id: &str) {
    let mut s = set.lock().unwrap();
    s.insert(id.to_owned());
    most.fetch_max(s.len(), Ordering::SeqCst);
}

/// One node's life: ask, and when told to install, download, take the
/// reboot slot, reboot into 1.1.0, report healthy, give the slot back.
async fn node_life(lb: Arc<Balancer>, mut node: TestNode, obs: Arc<Observed>) -> TestNode {
    let v = |s: &str| s.to_owned();
    let mut seen = (0, 0);
    loop {
        fetch_metadata(&lb, &node.id, &mut seen, &obs).await;
        let body = node.check_in_body();
        let (status, answer) = lb.signed(&mut node, "/v1/check-in", body).await;
        assert_eq!(status, 200, "{}: {answer}", node.id);
        if answer["action"] != "install" {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(answer["version"], "1.1.0", "{}", node.id);
        set_insert(&obs.updating, &obs.most_updating, &node.id);
        report(
            &lb,
            &mut node,
            vec![
                EventKind::DownloadStarted {
                    version: v("1.1.0"),
                },
                EventKind::DownloadFinished {
                    version: v("1.1.0"),
                },
                EventKind::Installed {
                    version: v("1.1.0"),
                },
            ],
        )
        .await;
        let lock =
            serde_json::to_vec(&json!({"client_params": {"id": node.id, "group": node.group}}))
                .unwrap();
        loop {
            let (status, answer) = lb.signed(&mut node, "/v1/pre-reboot", lock.clone()).await;
            if status == 200 {
                break;
            }
            assert!(
                status == 409 || status >= 500,
                "{}: pre-reboot {status} {answer}",
                node.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        set_insert(&obs.rebooting, &obs.most_rebooting, &node.id);
        report(
            &lb,
            &mut node,
            vec![EventKind::Rebooting {
                version: v("1.1.0"),
            }],
        )
        .await;
        node.version = "1.1.0".into();
        fetch_metadata(&lb, &node.id, &mut seen, &obs).await;
        let body = node.check_in_body();
        let (status, answer) = lb.signed(&mut node, "/v1/check-in", body).await;
        assert_eq!(status, 200, "{}: {answer}", node.id);
        // No longer updating once it says so (the server counts it in
        // flight until it has the report: the set never overstates).
        obs.updating.lock().unwrap().remove(&node.id);
        report(
            &lb,
            &mut node,
            vec![
                EventKind::BootedNewVersion {
                    version: v("1.1.0"),
                },
                EventKind::Healthy {
                    version: v("1.1.0"),
                },
            ],
        )
        .await;
        obs.healthy.fetch_add(1, Ordering::SeqCst);
        obs.rebooting.lock().unwrap().remove(&node.id);
        loop {
            let (status, answer) = lb.signed(&mut node, "/v1/steady-state", lock.clone()).await;
            if status == 200 {
                break;
            }
            assert!(status >= 500, "{}: steady-state {status} {answer}", node.id);
        }
        // A few more rounds of metadata as an updated node keeps polling.
        for _ in 0..3 {
            fetch_metadata(&lb, &node.id, &mut seen, &obs).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        return node;
    }
}

fn token(db: &str, dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_update-server"))
        .args(["token", "create", "--role", "admin", "--name", "alice"])
        .arg("--data-dir")
        .arg(dir)
        .arg("--database")
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_the_jobs_when_the_leader_is_killed_mid_rollout() {
    let Some((_, db)) = backends().await.into_iter().find(|(b, _)| b == "postgres") else {
        eprintln!("!!! SKIPPING: replicas need PostgreSQL (MOHO_TEST_POSTGRES_URL)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (keys, repo) = (dir.path().join("keys"), dir.path().join("repo"));
    // The token first (it creates the schema), then the repository, whose
    // first timestamp only needs to outlive the replicas' start: they
    // re-sign it from then on.
    let admin = token(&db, &dir.path().join("data-a"));
    make_repo(&keys, &repo, dir.path(), Duration::from_secs(30));
    let a = Replica::start("a", dir.path(), &db, &repo, &keys);
    let b = Replica::start("b", dir.path(), &db, &repo, &keys);
    let http = reqwest::Client::new();
    let lb = Arc::new(Balancer {
        replicas: vec![a, b],
        next: AtomicUsize::new(0),
        http: http.clone(),
    });
    for r in &lb.replicas {
        eventually(
            || format!("{} listens; log:\n{}", r.name, r.log()),
            Duration::from_secs(60),
            async || {
                http.get(format!("{}/healthz", r.base))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
    }
    // Exactly one replica leads.
    let mut leader = None;
    eventually(
        || "one replica leads".to_owned(),
        Duration::from_secs(60),
        async || {
            let mut leading = Vec::new();
            for (i, r) in lb.replicas.iter().enumerate() {
                if r.leading(&http).await == Some(true) {
                    leading.push(i);
                }
            }
            assert!(leading.len() <= 1, "two replicas lead at once");
            leader = leading.first().copied();
            leader.is_some()
        },
    )
    .await;
    let leader = leader.unwrap();
    let standby = 1 - leader;
    eprintln!("leader: {}", lb.replicas[leader].name);

    // Register the fleet, then roll 1.1.0 out: half the nodes first, the
    // second step only once all of those reported healthy, three at once.
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let mut n = TestNode::new(&format!("fo-{i:02}"));
        let body = n.check_in_body();
        let (status, answer) = lb.signed(&mut n, "/v1/check-in", body).await;
        assert_eq!(status, 200, "{answer}");
        nodes.push(n);
    }
    let releases = lb.admin(&admin, "GET", "/releases", None).await;
    assert!(
        releases["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["version"] == "1.1.0"),
        "{releases}"
    );
    let created = lb
        .admin(
            &admin,
            "POST",
            "/rollouts",
            Some(
                json!({"version": "1.1.0", "board": BOARD, "channel": "stable", "group": "default",
                        "policy": {"steps": [{"percent": 50}, {"percent": 100}],
                                   "max_in_flight": CAP,
                                   "health_gate": {"min_healthy_percent": 100}}}),
            ),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let rollout = async |lb: &Balancer| {
        lb.admin(&admin, "GET", &format!("/rollouts/{id}"), None)
            .await
    };

    let obs = Arc::new(Observed::default());
    {
        let tasks: Vec<_> = nodes
            .into_iter()
            .map(|n| tokio::spawn(node_life(lb.clone(), n, obs.clone())))
            .collect();

        // Mid-rollout: some of the first step are healthy, the step is
        // not done.
        eventually(
            || "3 nodes healthy".to_owned(),
            Duration::from_secs(120),
            async || obs.healthy.load(Ordering::SeqCst) >= 3,
        )
        .await;
        let killed_at = Instant::now();
        let timestamp_at_kill = obs.newest_timestamp.load(Ordering::SeqCst);
        lb.replicas[leader].kill();
        eprintln!("killed {}", lb.replicas[leader].name);
        let r = rollout(&lb).await;
        assert_eq!(
            r["state"]["step"], 0,
            "the first step was not done yet: {r}"
        );

        // The standby takes the lease: its /metrics says so ...
        let standby_r = &lb.replicas[standby];
        eventually(
            || {
                format!(
                    "{} takes the lease; log:\n{}",
                    standby_r.name,
                    standby_r.log()
                )
            },
            Duration::from_secs(60),
            async || standby_r.leading(&http).await == Some(true),
        )
        .await;
        eprintln!(
            "{} leads {:?} after the kill (--lease-check 1s)",
            standby_r.name,
            killed_at.elapsed()
        );
        // ... it re-signs: it serves newer timestamps (the fleet checks
        // that none it sees is older) ...
        let served = async || {
            let r = http
                .get(format!("{}/repo/metadata/timestamp.json", standby_r.base))
                .send()
                .await
                .unwrap();
            let doc: Value = r.json().await.unwrap();
            doc["signed"]["version"].as_u64().unwrap()
        };
        let at_kill = timestamp_at_kill.max(served().await);
        eventually(
            || {
                format!(
                    "timestamps signed after the kill (above {at_kill}); {} log:\n{}\n{} log:\n{}",
                    lb.replicas[leader].name,
                    lb.replicas[leader].log(),
                    standby_r.name,
                    standby_r.log()
                )
            },
            Duration::from_secs(60),
            async || served().await >= at_kill + 2,
        )
        .await;
        // ... and its ticker opens the second step once the first is healthy.
        eventually(
            || "the ramp's second step".to_owned(),
            Duration::from_secs(180),
            async || rollout(&lb).await["state"]["step"] == 1,
        )
        .await;
        let mut done = Vec::new();
        for t in tasks {
            done.push(
                tokio::time::timeout(Duration::from_secs(300), t)
                    .await
                    .expect("a node finished")
                    .expect("node task"),
            );
        }
        assert_eq!(done.len(), NODES);
        let most = obs.most_updating.load(Ordering::SeqCst);
        assert!(
            most <= CAP,
            "{most} nodes updating at once, the cap is {CAP}"
        );
        assert!(most >= 1);
        let most = obs.most_rebooting.load(Ordering::SeqCst);
        assert_eq!(most, 1, "the default group has one reboot slot");
        assert_eq!(obs.healthy.load(Ordering::SeqCst), NODES);
    }

    // Every report counted, whichever replica took it (and the one killed).
    // A replica reuses its rollout counters for up to 2 s (`stats_ttl`):
    // wait for them to catch up; a lost report never would.
    let last = Mutex::new(Value::Null);
    eventually(
        || format!("every healthy report counted: {}", last.lock().unwrap()),
        Duration::from_secs(30),
        async || {
            let r = rollout(&lb).await;
            let done = r["stats"]["healthy"] == NODES && r["stats"]["in_flight"] == 0;
            *last.lock().unwrap() = r;
            done
        },
    )
    .await;
    let r = rollout(&lb).await;
    assert_eq!(r["stats"]["healthy"], NODES, "{r}");
    assert_eq!(r["stats"]["in_flight"], 0, "{r}");
    assert_eq!(r["stats"]["failed"], 0, "{r}");
    assert_eq!(r["state"]["step"], 1, "{r}");
    let listed = lb.admin(&admin, "GET", "/nodes?limit=1000", None).await;
    let versions: HashMap<String, String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_owned(),
                n["version"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(versions.len(), NODES, "{listed}");
    assert!(versions.values().all(|v| v == "1.1.0"), "{versions:?}");
    // One ramp step, taken once (not by both replicas).
    let audit = lb
        .admin(
            &admin,
            "GET",
            "/audit?action=rollout.advance&limit=100",
            None,
        )
        .await;
    let steps: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == format!("rollout/{id}"))
        .collect();
    assert_eq!(steps.len(), 1, "{audit}");
    assert_eq!(steps[0]["actor"], "system");
}
