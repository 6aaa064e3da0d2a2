//! The files a provision document makes, rebuilt under `/run/moho` at every
//! boot (so an update to the next release keeps them) and the host name:
//!
//! | file | from |
//! |---|---|
//! | `agent.d/40-provision.toml` | `[server]`, `[repository]`, `[node]`, `[reboot]`, `[health]` |
//! | `provision/server-ca.pem`, `repository-ca.pem`, `root.json` | inline `ca` and `root` |
//! | `ssh/authorized_keys/<user>` | `[[users]]` (sshd: `AuthorizedKeysFile ... /run/moho/ssh/authorized_keys/%u`) |
//! | `provision/hostname` and the kernel's host name | `hostname` |

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::doc::ProvisionDoc;
use super::source::SourceName;

/// The agent drop-in, relative to the run directory.
pub const DROPIN: &str = "agent.d/40-provision.toml";

/// Sets the host name (the kernel's, transient).
pub trait Host {
    /// `sethostname(2)`.
    fn set_hostname(&mut self, name: &str) -> io::Result<()>;
}

/// The running machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveHost;

impl Host for LiveHost {
    fn set_hostname(&mut self, name: &str) -> io::Result<()> {
        nix::unistd::sethostname(name).map_err(io::Error::from)
    }
}

/// Records the host names it was given.
#[derive(Debug, Default, Clone)]
pub struct FakeHost {
    /// Every name set, in order.
    pub names: Vec<String>,
}

impl Host for FakeHost {
    fn set_hostname(&mut self, name: &str) -> io::Result<()> {
        self.names.push(name.to_owned());
        Ok(())
    }
}

