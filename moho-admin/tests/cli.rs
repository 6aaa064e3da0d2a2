//! `moho-admin` against the real update server (in-process on loopback,
//! SQLite and PostgreSQL, the harness of `update-server/tests/common`):
//! every command in text and `--json`, the documented exit codes, settings
//! from flags, environment and config file, revoked and expired tokens
//! refused, viewers unable to change anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../update-server/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::fleet::{BETA_NODES, STABLE_NODES, simulated_fleet};
use common::{TestNode, TestServer, backends, start};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

/// One run of the binary.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    /// Asserts success and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts exit `code` and an error code in the `--json` error body.
    fn refused(&self, code: i32, error: &str) {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert_eq!(self.json()["error"]["code"], error, "{}", self.stdout);
        assert!(!self.stderr.is_empty(), "an error is also said on stderr");
    }
}

/// Runs `moho-admin` with a clean environment: the server and token as
/// MOHO_SERVER / MOHO_TOKEN unless `env` says otherwise.
struct Runner {
    home: PathBuf,
    env: Vec<(String, String)>,
}

impl Runner {
    fn new(s: &TestServer, token: &str) -> Self {
        let home = tempfile::tempdir().unwrap().keep();
        Self {
            home,
            env: vec![
                ("MOHO_SERVER".into(), s.base.clone()),
                ("MOHO_TOKEN".into(), token.to_owned()),
            ],
        }
    }

    fn bare() -> Self {
        Self {
            home: tempfile::tempdir().unwrap().keep(),
            env: Vec::new(),
        }
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.spawn(args).await.unwrap()
    }

    /// Starts the binary; the handle gives its output once it exits.
    fn spawn(&self, args: &[&str]) -> tokio::task::JoinHandle<Out> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let home = self.home.clone();
        let env = self.env.clone();
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_moho-admin"))
                .args(&args)
                .env_clear()
                .env("HOME", &home)
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(env)
                .output()
                .unwrap();
            Out {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
    }

    /// Runs `args` as text and as `--json`; both must succeed.
    async fn both(&self, args: &[&str]) -> (String, Value) {
        let text = self.run(args).await.ok().to_owned();
        let mut j = args.to_vec();
        j.push("--json");
        let json = self.run(&j).await;
        json.ok();
        (text, json.json())
    }
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {v}"))
}

