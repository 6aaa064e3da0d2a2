//! A scripted Flatcar-like Omaha client for `tests/omaha.rs`: it builds its
//! requests from the fixture `template.xml` beside it the way Flatcar's
//! `update_engine` does (ping + update check + the "previous version"
//! event, or error 44 when it still runs the version it updated from; one
//! event per request while it updates; pings only while it waits for a
//! reboot), and reads the answers with its own serde types, independent of
//! the server's.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::TestServer;

/// Flatcar's application id, as update_engine sends it.
pub const APP_ID: &str = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}";

const TEMPLATE: &str = include_str!("template.xml");

/// A response as a client reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct Response {
    #[serde(rename = "@protocol")]
    pub protocol: String,
    #[serde(rename = "app", default)]
    pub apps: Vec<App>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct App {
    #[serde(rename = "@appid")]
    pub app_id: String,
    #[serde(rename = "@status")]
    pub status: String,
    #[serde(default)]
    pub ping: Option<Status>,
    #[serde(default)]
    pub updatecheck: Option<UpdateCheck>,
    #[serde(rename = "event", default)]
    pub events: Vec<Status>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    #[serde(rename = "@status")]
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UpdateCheck {
    #[serde(rename = "@status")]
    pub status: String,
    #[serde(default)]
    pub urls: Option<Urls>,
    #[serde(default)]
    pub manifest: Option<Manifest>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Urls {
    pub url: Vec<Url>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Url {
    #[serde(rename = "@codebase")]
    pub codebase: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(rename = "@version")]
    pub version: String,
    pub packages: Packages,
    pub actions: Actions,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Packages {
    pub package: Vec<Package>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    #[serde(rename = "@name")]
    pub name: String,
    #[serde(rename = "@size")]
    pub size: u64,
    #[serde(rename = "@hash_sha256", default)]
    pub hash_sha256: Option<String>,
    #[serde(rename = "@hash", default)]
    pub hash: Option<String>,
    #[serde(rename = "@required")]
    pub required: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Actions {
    pub action: Vec<Action>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    #[serde(rename = "@event")]
    pub event: String,
    #[serde(rename = "@sha256")]
    pub sha256: String,
}

/// One answer: HTTP status, body, and the parsed document if it is one.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub text: String,
    pub doc: Option<Response>,
}

impl Answer {
    /// The first app's answer.
    pub fn app(&self) -> &App {
        &self
            .doc
            .as_ref()
            .unwrap_or_else(|| panic!("not an omaha answer: {} {}", self.status, self.text))
            .apps[0]
    }

    /// The first app's update check status.
    pub fn check_status(&self) -> String {
        self.app()
            .updatecheck
            .as_ref()
            .map(|u| u.status.clone())
            .unwrap_or_else(|| panic!("no updatecheck in {}", self.text))
    }

    /// The offered manifest.
    pub fn manifest(&self) -> &Manifest {
        self.app()
            .updatecheck
            .as_ref()
            .and_then(|u| u.manifest.as_ref())
            .unwrap_or_else(|| panic!("no manifest in {}", self.text))
    }
}

/// A Flatcar node as update_engine presents it.
#[derive(Debug, Clone)]
pub struct FlatcarClient {
    pub machine_id: String,
    pub version: String,
    pub track: String,
    pub app_id: String,
    /// update_engine's `previous-version` pref: set when an update was
    /// applied, emptied after each update check.
    pub previous_version: Option<String>,
    /// Appended to the endpoint path (`?token=...`).
    pub query: String,
}

impl FlatcarClient {
    pub fn new(machine_id: &str) -> Self {
        Self {
            machine_id: machine_id.to_owned(),
            version: "3815.2.0".to_owned(),
            track: "stable".to_owned(),
            app_id: APP_ID.to_owned(),
            previous_version: None,
            query: String::new(),
        }
    }

    /// A request with `children` inside its `<app>`.
    pub fn body(&self, children: &str) -> String {
        TEMPLATE
            .replace("{{APPID}}", &self.app_id)
            .replace("{{VERSION}}", &self.version)
            .replace("{{TRACK}}", &self.track)
            .replace("{{MACHINE}}", &self.machine_id)
            .replace("{{BODY}}", children)
    }

    /// Posts `body` as update_engine would.
    pub async fn post_raw(&self, s: &TestServer, body: String) -> Answer {
        let r = s
            .http
            .post(format!("{}/v1/update/{}", s.base, self.query))
            .header("content-type", "text/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let doc = quick_xml::de::from_str(&text).ok();
        Answer { status, text, doc }
    }

    /// An update check: ping, updatecheck and the previous-version event
    /// (error 44 when the update did not take).
    pub async fn check(&mut self, s: &TestServer) -> Answer {
        let event = match self.previous_version.as_deref() {
            Some(p) if p == self.version => {
                "<event eventtype=\"3\" eventresult=\"0\" errorcode=\"44\"></event>".to_owned()
            }
            p => format!(
                "<event eventtype=\"3\" eventresult=\"2\" previousversion=\"{}\"></event>",
                p.unwrap_or("0.0.0.0")
            ),
        };
        self.previous_version = Some(String::new());
        self.post_raw(
            s,
            self.body(&format!(
                "        <ping active=\"1\"></ping>\n        <updatecheck></updatecheck>\n        {event}"
            )),
        )
        .await
    }

    /// A ping only (what update_engine sends while waiting for a reboot).
    pub async fn ping(&self, s: &TestServer) -> Answer {
        self.post_raw(s, self.body("        <ping active=\"1\"></ping>"))
            .await
    }

    /// One event.
    pub async fn event(&self, s: &TestServer, kind: u32, result: u32, code: Option<i64>) -> Answer {
        let code = code
            .map(|c| format!(" errorcode=\"{c}\""))
            .unwrap_or_default();
        self.post_raw(
            s,
            self.body(&format!(
                "        <event eventtype=\"{kind}\" eventresult=\"{result}\"{code}></event>"
            )),
        )
        .await
    }

    /// Downloads and installs what `offer` names, reporting each step as
    /// update_engine does; then waits for a reboot.
    pub async fn install(&mut self, s: &TestServer, offer: &Answer) {
        assert_eq!(offer.check_status(), "ok", "{}", offer.text);
        for (kind, result) in [(13, 1), (14, 1), (3, 1)] {
            let a = self.event(s, kind, result, None).await;
            assert_eq!(a.status, 200, "{}", a.text);
            assert_eq!(a.app().events.len(), 1, "{}", a.text);
        }
        self.previous_version = Some(self.version.clone());
    }
}

/// Registers a Flatcar release (amd64-usr, for `channels`) through the
/// admin API; returns its payload's hex SHA-256.
pub async fn register(s: &TestServer, version: &str, channels: &[&str]) -> String {
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(version.as_bytes()));
    let a = s
        .admin(
            "POST",
            "/releases/flatcar",
            Some(json!({
                "version": version,
                "board": "amd64-usr",
                "channels": channels,
                "url": format!("https://mirror.example/amd64-usr/{version}"),
                "payload": {"name": "flatcar_production_update.gz", "size": 123_456, "sha256": sha},
                "extra": [{"name": "oem-qemu.gz", "size": 42, "sha256": "cd".repeat(32)}],
            })),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    sha
}

/// Creates a rollout of Flatcar `version` to stable/default.
pub async fn rollout(s: &TestServer, version: &str, policy: Value) -> i64 {
    let a = s
        .admin(
            "POST",
            "/rollouts",
            Some(json!({"version": version, "board": "amd64-usr", "channel": "stable", "group": "default", "policy": policy})),
        )
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    a.body["id"].as_i64().unwrap()
}
