//! The provisioning VM test's world (issue 14): one stock node OS image
//! (`image-tools os build`, [`super::node_os`]; no server address in it)
//! for every machine, the real update server, a
//! provision document per machine, and the places a document can be put
//! before a first boot — a `cidata` config drive, the ESP's
//! `moho/provision.toml`, a URL on the command line served over plain HTTP
//! (pinned by its hash), and an EC2-style metadata service on the guest's
//! `169.254.169.254` (a tiny loopback server behind qemu's guestfwd). The
//! disk is grown to four times its image before the first boot, raw or
//! qcow2 (`qemu-img resize`), and its GPT is checked with `sgdisk` and
//! `cgpt` afterwards.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::image::SCENARIO_FW_CFG;
use super::node_os::{self, Overlay, Release};
use super::qemu::{METADATA_GUEST_ADDRESS, METADATA_MAC, VmSpec};
use super::server::{GUEST_SERVER_IP, GUEST_SERVER_PORT, ServerTls, UpdateServer};
use super::story;
use crate::fleet::ReleaseRepo;
use crate::{ok, run};

/// The port the guest fetches a command-line URL from (`10.0.2.100:8080`).
pub const GUEST_DOC_PORT: u16 = 8080;

/// The test overlay's network file for the metadata card: its own address
/// on `169.254.169.0/24` (before the node OS's `80-moho-dhcp.network`,
/// which asks DHCP on every other card).
const METADATA_NETWORK: &str = "[Match]\nMACAddress={MAC}\n\n[Network]\nAddress={ADDR}\n\
     LinkLocalAddressing=no\nIPv6AcceptRA=no\n";

/// What the scenario prints first at every boot: the provisioning unit
/// and the agent (the mark-good unit is reported by the loop after it).
const UNITS_LINE: &str = "echo \"moho-test: units provision=$(systemctl is-active \
     moho-provision.service) agent=$(systemctl is-active moho-agent.service)\"\n";

/// A node's provision document, as an operator writes one: the update
/// server at [`GUEST_SERVER_IP`] with its CA inline and an enrolment
/// token, channel `stable` and a group, a host name, an SSH key for root,
/// and optionally `[health]` and `[reboot]` sections. The one builder of
/// the VM tests' documents (the story's and each provisioned machine's).
#[derive(Debug, Clone, Copy)]
pub struct NodeDoc<'a> {
    /// `hostname`.
    pub hostname: &'a str,
    /// The server's CA (PEM), `[server] ca`.
    pub ca_pem: &'a str,
    /// `[server] enrollment_token`.
    pub enrollment_token: &'a str,
    /// `[node] group`.
    pub group: &'a str,
    /// Root's one authorised SSH key.
    pub ssh_key: &'a str,
    /// `[health] deadline`, if set.
    pub health_deadline: Option<&'a str>,
    /// The `[reboot]` section as TOML (its `[reboot]` header and any
    /// `[[reboot.windows]]`), if set.
    pub reboot: Option<&'a str>,
}

impl NodeDoc<'_> {
    /// The document's TOML.
    pub fn render(&self) -> String {
        let mut doc = format!(
            "version = 1\nhostname = \"{}\"\n\n[server]\nurl = \"https://{GUEST_SERVER_IP}/\"\n\
             ca = '''\n{}'''\nenrollment_token = \"{}\"\n\n\
             [node]\nchannel = \"stable\"\ngroup = \"{}\"\n\n",
            self.hostname, self.ca_pem, self.enrollment_token, self.group
        );
        if let Some(deadline) = self.health_deadline {
            doc.push_str(&format!("[health]\ndeadline = \"{deadline}\"\n\n"));
        }
        if let Some(reboot) = self.reboot {
            doc.push_str(reboot.trim_end());
            doc.push_str("\n\n");
        }
        doc.push_str(&format!(
            "[[users]]\nname = \"root\"\nssh_authorized_keys = [\"{}\"]\n",
            self.ssh_key
        ));
        doc
    }
}

/// The releases, the server and the scenario shared by every machine.
#[derive(Debug)]
pub struct ProvisionWorld {
    /// The signed repository (the tests' keys; the images' trusted root).
    pub repo: ReleaseRepo,
    /// The update server.
    pub server: UpdateServer,
    /// The first release (its stock disk is every machine's).
    pub first: Release,
    scenario: PathBuf,
    /// Where machines' files go.
    pub dir: PathBuf,
    /// The enrolment token of each group (registration is closed).
    tokens: std::collections::BTreeMap<String, String>,
}

