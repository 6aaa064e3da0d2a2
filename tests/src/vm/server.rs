//! The real `update-server` for the VM tests: started on a loopback port
//! with a certificate for the address the guest uses (`10.0.2.100`, which
//! qemu's user network forwards to that port), serving the signed
//! repository the tests publish, with an admin token for its API.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::ffi::OsStr;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::{Value, json};

use crate::{bin, ok};

/// The address the guest reaches the server at.
pub const GUEST_SERVER_IP: &str = "10.0.2.100";
/// The port the guest uses.
pub const GUEST_SERVER_PORT: u16 = 443;

/// A drop-in for the guest's agent pointing its repository and its server
/// at [`GUEST_SERVER_IP`], trusting the CA at `ca_path` in the guest.
pub fn agent_dropin(ca_path: &str) -> String {
    format!(
        "[repository]\nurl = \"https://{GUEST_SERVER_IP}/repo/\"\nca_cert = \"{ca_path}\"\n\
         [server]\nurl = \"https://{GUEST_SERVER_IP}/\"\nca_cert = \"{ca_path}\"\n"
    )
}

/// A running `update-server serve`; stopped on drop.
#[derive(Debug)]
pub struct UpdateServer {
    child: Child,
    /// Its loopback port.
    pub port: u16,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// PEM of the CA that signed its certificate.
    pub ca_pem: String,
    /// Its log.
    pub log: PathBuf,
    /// A bearer token with the admin role.
    pub admin_token: String,
    http: reqwest::blocking::Client,
}

/// The server's certificate, made before the server starts so that OS
/// images can trust its CA before there is a server.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// PEM of the CA that signed the certificate.
    pub ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

impl ServerTls {
    /// A CA and a certificate for [`GUEST_SERVER_IP`] and `127.0.0.1`,
    /// written under `dir`.
    pub fn create(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "moho VM test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec![GUEST_SERVER_IP.to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let cert = dir.join("server.pem");
        let key_file = dir.join("server.key");
        std::fs::write(&cert, leaf.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        Self {
            ca_pem: ca.pem(),
            cert,
            key: key_file,
        }
    }

    /// The certificate file (PEM).
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The private key file (PEM).
    pub fn key_path(&self) -> &Path {
        &self.key
    }
}

impl UpdateServer {
    /// Serves `repo` (trusting `trusted_root`) over HTTPS on a free port.
    /// Registration is open: the guests' images carry no enrolment token.
    pub fn start(dir: &Path, repo: &Path, trusted_root: &Path) -> Self {
        Self::start_with(
            ServerTls::create(dir),
            dir,
            repo,
            trusted_root,
            &["--open-registration"],
        )
    }

    /// Creates an enrolment token for `group` in the data directory under
    /// `dir` (before the server starts, so that a provision document can
    /// carry it); returns its secret.
    pub fn enrollment_token(dir: &Path, group: &str) -> String {
        ok(
            bin("update-server"),
            [
                OsStr::new("enrollment-token"),
                OsStr::new("create"),
                OsStr::new("--data-dir"),
                dir.join("data").as_os_str(),
                OsStr::new("--group"),
                OsStr::new(group),
            ],
        )
        .trim()
        .to_owned()
    }

    /// Like [`UpdateServer::start`] with a certificate made beforehand and
    /// further `serve` options (e.g. `--check-interval 1m`;
    /// `--open-registration` for guests without an enrolment token).
    pub fn start_with(
        tls: ServerTls,
        dir: &Path,
        repo: &Path,
        trusted_root: &Path,
        options: &[&str],
    ) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let data_dir = dir.join("data");
        let admin_token = ok(
            bin("update-server"),
            [
                OsStr::new("token"),
                OsStr::new("create"),
                OsStr::new("--data-dir"),
                data_dir.as_os_str(),
                OsStr::new("--role"),
                OsStr::new("admin"),
            ],
        )
        .trim()
        .to_owned();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("update-server.log");
        let child = Command::new(bin("update-server"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--repo")
            .arg(repo)
            .arg("--trusted-root")
            .arg(trusted_root)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--tls-cert")
            .arg(&tls.cert)
            .arg("--tls-key")
            .arg(&tls.key)
            .args(options)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("update-server.stderr")).unwrap())
            .spawn()
            .expect("starting update-server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "update-server did not listen on {port}; see {}",
                dir.join("update-server.stderr").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let http = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(tls.ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        Self {
            child,
            port,
            data_dir,
            ca_pem: tls.ca_pem.clone(),
            log,
            admin_token,
            http,
        }
    }

    /// A drop-in for the guest's `/run/moho/agent.d` pointing the agent's
    /// repository at this server, with the CA at `ca_path` in the guest.
    pub fn agent_dropin(&self, ca_path: &str) -> String {
        agent_dropin(ca_path)
    }

    /// Its base URL on loopback.
    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }

    /// One admin API call (`path` from `/api/v1/...`): status and JSON body
    /// (`null` if none).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("https://127.0.0.1:{}{path}", self.port);
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// Reads the releases in the repository into the server's database.
    pub fn sync_releases(&self) {
        let (status, body) = self.api("POST", "/api/v1/releases/sync", None);
        assert_eq!(status, 200, "{body}");
    }

    /// Starts a rollout of `version` to everyone on `stable`/`default` of
    /// `board` at once; returns its id.
    pub fn rollout(&self, version: &str, board: &str) -> i64 {
        let (status, body) = self.api(
            "POST",
            "/api/v1/rollouts",
            Some(
                json!({"version": version, "board": board, "channel": "stable",
                        "group": "default", "policy": {"steps": [{"percent": 100}]}}),
            ),
        );
        assert_eq!(status, 201, "{body}");
        body["id"].as_i64().unwrap()
    }

    /// The node counts of a rollout (`healthy`, `failed`, ...).
    pub fn rollout_stats(&self, id: i64) -> Value {
        self.api("GET", &format!("/api/v1/rollouts/{id}"), None).1["stats"].clone()
    }
}

impl Drop for UpdateServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