/// Removes everything a previous boot's document made in `run_dir`.
pub fn clear(run_dir: &Path) -> io::Result<()> {
    for dir in ["provision", "ssh/authorized_keys"] {
        match fs::remove_dir_all(run_dir.join(dir)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    match fs::remove_file(run_dir.join(DROPIN)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes the derived files of `doc` under `run_dir` and sets the host
/// name; returns the files written.
pub fn apply(
    doc: &ProvisionDoc,
    source: &SourceName,
    run_dir: &Path,
    host: &mut dyn Host,
) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let prov = run_dir.join("provision");
    let mut put = |path: PathBuf, text: &str, mode: u32| -> io::Result<PathBuf> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, text)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
        written.push(path.clone());
        Ok(path)
    };

    let mut dropin = Table::new();
    fn section<'t>(dropin: &'t mut Table, name: &str) -> &'t mut Table {
        if !matches!(dropin.get(name), Some(Value::Table(_))) {
            dropin.insert(name.to_owned(), Value::Table(Table::new()));
        }
        match dropin.get_mut(name) {
            Some(Value::Table(t)) => t,
            _ => unreachable!("inserted above"),
        }
    }
    let path_value = |p: &Path| Value::String(p.display().to_string());
    let server_ca = match doc.server.as_ref().and_then(|s| s.ca.as_deref()) {
        Some(pem) => Some(put(prov.join("server-ca.pem"), pem, 0o644)?),
        None => None,
    };
    if let Some(s) = &doc.server {
        let t = section(&mut dropin, "server");
        t.insert("url".into(), Value::String(s.url.clone()));
        if let Some(ca) = &server_ca {
            t.insert("ca_cert".into(), path_value(ca));
        }
        if let Some(token) = &s.enrollment_token {
            t.insert("enrollment_token".into(), Value::String(token.clone()));
        }
    }
    let repo_url = doc.repository.url.clone().or_else(|| {
        doc.server.as_ref().and_then(|s| {
            url::Url::parse(&s.url)
                .and_then(|u| {
                    let base = if u.path().ends_with('/') {
                        u
                    } else {
                        url::Url::parse(&format!("{u}/"))?
                    };
                    base.join("repo/")
                })
                .ok()
                .map(String::from)
        })
    });
    if let Some(url) = repo_url {
        section(&mut dropin, "repository").insert("url".into(), Value::String(url));
    }
    let repo_ca = match doc.repository.ca.as_deref() {
        Some(pem) => Some(put(prov.join("repository-ca.pem"), pem, 0o644)?),
        None => server_ca.clone(),
    };
    if let Some(ca) = &repo_ca {
        section(&mut dropin, "repository").insert("ca_cert".into(), path_value(ca));
    }
    if let Some(root) = doc.repository.root.as_deref() {
        let p = put(prov.join("root.json"), root, 0o644)?;
        section(&mut dropin, "repository").insert("root".into(), path_value(&p));
    }
    for (key, value) in [("channel", &doc.node.channel), ("group", &doc.node.group)] {
        if let Some(v) = value {
            section(&mut dropin, "node").insert(key.into(), Value::String(v.clone()));
        }
    }
    if let Some(reboot) = &doc.reboot {
        dropin.insert("reboot".into(), Value::Table(reboot.clone()));
    }
    if let Some(health) = &doc.health {
        dropin.insert("health".into(), Value::Table(health.clone()));
    }
    let body = toml::to_string(&dropin).map_err(io::Error::other)?;
    put(
        run_dir.join(DROPIN),
        &format!(
            "# Made by `update-agent provision` from {source}; rebuilt at every boot.\n{body}"
        ),
        0o644,
    )?;

    for user in &doc.users {
        let mut text = user.ssh_authorized_keys.join("\n");
        text.push('\n');
        put(
            run_dir.join("ssh/authorized_keys").join(&user.name),
            &text,
            0o644,
        )?;
    }
    if let Some(name) = &doc.hostname {
        put(prov.join("hostname"), &format!("{name}\n"), 0o644)?;
        host.set_hostname(name)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provision::doc::parse;

    fn src() -> SourceName {
        SourceName::EspFile("/dev/vda1".into())
    }

    #[test]
    fn the_document_becomes_a_dropin_keys_and_a_host_name() {
        let run = tempfile::tempdir().unwrap();
        let doc = parse(
            &src(),
            br#"version = 1
hostname = "edge-17"
[server]
url = "https://10.0.2.100"
ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
enrollment_token = "tok"
[node]
channel = "beta"
group = "edge"
[reboot]
strategy = "off"
[health]
deadline = "2m"
[[users]]
name = "core"
ssh_authorized_keys = ["ssh-ed25519 AAAA alice", "ssh-rsa BBBB bob"]
"#,
        )
        .unwrap();
        let mut host = FakeHost::default();
        let written = apply(&doc, &src(), run.path(), &mut host).unwrap();
        assert_eq!(host.names, ["edge-17"]);
        let dropin = fs::read_to_string(run.path().join(DROPIN)).unwrap();
        assert!(
            dropin.starts_with(
                "# Made by `update-agent provision` from moho/provision.toml on the ESP (/dev/vda1)"
            ),
            "{dropin}"
        );
        let t: Table = dropin.parse().unwrap();
        let ca = run.path().join("provision/server-ca.pem");
        assert_eq!(t["server"]["url"].as_str(), Some("https://10.0.2.100"));
        assert_eq!(t["server"]["ca_cert"].as_str(), Some(ca.to_str().unwrap()));
        assert_eq!(t["server"]["enrollment_token"].as_str(), Some("tok"));
        assert_eq!(
            t["repository"]["url"].as_str(),
            Some("https://10.0.2.100/repo/")
        );
        assert_eq!(
            t["repository"]["ca_cert"].as_str(),
            Some(ca.to_str().unwrap())
        );
        assert_eq!(t["node"]["channel"].as_str(), Some("beta"));
        assert_eq!(t["node"]["group"].as_str(), Some("edge"));
        assert_eq!(t["reboot"]["strategy"].as_str(), Some("off"));
        assert_eq!(t["health"]["deadline"].as_str(), Some("2m"));
        assert!(fs::read_to_string(&ca).unwrap().contains("MIIB"));
        assert_eq!(
            fs::read_to_string(run.path().join("ssh/authorized_keys/core")).unwrap(),
            "ssh-ed25519 AAAA alice\nssh-rsa BBBB bob\n"
        );
        assert!(written.contains(&run.path().join(DROPIN)));

        // The next boot starts from nothing.
        clear(run.path()).unwrap();
        assert!(!run.path().join(DROPIN).exists());
        assert!(!run.path().join("provision").exists());
        assert!(!run.path().join("ssh/authorized_keys/core").exists());
        clear(run.path()).unwrap();
    }

    #[test]
    fn a_minimal_document_writes_an_empty_dropin_and_leaves_the_host_name() {
        let run = tempfile::tempdir().unwrap();
        let doc = parse(&src(), b"version = 1\n").unwrap();
        let mut host = FakeHost::default();
        apply(&doc, &src(), run.path(), &mut host).unwrap();
        assert!(host.names.is_empty());
        let t: Table = fs::read_to_string(run.path().join(DROPIN))
            .unwrap()
            .parse()
            .unwrap();
        assert!(t.is_empty(), "{t:?}");
    }
}