/// The test overlay every VM test's node OS starts from: the scenario
/// unit, and the static address of the metadata card (a cloud's DHCP
/// gives it one; qemu's user network on that card has none to give). The
/// story's releases ([`super::story::overlay`]) add their health check to
/// it; the provisioning machines boot the healthy one, so that their
/// releases and the story's are the same builds.
pub fn overlay() -> Overlay {
    Overlay::scenario().file(
        "etc/systemd/network/05-metadata.network",
        0o644,
        &METADATA_NETWORK
            .replace("{MAC}", METADATA_MAC)
            .replace("{ADDR}", METADATA_GUEST_ADDRESS),
    )
}

impl ProvisionWorld {
    /// Builds (`image-tools os build`, cached) and publishes `releases`
    /// with [`overlay`], starts the server and creates `groups` on it.
    pub fn new(dir: &Path, releases: &[&str], groups: &[&str]) -> Self {
        let repo = node_os::repository(&dir.join("releases"));
        let server_dir = dir.join("server");
        let tls = ServerTls::create(&server_dir);
        let mut first = None;
        for (i, version) in releases.iter().enumerate() {
            let release = story::release(version, story::Behaviour::Healthy, i == 0);
            repo.add(&release.image(), &["stable"]);
            first.get_or_insert(release);
        }
        let server = UpdateServer::start_with(
            tls,
            &server_dir,
            &repo.repo,
            &repo.root(),
            &["--check-interval", "1m"],
        );
        server.sync_releases();
        let mut tokens = std::collections::BTreeMap::new();
        for g in groups {
            let (status, body) = server.api("POST", "/api/v1/groups", Some(json!({"name": g})));
            assert_eq!(status, 201, "creating group {g}: {body}");
            // As an operator does: an enrolment token per group, which the
            // group's provision documents carry.
            let (status, body) = server.api(
                "POST",
                "/api/v1/enrollment-tokens",
                Some(json!({"name": format!("enrol-{g}"), "group": g})),
            );
            assert_eq!(status, 201, "creating the enrolment token of {g}: {body}");
            let secret = body["secret"].as_str().unwrap().to_owned();
            tokens.insert((*g).to_owned(), secret);
        }
        let scenario = dir.join("scenario.sh");
        std::fs::write(
            &scenario,
            format!("{UNITS_LINE}{}", story::REPORTING_SCENARIO),
        )
        .unwrap();
        Self {
            first: first.expect("at least one release"),
            repo,
            server,
            scenario,
            dir: dir.to_owned(),
            tokens,
        }
    }

    /// A provision document: this server (CA inline) and the enrolment
    /// token of `group`, channel `stable`, `group`, `hostname`, `key` for
    /// root.
    pub fn doc(&self, hostname: &str, group: &str, key: &str) -> String {
        NodeDoc {
            hostname,
            ca_pem: &self.server.ca_pem,
            enrollment_token: self
                .tokens
                .get(group)
                .unwrap_or_else(|| panic!("no enrolment token for group {group}")),
            group,
            ssh_key: key,
            health_deadline: None,
            reboot: None,
        }
        .render()
    }

    /// A fresh stock disk `name` (`raw` or `qcow2`), grown to four times
    /// its image with `qemu-img resize`; returns it and the image's size.
    pub fn grown_disk(&self, name: &str, format: &str) -> (PathBuf, u64) {
        self.first.grown_disk(&self.dir.join(name), format)
    }

    /// The VM for `disk`: direct boot, the server reachable, the scenario;
    /// no provision document (each transport adds its own).
    pub fn vm_spec(&self, disk: &Path, format: &'static str) -> VmSpec {
        let mut spec = VmSpec::direct(disk, &self.first.vmlinuz(), &self.first.initrd());
        spec.disk_format = format;
        spec.hardware_watchdog = true;
        spec.guest_forwards
            .push((GUEST_SERVER_PORT, self.server.port));
        spec.fw_cfg
            .push((SCENARIO_FW_CFG.into(), self.scenario.clone()));
        spec
    }

    /// A vfat config drive labelled `CIDATA` whose `user-data` is `doc`.
    pub fn cidata(&self, name: &str, doc: &str) -> PathBuf {
        let img = self.dir.join(name);
        let _ = std::fs::remove_file(&img);
        let text = self.dir.join(format!("{name}.user-data"));
        std::fs::write(&text, doc).unwrap();
        ok(
            "mkfs.vfat",
            [
                OsStr::new("-C"),
                OsStr::new("-n"),
                OsStr::new("CIDATA"),
                img.as_os_str(),
                OsStr::new("8192"),
            ],
        );
        ok(
            "mcopy",
            [
                OsStr::new("-i"),
                img.as_os_str(),
                text.as_os_str(),
                OsStr::new("::user-data"),
            ],
        );
        img
    }

