//! The real `update-server` for the VM tests: started on a loopback port
//! with a certificate for the address the guest uses (`10.0.2.100`, which
//! qemu's user network forwards to that port), serving the signed
//! repository the tests publish.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::bin;

/// The address the guest reaches the server at.
pub const GUEST_SERVER_IP: &str = "10.0.2.100";
/// The port the guest uses.
pub const GUEST_SERVER_PORT: u16 = 443;

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
}

impl UpdateServer {
    /// Serves `repo` (trusting `trusted_root`) over HTTPS on a free port.
    pub fn start(dir: &Path, repo: &Path, trusted_root: &Path) -> Self {
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
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data_dir = dir.join("data");
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
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key_file)
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
        Self {
            child,
            port,
            data_dir,
            ca_pem: ca.pem(),
            log,
        }
    }

    /// A drop-in for the guest's `/run/moho/agent.d` pointing the agent's
    /// repository at this server, with the CA at `ca_path` in the guest.
    pub fn agent_dropin(&self, ca_path: &str) -> String {
        format!(
            "[repository]\nurl = \"https://{GUEST_SERVER_IP}/repo/\"\nca_cert = \"{ca_path}\"\n\
             [server]\nurl = \"https://{GUEST_SERVER_IP}/\"\nca_cert = \"{ca_path}\"\n"
        )
    }
}

impl Drop for UpdateServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