async fn audit_actions(s: &TestServer) -> Vec<String> {
    let a = s.admin("GET", "/audit?limit=1000", None).await;
    items(&a.body)
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_groups_nodes_and_fleetlock() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let fleet = simulated_fleet(&s).await;
        let admin = Runner::new(&s, &s.admin);
        let viewer = Runner::new(&s, &s.viewer);

        // whoami
        let (text, json) = viewer.both(&["whoami"]).await;
        assert!(text.starts_with("victor (viewer)"), "{text}");
        assert_eq!(json["role"], "viewer");

        // channels
        let (text, json) = viewer.both(&["channels", "list"]).await;
        assert!(
            text.starts_with("NAME") && text.contains("stable"),
            "{text}"
        );
        assert_eq!(items(&json).len(), 3, "{backend}");
        let t = admin.run(&["channels", "create", "edge"]).await;
        assert_eq!(t.ok().trim(), "created channel edge");
        let j = admin.run(&["channels", "create", "lts", "--json"]).await;
        assert_eq!(j.json()["name"], "lts");
        admin
            .run(&["channels", "create", "edge", "--json"])
            .await
            .refused(6, "exists");
        viewer
            .run(&["channels", "create", "dev", "--json"])
            .await
            .refused(4, "forbidden");
        let bad = admin
            .run(&["channels", "create", "Bad Name", "--json"])
            .await;
        bad.refused(2, "usage");
        assert!(bad.stderr.contains("\"Bad Name\""), "{}", bad.stderr);

        // groups
        let t = admin
            .run(&[
                "groups",
                "create",
                "db",
                "--fleetlock-slots",
                "2",
                "--fleetlock-lease",
                "30m",
            ])
            .await;
        assert_eq!(
            t.ok().trim(),
            "created group db (2 FleetLock slot(s), lease 30m)"
        );
        let j = admin.run(&["groups", "create", "web", "--json"]).await;
        assert_eq!(j.json()["fleetlock_slots"], 1);
        let j = admin
            .run(&["groups", "update", "db", "--fleetlock-slots", "3", "--json"])
            .await;
        assert_eq!(
            (
                j.json()["fleetlock_slots"].as_u64(),
                j.json()["fleetlock_lease_secs"].as_u64()
            ),
            (Some(3), Some(1800))
        );
        let t = admin
            .run(&["groups", "update", "web", "--fleetlock-lease", "2h"])
            .await;
        assert!(t.ok().contains("lease 2h"), "{}", t.stdout);
        admin
            .run(&["groups", "update", "web", "--json"])
            .await
            .refused(2, "usage");
        let (text, json) = viewer.both(&["groups", "show", "db"]).await;
        assert!(text.contains("db") && text.contains("30m"), "{text}");
        assert_eq!(json["name"], "db");
        let (text, json) = viewer.both(&["groups", "list"]).await;
        assert!(text.contains("default") && text.contains("web"), "{text}");
        assert_eq!(items(&json).len(), 3);
        viewer
            .run(&["groups", "show", "nosuch", "--json"])
            .await
            .refused(5, "unknown_group");

        // nodes list with filters and paging
        let (text, json) = viewer.both(&["nodes", "list", "--channel", "beta"]).await;
        assert_eq!(items(&json).len(), BETA_NODES);
        assert_eq!(text.lines().count(), BETA_NODES + 1, "{text}");
        assert!(json.get("next_after").is_none());
        let j = viewer
            .run(&["nodes", "list", "--limit", "10", "--json"])
            .await
            .json();
        assert_eq!(items(&j).len(), 10);
        let next = j["next_after"].as_str().unwrap().to_owned();
        let j2 = viewer
            .run(&["nodes", "list", "--limit", "10", "--after", &next, "--json"])
            .await
            .json();
        assert!(items(&j2)[0]["id"].as_str().unwrap() > next.as_str());
        let all = viewer
            .run(&["nodes", "list", "--all", "--json"])
            .await
            .json();
        assert_eq!(items(&all).len(), STABLE_NODES + BETA_NODES);
        let t = viewer.run(&["nodes", "list", "--limit", "5"]).await;
        assert!(t.ok().contains("(more: --after "), "{}", t.stdout);

        // nodes show, with the latest events
        let rolled = &fleet.stable[0].id;
        let (text, json) = viewer.both(&["nodes", "show", rolled]).await;
        assert!(text.contains(&format!("node {rolled}")), "{text}");
        assert_eq!(json["node"]["id"], rolled.as_str());
        let (text, json) = viewer.both(&["nodes", "show", &fleet.hostile]).await;
        assert!(text.contains("error"), "{text}");
        assert!(
            items(&serde_json::json!({"items": json["events"]}))
                .iter()
                .any(|e| e["severity"] == "error"),
            "{json}"
        );
        viewer
            .run(&["nodes", "show", "no-such-node", "--json"])
            .await
            .refused(5, "unknown_node");

        // FleetLock: holders of every group and of one; free the slot.
        let (text, json) = viewer.both(&["fleetlock", "holders"]).await;
        assert!(text.contains("node-059"), "{text}");
        let groups: Vec<&str> = items(&json)
            .iter()
            .map(|g| g["group"].as_str().unwrap())
            .collect();
        assert_eq!(groups, ["db", "default", "web"]);
        let j = viewer
            .run(&["fleetlock", "holders", "--group", "default", "--json"])
            .await
            .json();
        assert_eq!(items(&j)[0]["holders"][0]["node_id"], "node-059");
        viewer
            .run(&["fleetlock", "release", "default", "node-059", "--json"])
            .await
            .refused(4, "forbidden");
        let j = admin
            .run(&["fleetlock", "release", "default", "node-059", "--json"])
            .await;
        assert_eq!(j.json()["released"]["node_id"], "node-059");
        let t = admin
            .run(&["fleetlock", "release", "default", "node-059"])
            .await;
        assert_eq!(t.code, 5, "{t:?}");
        let j = viewer
            .run(&["fleetlock", "holders", "--group", "default", "--json"])
            .await
            .json();
        assert!(items(&j)[0]["holders"].as_array().unwrap().is_empty());

        // nodes delete and prune (dry run first); viewers refused
        let gone = fleet.stable[1].id.clone();
        viewer
            .run(&["nodes", "delete", &gone, "--json"])
            .await
            .refused(4, "forbidden");
        let t = admin.run(&["nodes", "delete", &gone]).await;
        assert_eq!(t.ok().trim(), format!("deleted node {gone}"));
        admin
            .run(&["nodes", "delete", &gone, "--json"])
            .await
            .refused(5, "unknown_node");
        // Two hours on, only the beta nodes check in again.
        s.clock.advance(SignedDuration::from_hours(2));
        for i in 0..BETA_NODES {
            let mut n = TestNode::new(&format!("beta-{i}"));
            n.channel = "beta".into();
            n.counter = 1000;
            assert_eq!(n.check_in(&s).await.status, 200);
        }
        let stale = STABLE_NODES - 1;
        let (text, json) = admin
            .both(&["nodes", "prune", "--stale", "1h", "--dry-run"])
            .await;
        assert!(
            text.ends_with(&format!("{stale} node(s) would be forgotten\n")),
            "{text}"
        );
        assert_eq!(items(&json).len(), stale);
        assert_eq!(
            viewer
                .run(&["nodes", "list", "--stale", "1h", "--all", "--json"])
                .await
                .json()["items"]
                .as_array()
                .unwrap()
                .len(),
            stale,
            "a dry run forgets nothing"
        );
        viewer
            .run(&["nodes", "prune", "--stale", "1h", "--json"])
            .await
            .refused(4, "forbidden");
        let j = admin
            .run(&["nodes", "prune", "--stale", "1h", "--json"])
            .await;
        assert_eq!(j.json()["removed"], stale as u64);
        let t = admin.run(&["nodes", "prune", "--stale", "1h"]).await;
        assert_eq!(t.ok().trim(), "forgot 0 node(s) not seen for 1h");
        let left = viewer
            .run(&["nodes", "list", "--all", "--json"])
            .await
            .json();
        assert_eq!(items(&left).len(), BETA_NODES);

        // All of it is in the audit log under the admin token's name.
        let actions = audit_actions(&s).await;
        for a in [
            "alice channel.create",
            "alice group.create",
            "alice group.update",
            "alice node.delete",
            "alice nodes.prune",
            "alice fleetlock.release",
        ] {
            assert!(actions.iter().any(|x| x == a), "{a} missing: {actions:?}");
        }
        assert!(
            !actions.iter().any(|x| x.starts_with("victor")),
            "{actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_holds_and_releases() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let fleet = simulated_fleet(&s).await;
        s.add_release("1.2.0", &["stable", "beta"]).await;
        let admin = Runner::new(&s, &s.admin);
        let viewer = Runner::new(&s, &s.viewer);

        // releases
        let (text, json) = viewer.both(&["releases", "list"]).await;
        assert!(text.contains("1.2.0") && text.contains("64 MiB"), "{text}");
        assert_eq!(items(&json).len(), 2);
        let j = viewer
            .run(&["releases", "list", "--channel", "lts", "--json"])
            .await
            .json();
        assert!(items(&j).is_empty());
        // No trusted root on this server: a sync is refused, and says why.
        admin
            .run(&["releases", "sync", "--json"])
            .await
            .refused(6, "no_trusted_root");

        // rollouts: create from flags (the board found from the release)
        let t = admin
            .run(&[
                "rollouts",
                "create",
                "1.2.0",
                "--channel",
                "beta",
                "--ramp",
                "10:1h,50:2h,100",
                "--max-in-flight",
                "3",
                "--window",
                "mon-sun 00:00 24h UTC",
                "--auto-pause",
                "20/5",
                "--health-gate",
                "90",
            ])
            .await;
        let line = t.ok().trim().to_owned();
        assert!(
            line.starts_with("created rollout ")
                && line
                    .contains("1.2.0 (amd64-generic) to beta/default, starting at 10% of 5 nodes"),
            "{line}"
        );
        let id: i64 = line["created rollout ".len()..]
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let ids = id.to_string();
        let (text, json) = viewer.both(&["rollouts", "show", &ids]).await;
        assert!(text.contains("status:     active"), "{text}");
        assert_eq!(json["policy"]["max_in_flight"], 3);
        assert_eq!(json["policy"]["auto_pause"]["min_sample"], 5);
        assert_eq!(json["policy"]["windows"][0]["time_zone"], "UTC");
        // from a policy file, as JSON
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.json");
        std::fs::write(
            &file,
            r#"{"steps": [{"percent": 100}], "max_in_flight": 2}"#,
        )
        .unwrap();
        let j = admin
            .run(&[
                "rollouts",
                "create",
                "1.2.0",
                "--board",
                "amd64-generic",
                "--channel",
                "stable",
                "--group",
                "default",
                "--policy",
                file.to_str().unwrap(),
                "--json",
            ])
            .await;
        let second = j.json()["id"].as_i64().unwrap();
        assert_eq!(j.json()["current_percent"], 100.0);
        // bad input never reaches the server
        let before = items(&s.admin("GET", "/rollouts", None).await.body).len();
        admin
            .run(&["rollouts", "create", "1.2.0", "--channel", "beta", "--json"])
            .await
            .refused(2, "usage");
        let bad = admin
            .run(&[
                "rollouts",
                "create",
                "1.2.0",
                "--channel",
                "beta",
                "--ramp",
                "50,10",
            ])
            .await;
        assert_eq!(bad.code, 2);
        assert!(
            bad.stderr.contains("larger than the step before"),
            "{}",
            bad.stderr
        );
        admin
            .run(&[
                "rollouts",
                "create",
                "9.9.9",
                "--channel",
                "beta",
                "--ramp",
                "100",
                "--json",
            ])
            .await
            .refused(2, "usage");
        // ... and what only the server knows is refused by it
        admin
            .run(&[
                "rollouts",
                "create",
                "1.2.0",
                "--board",
                "amd64-generic",
                "--channel",
                "lts",
                "--ramp",
                "100",
                "--json",
            ])
            .await
            .refused(6, "unknown_channel");
        assert_eq!(
            items(&s.admin("GET", "/rollouts", None).await.body).len(),
            before
        );
        viewer
            .run(&[
                "rollouts",
                "create",
                "1.2.0",
                "--channel",
                "beta",
                "--ramp",
                "100",
                "--json",
            ])
            .await
            .refused(4, "forbidden");

        // list with filters
        let (text, json) = viewer.both(&["rollouts", "list"]).await;
        assert_eq!(items(&json).len(), 3);
        assert!(text.lines().next().unwrap().starts_with("ID"), "{text}");
        let j = viewer
            .run(&["rollouts", "list", "--channel", "beta", "--json"])
            .await
            .json();
        assert_eq!(items(&j).len(), 1);

        // holds and pins
        let until = (s.now() + SignedDuration::from_hours(24 * 30)).to_string();
        let t = admin
            .run(&["holds", "create", "--group", "default", "--until", &until])
            .await;
        let line = t.ok().trim().to_owned();
        assert!(line.contains("hold of group default until"), "{line}");
        let node = fleet.stable[3].id.clone();
        let j = admin
            .run(&[
                "holds", "create", "--node", &node, "--pin", "1.1.0", "--for", "7d", "--json",
            ])
            .await
            .json();
        assert_eq!(
            (
                j["type"].as_str(),
                j["version"].as_str(),
                j["target"]["name"].as_str()
            ),
            (Some("pin"), Some("1.1.0"), Some(node.as_str()))
        );
        let pin_until: Timestamp = j["until"].as_str().unwrap().parse().unwrap();
        let expected = Timestamp::now() + SignedDuration::from_hours(24 * 7);
        assert!(
            (pin_until - expected).get_seconds().abs() < 120,
            "--for counts from now: {pin_until} vs {expected}"
        );
        admin
            .run(&[
                "holds", "create", "--node", &node, "--pin", "one", "--for", "1d", "--json",
            ])
            .await
            .refused(6, "invalid_version");
        admin
            .run(&["holds", "create", "--group", "default", "--json"])
            .await
            .refused(2, "usage");
        viewer
            .run(&[
                "holds", "create", "--group", "default", "--for", "1d", "--json",
            ])
            .await
            .refused(4, "forbidden");
        let (text, json) = viewer.both(&["holds", "list"]).await;
        assert!(
            text.contains("pin to 1.1.0") && text.contains("hold"),
            "{text}"
        );
        assert_eq!(items(&json).len(), 2);
        let hold_id = items(&json)[0]["id"].as_i64().unwrap().to_string();
        let pin_id = items(&json)[1]["id"].as_i64().unwrap().to_string();
        // The held group's nodes are told to wait (1.2.0 is at 100% in
        // stable/default).
        let mut n = TestNode::new(&fleet.stable[10].id);
        n.counter = 10_000;
        let a = n.check_in(&s).await;
        assert_eq!(
            (a.body["action"].as_str(), a.body["code"].as_str()),
            (Some("wait"), Some("held")),
            "{:?}",
            a.body
        );
        let t = admin.run(&["holds", "delete", &hold_id]).await;
        assert_eq!(t.ok().trim(), format!("deleted hold {hold_id}"));
        let j = admin.run(&["holds", "delete", &pin_id, "--json"]).await;
        assert_eq!(j.json()["deleted"]["hold"].as_i64(), pin_id.parse().ok());
        admin
            .run(&["holds", "delete", &pin_id, "--json"])
            .await
            .refused(5, "unknown_hold");
        assert!(items(&viewer.run(&["holds", "list", "--json"]).await.json()).is_empty());

        // pause, resume, change the policy, abort, revert
        let t = admin.run(&["rollouts", "pause", &ids]).await;
        assert_eq!(t.ok().trim(), format!("rollout {id} paused: now paused"));
        let j = viewer
            .run(&["rollouts", "list", "--status", "paused", "--json"])
            .await
            .json();
        assert_eq!(items(&j)[0]["id"], id);
        admin
            .run(&["rollouts", "pause", &ids, "--json"])
            .await
            .refused(6, "invalid_action");
        let j = admin.run(&["rollouts", "resume", &ids, "--json"]).await;
        assert_eq!(j.json()["state"]["status"], "active");
        let t = admin
            .run(&[
                "rollouts",
                "policy",
                &ids,
                "--max-in-flight",
                "7",
                "--no-windows",
            ])
            .await;
        assert!(
            t.ok().starts_with(&format!("rollout {id}: policy changed")),
            "{}",
            t.stdout
        );
        let j = admin
            .run(&["rollouts", "policy", &ids, "--ramp", "20,100", "--json"])
            .await
            .json();
        assert_eq!(j["policy"]["max_in_flight"], 7, "other settings kept");
        assert_eq!(j["policy"]["windows"], serde_json::json!([]));
        assert_eq!(j["policy"]["steps"].as_array().unwrap().len(), 2);
        assert_eq!(j["policy"]["auto_pause"]["min_sample"], 5);
        admin
            .run(&["rollouts", "policy", &ids, "--json"])
            .await
            .refused(2, "usage");
        viewer
            .run(&["rollouts", "pause", &ids, "--json"])
            .await
            .refused(4, "forbidden");
        let t = admin.run(&["rollouts", "abort", &ids]).await;
        assert_eq!(t.ok().trim(), format!("rollout {id} aborted: now aborted"));
        admin
            .run(&["rollouts", "policy", &ids, "--max-in-flight", "1", "--json"])
            .await
            .refused(6, "invalid_action");
        let j = admin
            .run(&["rollouts", "revert", &fleet.rollout.to_string(), "--json"])
            .await;
        assert_eq!(j.json()["state"]["status"], "reverted");
        let t = admin
            .run(&["rollouts", "revert", &second.to_string()])
            .await;
        assert!(t.ok().contains("now reverted"), "{}", t.stdout);
        viewer
            .run(&["rollouts", "show", "999999", "--json"])
            .await
            .refused(5, "unknown_rollout");

        let actions = audit_actions(&s).await;
        for a in [
            "alice rollout.create",
            "alice rollout.pause",
            "alice rollout.resume",
            "alice rollout.policy",
            "alice rollout.abort",
            "alice rollout.revert",
            "alice hold.create",
            "alice hold.delete",
        ] {
            assert!(actions.iter().any(|x| x == a), "{a} missing: {actions:?}");
        }
    }
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_audit_settings_and_exit_codes() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let admin = Runner::new(&s, &s.admin);
        let viewer = Runner::new(&s, &s.viewer);

        // tokens: create (the secret alone on the first line), list, use.
        let t = admin
            .run(&[
                "tokens",
                "create",
                "ci",
                "--role",
                "admin",
                "--expires-in",
                "1h",
            ])
            .await;
        let ci = t.ok().lines().next().unwrap().to_owned();
        assert!(ci.starts_with("moho_"), "{}", t.stdout);
        assert!(
            t.stdout.contains("created admin token \"ci\""),
            "{}",
            t.stdout
        );
        let j = admin
            .run(&["tokens", "create", "grafana", "--role", "viewer", "--json"])
            .await
            .json();
        let grafana = j["secret"].as_str().unwrap().to_owned();
        let grafana_id = j["token"]["id"].as_str().unwrap().to_owned();
        assert!(j["token"].get("expires_at").is_none());
        admin
            .run(&["tokens", "create", "grafana", "--role", "viewer", "--json"])
            .await
            .refused(6, "exists");
        viewer
            .run(&["tokens", "create", "x", "--role", "admin", "--json"])
            .await
            .refused(4, "forbidden");
        viewer
            .run(&["tokens", "list", "--json"])
            .await
            .refused(4, "forbidden");
        let (text, json) = admin.both(&["tokens", "list"]).await;
        assert!(
            !text.contains(&ci) && !json.to_string().contains(&ci),
            "no secret listed"
        );
        assert!(
            text.contains("grafana") && text.contains("live, no expiry"),
            "{text}"
        );
        assert_eq!(items(&json).len(), 4);
        let ci_run = Runner::new(&s, &ci);
        let (text, _) = ci_run.both(&["whoami"]).await;
        assert!(text.starts_with("ci (admin)"), "{text}");
        let j = ci_run
            .run(&["channels", "create", "from-ci", "--json"])
            .await;
        assert_eq!(j.json()["name"], "from-ci");

        // Expired: refused at once, and the list hides it unless asked.
        s.clock
            .set(Timestamp::now() + SignedDuration::from_hours(2));
        let e = ci_run.run(&["channels", "list", "--json"]).await;
        e.refused(4, "token_expired");
        assert!(
            e.stderr.contains("\"ci\"") && e.stderr.contains("expired"),
            "{}",
            e.stderr
        );
        let j = admin.run(&["tokens", "list", "--json"]).await.json();
        assert!(!j.to_string().contains("\"ci\""));
        let t = admin.run(&["tokens", "list", "--all"]).await;
        assert!(t.ok().contains(" ci "), "{}", t.stdout);

        // Revoked: by name, then by id; refused at the next request.
        let g = Runner::new(&s, &grafana);
        g.run(&["channels", "list"]).await.ok();
        let t = admin.run(&["tokens", "revoke", "grafana"]).await;
        assert_eq!(
            t.ok().trim(),
            format!("revoked token \"grafana\" ({grafana_id})")
        );
        g.run(&["channels", "list", "--json"])
            .await
            .refused(4, "token_revoked");
        admin
            .run(&["tokens", "revoke", &grafana_id, "--json"])
            .await
            .refused(6, "already_revoked");
        let j = admin
            .run(&["tokens", "create", "temp", "--role", "viewer", "--json"])
            .await
            .json();
        let temp_id = j["token"]["id"].as_str().unwrap().to_owned();
        let j = admin
            .run(&["tokens", "revoke", &temp_id, "--json"])
            .await
            .json();
        assert!(j["revoked_at"].is_string());
        admin
            .run(&["tokens", "revoke", "nobody", "--json"])
            .await
            .refused(5, "unknown_token");
        admin
            .run(&["tokens", "revoke", "alice", "--json"])
            .await
            .refused(6, "last_admin");

        // audit, with filters
        let (text, json) = viewer.both(&["audit", "--limit", "3"]).await;
        assert_eq!(items(&json).len(), 3);
        assert_eq!(text.lines().count(), 4, "{text}");
        let j = viewer
            .run(&["audit", "--action", "token.", "--actor", "alice", "--json"])
            .await
            .json();
        let got: Vec<&str> = items(&j)
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            got,
            [
                "token.revoke",
                "token.create",
                "token.revoke",
                "token.create",
                "token.create"
            ]
        );
        let subject = format!("token/{grafana_id}");
        let j = viewer
            .run(&["audit", "--subject", &subject, "--json"])
            .await
            .json();
        assert_eq!(items(&j).len(), 2);
        let last = items(&j)[0]["id"].as_i64().unwrap().to_string();
        let j = viewer
            .run(&["audit", "--subject", &subject, "--before", &last, "--json"])
            .await
            .json();
        assert_eq!(items(&j)[0]["action"], "token.create");
        let t = viewer.run(&["audit", "--actor", "ci"]).await;
        assert!(t.ok().contains("channel.create"), "{}", t.stdout);

        // Settings: a config file with a token file, relative to it.
        let dir = tempfile::tempdir().unwrap();
        write_private(&dir.path().join("viewer.token"), &format!("{}\n", s.viewer));
        let config = dir.path().join("admin.toml");
        write_private(
            &config,
            &format!(
                "server = \"{}\"\ntoken_file = \"viewer.token\"\ntimeout = \"10s\"\n",
                s.base
            ),
        );
        let bare = Runner::bare();
        let t = bare
            .run(&["--config", config.to_str().unwrap(), "whoami"])
            .await;
        assert!(t.ok().starts_with("victor (viewer)"), "{}", t.stdout);
        // The default place, ~/.config/moho/admin.toml.
        let cfg_dir = bare.home.join(".config/moho");
        std::fs::create_dir_all(&cfg_dir).unwrap();
        std::fs::copy(
            dir.path().join("viewer.token"),
            cfg_dir.join("viewer.token"),
        )
        .unwrap();
        std::fs::copy(&config, cfg_dir.join("admin.toml")).unwrap();
        let t = bare.run(&["whoami", "--json"]).await;
        assert_eq!(t.json()["name"], "victor");
        // A flag beats the file.
        let t = bare.run(&["--token", &s.admin, "whoami"]).await;
        assert!(t.ok().starts_with("alice (admin)"), "{}", t.stdout);
        // Errors in the settings name the file, key and value.
        let broken = dir.path().join("broken.toml");
        std::fs::write(&broken, "server = \"https://x\"\ntokenfile = \"t\"\n").unwrap();
        let t = bare
            .run(&["--config", broken.to_str().unwrap(), "whoami", "--json"])
            .await;
        t.refused(2, "bad_config");
        assert!(
            t.stderr.contains("broken.toml") && t.stderr.contains("tokenfile"),
            "{}",
            t.stderr
        );
        let t = Runner::bare().run(&["whoami", "--json"]).await;
        t.refused(2, "usage");
        assert!(t.stderr.contains("no server"), "{}", t.stderr);
        let t = Runner::bare()
            .run(&["--server", &s.base, "whoami", "--json"])
            .await;
        t.refused(2, "usage");
        assert!(t.stderr.contains("no token"), "{}", t.stderr);

        // Unreachable server: exit 3. No token or a wrong one: exit 4.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        Runner::bare()
            .run(&[
                "--server",
                &format!("http://127.0.0.1:{port}"),
                "--token",
                "moho_x",
                "whoami",
                "--json",
            ])
            .await
            .refused(3, "unreachable");
        Runner::new(&s, "moho_not_a_token")
            .run(&["whoami", "--json"])
            .await
            .refused(4, "bad_token");
        // Usage errors from the parser exit 2 too.
        assert_eq!(admin.run(&["rollouts", "pause"]).await.code, 2);
        assert_eq!(admin.run(&["no-such-command"]).await.code, 2);
        // --help is complete enough to find the exit codes.
        let help = Runner::bare().run(&["--help"]).await;
        assert!(help.ok().contains("Exit codes"), "{}", help.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_filters_and_follows() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |_| {}).await;
        let mut fleet = simulated_fleet(&s).await;
        let viewer = Runner::new(&s, &s.viewer);

        let (text, json) = viewer.both(&["events", "--limit", "5"]).await;
        assert_eq!(items(&json).len(), 5, "{backend}");
        assert_eq!(text.lines().count(), 7, "{text}");
        assert!(text.ends_with("(older events not shown)\n"), "{text}");
        let ids: Vec<i64> = items(&json)
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
        assert_eq!(json["last_id"], ids[0]);
        let j = viewer
            .run(&["events", "--severity", "error", "--limit", "1000", "--json"])
            .await
            .json();
        let kinds: Vec<&str> = items(&j)
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"rollback") && kinds.contains(&"error"),
            "{kinds:?}"
        );
        assert!(
            kinds.iter().all(|k| *k == "rollback" || *k == "error"),
            "{kinds:?}"
        );
        let j = viewer
            .run(&[
                "events",
                "--kind",
                "healthy",
                "--channel",
                "stable",
                "--json",
            ])
            .await
            .json();
        assert!(!items(&j).is_empty());
        assert!(
            items(&j)
                .iter()
                .all(|e| e["kind"] == "healthy" && e["channel"] == "stable")
        );
        let j = viewer
            .run(&["events", "--channel", "beta", "--json"])
            .await
            .json();
        assert!(items(&j).is_empty(), "the beta nodes reported nothing");
        viewer
            .run(&["events", "--severity", "loud", "--json"])
            .await
            .refused(2, "usage");
        viewer
            .run(&["events", "--kind", "DROP TABLE", "--json"])
            .await
            .refused(6, "invalid_value");

        // --follow prints what arrives, as it arrives.
        let follower = viewer.spawn(&[
            "events",
            "--follow",
            "--interval",
            "200ms",
            "--count",
            "2",
            "--json",
            "--node",
            &fleet.stable[5].id,
        ]);
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        let n = &mut fleet.stable[5];
        let a = n
            .report(
                &s,
                vec![
                    moho_protocol::node::EventKind::Rebooting {
                        version: "1.1.0".into(),
                    },
                    moho_protocol::node::EventKind::Error {
                        version: None,
                        code: "watchdog".into(),
                        message: "no heartbeat".into(),
                    },
                ],
            )
            .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let out = tokio::time::timeout(std::time::Duration::from_secs(60), follower)
            .await
            .expect("the follower stops after 2 events")
            .unwrap();
        out.ok();
        let lines: Vec<Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<&str> = lines.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["rebooting", "error"], "{}", out.stdout);
        assert_eq!(lines[1]["severity"], "error");
        assert_eq!(lines[1]["event"]["code"], "watchdog");
    }
}