    /// Writes `doc` to `moho/provision.toml` on the ESP of the raw `disk`,
    /// as an operator does after writing the image (mtools, no mount).
    pub fn put_on_esp(&self, disk: &Path, doc: &str) {
        let start: u64 = ok(
            "partx",
            [
                OsStr::new("-g"),
                OsStr::new("-o"),
                OsStr::new("START"),
                OsStr::new("-n"),
                OsStr::new("1"),
                disk.as_os_str(),
            ],
        )
        .trim()
        .parse()
        .unwrap();
        let target = format!("{}@@{}", disk.display(), start * 512);
        let text = self.dir.join("esp-provision.toml");
        std::fs::write(&text, doc).unwrap();
        // The stock disk's ESP has `moho/` already (the boot selector).
        let listed = run(
            "mdir",
            [OsStr::new("-i"), OsStr::new(&target), OsStr::new("::moho")],
        );
        if !listed.status.success() {
            ok(
                "mmd",
                [OsStr::new("-i"), OsStr::new(&target), OsStr::new("::moho")],
            );
        }
        ok(
            "mcopy",
            [
                OsStr::new("-i"),
                OsStr::new(&target),
                text.as_os_str(),
                OsStr::new("::moho/provision.toml"),
            ],
        );
    }
}

/// A free TCP port on 127.0.0.1 (for a forward to the guest).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A user's SSH key pair made on the host (`ssh-keygen`), and the stock
/// client logging in with it to a guest's sshd forwarded to `port`
/// ([`VmSpec::host_forwards`]). The guest's host key is recorded at the
/// first login and must stay the same after (`accept-new`): a node whose
/// host keys changed is refused.
#[derive(Debug)]
pub struct Ssh {
    key: PathBuf,
    known_hosts: PathBuf,
    /// The public key (`ssh-ed25519 AAAA... comment`).
    pub public: String,
    /// The host port forwarded to the guest's port 22.
    pub port: u16,
}

impl Ssh {
    /// A new ed25519 key pair `dir/name` and a free port.
    pub fn new(dir: &Path, name: &str) -> Self {
        let key = dir.join(name);
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(key.with_extension("pub"));
        ok(
            "ssh-keygen",
            [
                OsStr::new("-q"),
                OsStr::new("-t"),
                OsStr::new("ed25519"),
                OsStr::new("-N"),
                OsStr::new(""),
                OsStr::new("-C"),
                OsStr::new(&format!("{name}@moho-test")),
                OsStr::new("-f"),
                key.as_os_str(),
            ],
        );
        let public = std::fs::read_to_string(format!("{}.pub", key.display()))
            .unwrap()
            .trim()
            .to_owned();
        Self {
            known_hosts: dir.join(format!("{name}.known_hosts")),
            key,
            public,
            port: free_port(),
        }
    }

    /// Runs `command` as `user` on the guest; its output, or what ssh said.
    pub fn run(&self, user: &str, command: &str) -> Result<String, String> {
        let out = std::process::Command::new("ssh")
            .arg("-i")
            .arg(&self.key)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=20",
                "-o",
                "LogLevel=ERROR",
            ])
            .arg(format!("{user}@127.0.0.1"))
            .arg(command)
            .output()
            .expect("ssh (Debian package openssh-client)");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "ssh {user}@127.0.0.1 -p {} ({}): {}{}",
                self.port,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// [`Ssh::run`] until it succeeds (sshd starts once the node's host
    /// keys are made), for at most `timeout`.
    pub fn wait(&self, user: &str, command: &str, timeout: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.run(user, command) {
                Ok(out) => return out,
                Err(e) if std::time::Instant::now() >= deadline => {
                    panic!("no SSH login within {timeout:?}: {e}")
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_secs(3)),
            }
        }
    }
}

