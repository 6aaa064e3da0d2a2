//! The real `update-server` binary on plain loopback HTTP (which it allows
//! on loopback), with its own data directory and admin and viewer tokens:
//! for tests of the repository routes and of `image-tools publish` that do
//! not need TLS. Stopped (killed) on drop.

use std::ffi::OsStr;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{bin, ok};

/// A running `update-server serve` on `127.0.0.1`.
#[derive(Debug)]
pub struct LocalServer {
    child: Child,
    /// Its port.
    pub port: u16,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The repository directory it serves (`--repo`).
    pub repo_dir: PathBuf,
    /// An admin token.
    pub admin_token: String,
    /// A viewer token.
    pub viewer_token: String,
    /// Its stderr (logs).
    pub log: PathBuf,
}

fn token(data_dir: &Path, role: &str) -> String {
    ok(
        bin("update-server"),
        [
            OsStr::new("token"),
            OsStr::new("create"),
            OsStr::new("--data-dir"),
            data_dir.as_os_str(),
            OsStr::new("--role"),
            OsStr::new(role),
            // Token names are unique among live tokens; name each after its role.
            OsStr::new("--name"),
            OsStr::new(role),
        ],
    )
    .trim()
    .to_owned()
}

impl LocalServer {
    /// Serves `repo_dir` (created if missing) trusting `trusted_root`, with
    /// its data under `dir`.
    pub fn start(dir: &Path, repo_dir: &Path, trusted_root: &Path) -> Self {
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        std::fs::create_dir_all(repo_dir).unwrap();
        let admin_token = token(&data_dir, "admin");
        let viewer_token = token(&data_dir, "viewer");
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
            .arg(repo_dir)
            .arg("--trusted-root")
            .arg(trusted_root)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            // The agents under test register without an enrolment token.
            .arg("--open-registration")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting update-server");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "update-server did not listen on {port}; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            data_dir,
            repo_dir: repo_dir.to_owned(),
            admin_token,
            viewer_token,
            log,
        }
    }

    /// Its base URL, `http://127.0.0.1:PORT/`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