/// `moho-admin releases register-flatcar VERSION` of an amd64-usr release
/// for stable with `payload` and one `extra` file (`--json` instead of an
/// extra file: no extra, JSON output).
async fn register_flatcar(r: &Runner, version: &str, payload: &str, extra: &str) -> Out {
    let mut args = vec![
        "releases",
        "register-flatcar",
        version,
        "--board",
        "amd64-usr",
        "--channel",
        "stable",
        "--url",
        "https://mirror.example/amd64-usr/3815.2.1",
        "--payload",
        payload,
    ];
    if extra == "--json" {
        args.push("--json");
    } else {
        args.extend(["--extra", extra]);
    }
    r.run(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flatcar_releases_are_registered_listed_as_their_own_kind_and_rolled_out() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| {
            c.omaha = Some(update_server::config::OmahaConfig::default());
        })
        .await;
        s.add_release("1.2.0", &["stable"]).await;
        let admin = Runner::new(&s, &s.admin);
        let viewer = Runner::new(&s, &s.viewer);
        let sha256 = "ab".repeat(32);
        let payload = format!("flatcar_production_update.gz:465362904:{sha256}");
        let extra = format!("oem-azure.gz:2097152:{sha256}:{}", "cd".repeat(20));
        let out = register_flatcar(&admin, "3815.2.1", &payload, &extra).await;
        let by_viewer = register_flatcar(&viewer, "3815.2.9", &payload, "--json").await;
        let line = out.ok().trim().to_owned();
        assert!(
            line.starts_with("registered Flatcar release 3815.2.1 (amd64-usr) for stable")
                && line.contains("outside Moho's TUF chain"),
            "{line}"
        );
        by_viewer.refused(4, "forbidden");

        // Listed beside the Moho release, each with its kind.
        let (text, json) = viewer.both(&["releases", "list"]).await;
        let row = text
            .lines()
            .find(|l| l.starts_with("3815.2.1"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            row.contains("flatcar (Flatcar's key)") && row.contains("amd64-usr"),
            "{text}"
        );
        let row = text.lines().find(|l| l.starts_with("1.2.0")).unwrap();
        assert!(row.contains("moho (TUF)"), "{text}");
        let flatcar = items(&json)
            .iter()
            .find(|r| r["version"] == "3815.2.1")
            .unwrap();
        assert_eq!(flatcar["kind"], "flatcar");
        assert_eq!(
            flatcar["flatcar"]["url"],
            "https://mirror.example/amd64-usr/3815.2.1/"
        );
        assert_eq!(flatcar["flatcar"]["extra"][0]["sha1"], "cd".repeat(20));

        // Immutable; bad digests and malformed specs refused before sending.
        let again = register_flatcar(&admin, "3815.2.1", &payload, &extra).await;
        assert_eq!(again.code, 6, "{again:?}");
        assert!(again.stderr.contains("immutable"), "{}", again.stderr);
        let bad = register_flatcar(
            &admin,
            "3815.2.2",
            &format!("f.gz:10:{}", "zz".repeat(32)),
            &extra,
        )
        .await;
        assert_eq!(bad.code, 6, "{bad:?}");
        assert!(bad.stderr.contains("sha256"), "{}", bad.stderr);
        let bad = register_flatcar(&admin, "3815.2.2", "f.gz:ten:abc", &extra).await;
        assert_eq!(bad.code, 2, "{bad:?}");
        assert!(bad.stderr.contains("\"ten\""), "{}", bad.stderr);
        let audit = audit_actions(&s).await;
        assert_eq!(
            audit
                .iter()
                .filter(|a| a.ends_with(" release.register_flatcar"))
                .count(),
            1,
            "{audit:?}"
        );

        // Rolled out like any release.
        let out = admin
            .run(&[
                "rollouts",
                "create",
                "3815.2.1",
                "--channel",
                "stable",
                "--ramp",
                "100",
            ])
            .await;
        let line = out.ok().trim().to_owned();
        assert!(
            line.starts_with("created rollout ") && line.contains("3815.2.1 (amd64-usr)"),
            "{line}"
        );

        // A Flatcar node (an update_engine check, fixture of the server's
        // Omaha tests) is listed beside a Moho node, each with its kind.
        let check = include_bytes!("../../update-server/tests/omaha/update-check.xml");
        let a = s.post_raw("/v1/update/", &[], check.to_vec()).await;
        assert_eq!(a.status, 200, "{backend}: {a:?}");
        let mut moho = TestNode::new("moho-node-1");
        moho.check_in(&s).await;
        let flatcar_id = "5f3b8c2a9d1e4f6a8b7c0d2e4f6a8b10";
        let (text, json) = viewer.both(&["nodes", "list"]).await;
        for (id, kind) in [(flatcar_id, "flatcar"), ("moho-node-1", "moho")] {
            let row = text
                .lines()
                .find(|l| l.starts_with(id))
                .unwrap_or_else(|| panic!("{backend}: {id} not listed: {text}"));
            assert_eq!(
                row.split_whitespace().nth(1),
                Some(kind),
                "{backend}: {text}"
            );
        }
        assert_eq!(items(&json).len(), 2, "{backend}: {json}");
        let only = viewer
            .run(&["nodes", "list", "--kind", "flatcar", "--json"])
            .await
            .json();
        assert_eq!(items(&only).len(), 1, "{backend}: {only}");
        assert_eq!(items(&only)[0]["id"], flatcar_id);
        let text = viewer
            .run(&["nodes", "show", flatcar_id])
            .await
            .ok()
            .to_owned();
        assert!(
            text.contains("kind:       flatcar (update_engine over Omaha, unsigned reports)"),
            "{backend}: {text}"
        );
        let bad = viewer.run(&["nodes", "list", "--kind", "coreos"]).await;
        assert_eq!(bad.code, 2, "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_tokens_let_a_node_register_in_their_group() {
    for (backend, url) in backends().await {
        let s = start(&backend, &url, |c| c.open_registration = false).await;
        let admin = Runner::new(&s, &s.admin);
        let viewer = Runner::new(&s, &s.viewer);
        let t = admin
            .run(&[
                "enrollment-tokens",
                "create",
                "lab",
                "--group",
                "default",
                "--max-uses",
                "1",
                "--expires-in",
                "1d",
            ])
            .await;
        let secret = t.ok().lines().next().unwrap().to_owned();
        assert!(secret.starts_with("mohoenr_"), "{}", t.stdout);
        assert!(t.stdout.contains("1 use(s) allowed"), "{}", t.stdout);
        viewer
            .run(&["enrollment-tokens", "list", "--json"])
            .await
            .refused(4, "forbidden");
        admin
            .run(&[
                "enrollment-tokens",
                "create",
                "x",
                "--group",
                "nope",
                "--json",
            ])
            .await
            .refused(6, "unknown_group");

        let mut n = TestNode::new("enrolled-1");
        n.enrollment_token = Some(secret.clone());
        assert_eq!(n.check_in(&s).await.status, 200, "{backend}");
        let (text, json) = admin.both(&["enrollment-tokens", "list", "--all"]).await;
        assert!(
            text.contains("lab") && text.contains("1/1") && text.contains("used up"),
            "{text}"
        );
        assert!(!text.contains(&secret) && !json.to_string().contains(&secret));
        assert_eq!(items(&json)[0]["uses"], 1);

        let (text, json) = admin.both(&["enrollment-tokens", "list"]).await;
        assert!(
            items(&json).is_empty(),
            "{backend}: used up is not live: {text}"
        );
        let r = admin
            .run(&["enrollment-tokens", "create", "web", "--group", "default"])
            .await;
        assert!(r.ok().contains("created enrollment token"), "{}", r.stdout);
        let r = admin.run(&["enrollment-tokens", "revoke", "lab"]).await;
        assert!(
            r.ok().contains("revoked enrollment token \"lab\""),
            "{}",
            r.stdout
        );
    }
}