/// `sgdisk --verify` and `cgpt show -v` on `disk` (a qcow2 one through a
/// raw copy): what each says, panicking if either finds a problem.
pub fn check_table(disk: &Path, format: &str) -> String {
    let raw = if format == "raw" {
        disk.to_owned()
    } else {
        let raw = disk.with_extension("check.raw");
        ok(
            "qemu-img",
            [
                OsStr::new("convert"),
                OsStr::new("-O"),
                OsStr::new("raw"),
                disk.as_os_str(),
                raw.as_os_str(),
            ],
        );
        raw
    };
    let sgdisk = ok("sgdisk", [OsStr::new("--verify"), raw.as_os_str()]);
    assert!(
        sgdisk.contains("No problems found"),
        "sgdisk --verify {}: {sgdisk}",
        disk.display()
    );
    let cgpt = run(
        "cgpt",
        [OsStr::new("show"), OsStr::new("-v"), raw.as_os_str()],
    );
    assert!(cgpt.status.success(), "cgpt show -v: {cgpt:?}");
    let cgpt = String::from_utf8_lossy(&cgpt.stdout).into_owned();
    assert!(
        !cgpt.contains("INVALID") && !cgpt.to_ascii_lowercase().contains("error"),
        "cgpt show -v {}: {cgpt}",
        disk.display()
    );
    if raw != disk {
        let _ = std::fs::remove_file(&raw);
    }
    format!("{sgdisk}\n{cgpt}")
}

/// A plain HTTP server on loopback: `GET /p.toml` (a document named on the
/// command line) and an EC2-style metadata service (`PUT
/// /latest/api/token`, then `GET /latest/user-data` with the token). Each
/// connection is one request; what it was asked is recorded.
#[derive(Debug)]
pub struct DocServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `METHOD PATH STATUS` per request.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// The body of `GET /p.toml` and of the user data.
    pub body: Arc<Mutex<String>>,
}

/// The session token the metadata service hands out.
const TOKEN: &str = "moho-vm-imdsv2-token";

impl DocServer {
    /// Starts it, serving `body`.
    pub fn start(body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let body = Arc::new(Mutex::new(body.to_owned()));
        let (seen, text) = (requests.clone(), body.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let Ok(reader) = conn.try_clone() else {
                    continue;
                };
                let mut r = BufReader::new(reader);
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    headers.push(h.trim().to_ascii_lowercase());
                }
                let req = line
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                let token = headers
                    .iter()
                    .any(|h| h == &format!("x-aws-ec2-metadata-token: {TOKEN}"));
                let doc = text.lock().unwrap().clone();
                let (status, out) = match req.as_str() {
                    "GET /p.toml" => ("200 OK", doc),
                    "PUT /latest/api/token"
                        if headers
                            .iter()
                            .any(|h| h.starts_with("x-aws-ec2-metadata-token-ttl-seconds:")) =>
                    {
                        ("200 OK", TOKEN.to_owned())
                    }
                    "PUT /latest/api/token" => ("400 Bad Request", String::new()),
                    "GET /latest/user-data" if token => ("200 OK", doc),
                    "GET /latest/user-data" => ("401 Unauthorized", String::new()),
                    _ => ("404 Not Found", String::new()),
                };
                seen.lock().unwrap().push(format!(
                    "{req} {}",
                    status.split(' ').next().unwrap_or_default()
                ));
                let mut conn = conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{out}",
                    out.len()
                );
            }
        });
        Self {
            port,
            requests,
            body,
        }
    }

    /// What it was asked so far.
    pub fn seen(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::NodeDoc;
    use update_agent::provision::{doc, source::SourceName};

    #[test]
    fn the_node_document_is_what_the_agent_accepts_with_its_optional_sections() {
        let base = NodeDoc {
            hostname: "n1",
            ca_pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            enrollment_token: "tok",
            group: "g",
            ssh_key: "ssh-ed25519 AAAA n1@moho",
            health_deadline: None,
            reboot: None,
        };
        let source = SourceName::Credential("/x".into());
        let plain = doc::parse(&source, base.render().as_bytes()).unwrap();
        assert_eq!(plain.hostname.as_deref(), Some("n1"));
        assert!(plain.reboot.is_none() && plain.health.is_none());
        let full = NodeDoc {
            health_deadline: Some("2m"),
            reboot: Some("[reboot]\nstrategy = \"off\"\n"),
            ..base
        };
        let parsed = doc::parse(&source, full.render().as_bytes()).unwrap();
        assert_eq!(parsed.reboot.unwrap()["strategy"].as_str(), Some("off"));
        assert_eq!(parsed.health.unwrap()["deadline"].as_str(), Some("2m"));
        let server = parsed.server.unwrap();
        assert_eq!(server.enrollment_token.as_deref(), Some("tok"));
        assert_eq!(parsed.users.len(), 1);
    }
}
