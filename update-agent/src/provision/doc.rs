//! The provision document (DESIGN §8): TOML with `version = 1`, parsed
//! against a fixed schema into [`ProvisionDoc`]. Pure: bytes and the name of
//! their source in, a document or a typed error out.
//!
//! Every refusal names the source, the key (dotted, with array indices)
//! and the offending value: an unknown key, a value of the wrong type, a
//! bad value, a missing key, an unsupported version. Documents meant for
//! other provisioning systems are recognised and refused by name: an
//! Ignition config (JSON with an `ignition` object), a cloud-init
//! `#cloud-config`, a user-data script (`#!`).

use std::fmt;

use toml::{Table, Value};

use super::source::SourceName;

/// The only document version this agent reads.
pub const VERSION: i64 = 1;

/// A parsed, checked provision document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProvisionDoc {
    /// The node's host name.
    pub hostname: Option<String>,
    /// `[server]`: the update server.
    pub server: Option<ServerPart>,
    /// `[repository]`: where the signed releases are.
    pub repository: RepositoryPart,
    /// `[node]`: channel and group.
    pub node: NodePart,
    /// `[reboot]`, copied into the agent's drop-in as written (the agent's
    /// own validation checks the values).
    pub reboot: Option<Table>,
    /// `[health]` (the trial's `deadline`), copied into the agent's drop-in
    /// as written, like `[reboot]`.
    pub health: Option<Table>,
    /// `[[users]]`: SSH authorized keys per user.
    pub users: Vec<UserKeys>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPart {
    /// `url`: the server's base URL.
    pub url: String,
    /// `ca`: PEM of the CA that signed its certificate (inline).
    pub ca: Option<String>,
    /// `enrollment_token`.
    pub enrollment_token: Option<String>,
}

/// `[repository]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepositoryPart {
    /// `url` (default: the server's `repo/`).
    pub url: Option<String>,
    /// `root`: the trusted TUF root (JSON, inline).
    pub root: Option<String>,
    /// `ca`: PEM for the repository's HTTPS (default: the server's CA).
    pub ca: Option<String>,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodePart {
    /// `channel`.
    pub channel: Option<String>,
    /// `group`.
    pub group: Option<String>,
}

/// One `[[users]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeys {
    /// `name`: the login.
    pub name: String,
    /// `ssh_authorized_keys`: `authorized_keys` lines.
    pub ssh_authorized_keys: Vec<String>,
}

/// A document that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// Not TOML.
    #[error("{origin}: not a TOML provision document: {detail}")]
    Syntax {
        /// Where it came from.
        origin: SourceName,
        /// The parser's message.
        detail: String,
    },
    /// An Ignition config.
    #[error(
        "{origin}: this is an Ignition config (ignition.version {version}); Moho reads its own \
         provision document (TOML, version = 1, see docs/provisioning.md), not Ignition"
    )]
    Ignition {
        /// Where it came from.
        origin: SourceName,
        /// Its `ignition.version`, or `?`.
        version: String,
    },
    /// A cloud-init config or a user-data script.
    #[error(
        "{origin}: this is a cloud-init {what}; Moho reads its own provision document (TOML, \
         version = 1, see docs/provisioning.md)"
    )]
    CloudInit {
        /// Where it came from.
        origin: SourceName,
        /// `#cloud-config` or `user-data script`.
        what: &'static str,
    },
    /// A key the schema does not have.
    #[error("{origin}: unknown key {key} = {value}")]
    UnknownKey {
        /// Where it came from.
        origin: SourceName,
        /// The dotted key.
        key: String,
        /// Its value.
        value: String,
    },
    /// A value of the wrong TOML type.
    #[error("{origin}: key {key} must be {expected}, not {value}")]
    WrongType {
        /// Where it came from.
        origin: SourceName,
        /// The dotted key.
        key: String,
        /// What the schema wants.
        expected: &'static str,
        /// What the document has.
        value: String,
    },
    /// A value of the right type that is not acceptable.
    #[error("{origin}: key {key} = {value}: {why}")]
    BadValue {
        /// Where it came from.
        origin: SourceName,
        /// The dotted key.
        key: String,
        /// The value.
        value: String,
        /// Why not.
        why: String,
    },
    /// A required key is absent.
    #[error("{origin}: key {key} is missing")]
    Missing {
        /// Where it came from.
        origin: SourceName,
        /// The dotted key.
        key: String,
    },
}

/// What a key holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Int,
    Str,
    StrArray,
    Table(&'static [(&'static str, Kind)]),
    TableArray(&'static [(&'static str, Kind)]),
}

impl Kind {
    const fn expected(self) -> &'static str {
        match self {
            Self::Int => "an integer",
            Self::Str => "a string",
            Self::StrArray => "an array of strings",
            Self::Table(_) => "a table",
            Self::TableArray(_) => "an array of tables",
        }
    }
}

const WINDOW: &[(&str, Kind)] = &[
    ("days", Kind::StrArray),
    ("start", Kind::Str),
    ("length", Kind::Str),
    ("time_zone", Kind::Str),
];

const SCHEMA: &[(&str, Kind)] = &[
    ("version", Kind::Int),
    ("hostname", Kind::Str),
    (
        "server",
        Kind::Table(&[
            ("url", Kind::Str),
            ("ca", Kind::Str),
            ("enrollment_token", Kind::Str),
        ]),
    ),
    (
        "repository",
        Kind::Table(&[("url", Kind::Str), ("root", Kind::Str), ("ca", Kind::Str)]),
    ),
    (
        "node",
        Kind::Table(&[("channel", Kind::Str), ("group", Kind::Str)]),
    ),
    (
        "reboot",
        Kind::Table(&[
            ("strategy", Kind::Str),
            ("max_user_delay", Kind::Str),
            ("max_inhibitor_wait", Kind::Str),
            ("fleet_lock_url", Kind::Str),
            ("fleet_lock_group", Kind::Str),
            ("windows", Kind::TableArray(WINDOW)),
        ]),
    ),
    ("health", Kind::Table(&[("deadline", Kind::Str)])),
    (
        "users",
        Kind::TableArray(&[("name", Kind::Str), ("ssh_authorized_keys", Kind::StrArray)]),
    ),
];

/// A value as the error messages show it (TOML, at most 80 characters).
fn show(v: &Value) -> String {
    let s = match v {
        Value::Table(t) if t.is_empty() => "{}".to_owned(),
        Value::Table(_) => "a table".to_owned(),
        other => other.to_string(),
    };
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(79).collect::<String>())
    } else {
        s
    }
}

/// Parses and checks a provision document from `source`.
pub fn parse(source: &SourceName, bytes: &[u8]) -> Result<ProvisionDoc, DocError> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if let Some(e) = foreign(source, trimmed) {
        return Err(e);
    }
    let table: Table = trimmed
        .parse()
        .map_err(|e: toml::de::Error| DocError::Syntax {
            origin: source.clone(),
            detail: e.message().to_owned(),
        })?;
    check(source, "", &table, SCHEMA)?;
    Reader {
        source,
        table: &table,
    }
    .doc()
}

/// Ignition and cloud-init documents, recognised by their shape.
fn foreign(source: &SourceName, text: &str) -> Option<DocError> {
    if text.starts_with('{')
        && let Ok(json) = serde_json::from_str::<serde_json::Value>(text)
        && let Some(ign) = json.get("ignition")
    {
        let version = ign
            .get("version")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned();
        return Some(DocError::Ignition {
            origin: source.clone(),
            version,
        });
    }
    if text.starts_with("#cloud-config") {
        return Some(DocError::CloudInit {
            origin: source.clone(),
            what: "#cloud-config",
        });
    }
    if text.starts_with("#!") {
        return Some(DocError::CloudInit {
            origin: source.clone(),
            what: "user-data script",
        });
    }
    None
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Every key known and of the right type, recursively.
fn check(
    source: &SourceName,
    prefix: &str,
    table: &Table,
    schema: &[(&str, Kind)],
) -> Result<(), DocError> {
    for (key, value) in table {
        let path = join(prefix, key);
        let Some(&(_, kind)) = schema.iter().find(|(k, _)| k == key) else {
            return Err(DocError::UnknownKey {
                origin: source.clone(),
                key: path,
                value: show(value),
            });
        };
        let wrong = || DocError::WrongType {
            origin: source.clone(),
            key: path.clone(),
            expected: kind.expected(),
            value: show(value),
        };
        match (kind, value) {
            (Kind::Int, Value::Integer(_)) | (Kind::Str, Value::String(_)) => {}
            (Kind::StrArray, Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_str() {
                        return Err(DocError::WrongType {
                            origin: source.clone(),
                            key: format!("{path}[{i}]"),
                            expected: Kind::Str.expected(),
                            value: show(item),
                        });
                    }
                }
            }
            (Kind::Table(inner), Value::Table(t)) => check(source, &path, t, inner)?,
            (Kind::TableArray(inner), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let Value::Table(t) = item else {
                        return Err(DocError::WrongType {
                            origin: source.clone(),
                            key: format!("{path}[{i}]"),
                            expected: Kind::Table(inner).expected(),
                            value: show(item),
                        });
                    };
                    check(source, &format!("{path}[{i}]"), t, inner)?;
                }
            }
            _ => return Err(wrong()),
        }
    }
    Ok(())
}

/// Reads the checked table into a [`ProvisionDoc`] (types are known good).
struct Reader<'a> {
    source: &'a SourceName,
    table: &'a Table,
}

impl Reader<'_> {
    fn bad(&self, key: &str, value: &str, why: impl fmt::Display) -> DocError {
        DocError::BadValue {
            origin: self.source.clone(),
            key: key.to_owned(),
            value: show(&Value::String(value.to_owned())),
            why: why.to_string(),
        }
    }

    fn missing(&self, key: &str) -> DocError {
        DocError::Missing {
            origin: self.source.clone(),
            key: key.to_owned(),
        }
    }

    fn doc(&self) -> Result<ProvisionDoc, DocError> {
        let t = self.table;
        match t.get("version") {
            None => return Err(self.missing("version")),
            Some(Value::Integer(VERSION)) => {}
            Some(v) => {
                return Err(DocError::BadValue {
                    origin: self.source.clone(),
                    key: "version".into(),
                    value: show(v),
                    why: format!("this agent reads version {VERSION} only"),
                });
            }
        }
        let hostname = str_at(t, "hostname")
            .map(|h| {
                check_hostname(h)
                    .map_err(|why| self.bad("hostname", h, why))
                    .map(|()| h.to_owned())
            })
            .transpose()?;
        let server = match sub(t, "server") {
            None => None,
            Some(s) => {
                let url = str_at(s, "url").ok_or_else(|| self.missing("server.url"))?;
                check_url(url).map_err(|why| self.bad("server.url", url, why))?;
                let ca = str_at(s, "ca")
                    .map(|pem| self.pem("server.ca", pem))
                    .transpose()?;
                Some(ServerPart {
                    url: url.to_owned(),
                    ca,
                    enrollment_token: str_at(s, "enrollment_token").map(str::to_owned),
                })
            }
        };
        let mut repository = RepositoryPart::default();
        if let Some(r) = sub(t, "repository") {
            if let Some(url) = str_at(r, "url") {
                check_url(url).map_err(|why| self.bad("repository.url", url, why))?;
                repository.url = Some(url.to_owned());
            }
            if let Some(root) = str_at(r, "root") {
                serde_json::from_str::<serde_json::Value>(root)
                    .map_err(|e| self.bad("repository.root", root, format!("not JSON: {e}")))?;
                repository.root = Some(root.to_owned());
            }
            repository.ca = str_at(r, "ca")
                .map(|pem| self.pem("repository.ca", pem))
                .transpose()?;
        }
        let node = sub(t, "node").map_or_else(NodePart::default, |n| NodePart {
            channel: str_at(n, "channel").map(str::to_owned),
            group: str_at(n, "group").map(str::to_owned),
        });
        let mut users = Vec::new();
        if let Some(Value::Array(list)) = t.get("users") {
            for (i, u) in list.iter().enumerate() {
                let Value::Table(u) = u else { continue };
                let key = |k: &str| format!("users[{i}].{k}");
                let name = str_at(u, "name").ok_or_else(|| self.missing(&key("name")))?;
                check_user(name).map_err(|why| self.bad(&key("name"), name, why))?;
                let mut keys = Vec::new();
                if let Some(Value::Array(lines)) = u.get("ssh_authorized_keys") {
                    for (j, line) in lines.iter().filter_map(Value::as_str).enumerate() {
                        check_key(line).map_err(|why| {
                            self.bad(&format!("users[{i}].ssh_authorized_keys[{j}]"), line, why)
                        })?;
                        keys.push(line.trim().to_owned());
                    }
                }
                if users.iter().any(|x: &UserKeys| x.name == name) {
                    return Err(self.bad(&key("name"), name, "user listed twice"));
                }
                users.push(UserKeys {
                    name: name.to_owned(),
                    ssh_authorized_keys: keys,
                });
            }
        }
        Ok(ProvisionDoc {
            hostname,
            server,
            repository,
            node,
            reboot: sub(t, "reboot").cloned(),
            health: sub(t, "health").cloned(),
            users,
        })
    }

    fn pem(&self, key: &str, pem: &str) -> Result<String, DocError> {
        if pem.contains("-----BEGIN CERTIFICATE-----") && pem.contains("-----END CERTIFICATE-----")
        {
            Ok(pem.to_owned())
        } else {
            Err(self.bad(
                key,
                pem,
                "not a PEM certificate (BEGIN/END CERTIFICATE lines)",
            ))
        }
    }
}

fn str_at<'t>(t: &'t Table, key: &str) -> Option<&'t str> {
    t.get(key).and_then(Value::as_str)
}

fn sub<'t>(t: &'t Table, key: &str) -> Option<&'t Table> {
    t.get(key).and_then(Value::as_table)
}

fn check_url(s: &str) -> Result<(), String> {
    let u = url::Url::parse(s).map_err(|e| e.to_string())?;
    match u.scheme() {
        "https" | "http" => Ok(()),
        other => Err(format!("scheme {other} (https or http only)")),
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and `-`,
/// each 1–63 long and not starting or ending with `-`; 253 at most.
fn check_hostname(h: &str) -> Result<(), String> {
    if h.is_empty() || h.len() > 253 {
        return Err(format!("length {} (1 to 253)", h.len()));
    }
    for label in h.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "label {label:?} is not a host name label (letters, digits, '-', 1 to 63)"
            ));
        }
    }
    Ok(())
}

/// A login name as `useradd` accepts it by default.
fn check_user(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    if first_ok
        && name.len() <= 32
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Ok(())
    } else {
        Err("not a login name ([a-z_][a-z0-9_-]*, at most 32)".into())
    }
}

/// One `authorized_keys` line: a key type `ssh-*`, `ecdsa-*` or `sk-*`
/// (options in front are allowed) and no line break.
fn check_key(line: &str) -> Result<(), String> {
    if line.contains(['\n', '\r']) {
        return Err("contains a line break (one key per string)".into());
    }
    let has_type = line
        .split_whitespace()
        .any(|w| w.starts_with("ssh-") || w.starts_with("ecdsa-sha2-") || w.starts_with("sk-"));
    if has_type {
        Ok(())
    } else {
        Err("not an authorized_keys line (no ssh-*, ecdsa-sha2-* or sk-* key type)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> SourceName {
        SourceName::Credential("/run/credentials/@system/moho.provision".into())
    }

    const FULL: &str = r#"
version = 1
hostname = "edge-17.example.com"

[server]
url = "https://updates.example.com/"
ca = """
-----BEGIN CERTIFICATE-----
MIIB
-----END CERTIFICATE-----
"""
enrollment_token = "t0ken"

[repository]
root = '{"signed": {}}'

[node]
channel = "beta"
group = "edge"

[reboot]
strategy = "windows"
[[reboot.windows]]
days = ["mon-fri"]
start = "02:00"
length = "3h"
time_zone = "Europe/Berlin"

[[users]]
name = "core"
ssh_authorized_keys = ["ssh-ed25519 AAAAC3Nz alice@laptop"]
"#;

    #[test]
    fn a_full_document_parses() {
        let d = parse(&src(), FULL.as_bytes()).unwrap();
        assert_eq!(d.hostname.as_deref(), Some("edge-17.example.com"));
        let s = d.server.unwrap();
        assert_eq!(s.url, "https://updates.example.com/");
        assert!(s.ca.unwrap().contains("MIIB"));
        assert_eq!(s.enrollment_token.as_deref(), Some("t0ken"));
        assert_eq!(d.repository.root.as_deref(), Some(r#"{"signed": {}}"#));
        assert_eq!(d.node.channel.as_deref(), Some("beta"));
        assert_eq!(d.node.group.as_deref(), Some("edge"));
        let reboot = d.reboot.unwrap();
        assert_eq!(reboot["strategy"].as_str(), Some("windows"));
        assert_eq!(
            d.users,
            [UserKeys {
                name: "core".into(),
                ssh_authorized_keys: vec!["ssh-ed25519 AAAAC3Nz alice@laptop".into()],
            }]
        );
    }

    #[test]
    fn only_the_version_is_required() {
        let d = parse(&src(), b"version = 1\n").unwrap();
        assert_eq!(d, ProvisionDoc::default());
        let e = parse(&src(), b"hostname = \"a\"\n").unwrap_err();
        assert_eq!(
            e,
            DocError::Missing {
                origin: src(),
                key: "version".into()
            }
        );
        let e = parse(&src(), b"version = 2\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("key version = 2: this agent reads version 1 only"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_name_source_key_and_value() {
        let e = parse(&src(), b"version = 1\n[node]\nchanel = \"beta\"\n").unwrap_err();
        assert_eq!(
            e,
            DocError::UnknownKey {
                origin: src(),
                key: "node.chanel".into(),
                value: "\"beta\"".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "systemd credential moho.provision (/run/credentials/@system/moho.provision): \
             unknown key node.chanel = \"beta\""
        );
        let e = parse(
            &src(),
            b"version = 1\n[[users]]\nname = \"core\"\nkeys = [\"x\"]\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown key users[0].keys = [\"x\"]"),
            "{e}"
        );
        let e = parse(
            &src(),
            b"version = 1\n[reboot]\n[[reboot.windows]]\nday = \"mon\"\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown key reboot.windows[0].day = \"mon\""),
            "{e}"
        );
    }

    #[test]
    fn wrong_types_name_what_was_expected() {
        for (doc, key, expected, value) in [
            ("version = \"1\"", "version", "an integer", "\"1\""),
            ("version = 1\nhostname = 7", "hostname", "a string", "7"),
            ("version = 1\nserver = \"x\"", "server", "a table", "\"x\""),
            (
                "version = 1\n[[users]]\nname = \"a\"\nssh_authorized_keys = \"ssh-ed25519 A\"",
                "users[0].ssh_authorized_keys",
                "an array of strings",
                "\"ssh-ed25519 A\"",
            ),
            (
                "version = 1\n[[users]]\nname = \"a\"\nssh_authorized_keys = [1]",
                "users[0].ssh_authorized_keys[0]",
                "a string",
                "1",
            ),
            ("version = 1\nusers = [1]", "users[0]", "a table", "1"),
            ("version = 1\nusers = 1", "users", "an array of tables", "1"),
        ] {
            let e = parse(&src(), doc.as_bytes()).unwrap_err();
            assert_eq!(
                e,
                DocError::WrongType {
                    origin: src(),
                    key: key.into(),
                    expected,
                    value: value.into()
                },
                "{doc}"
            );
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        for (doc, needle) in [
            (
                "version = 1\nhostname = \"-bad\"",
                "key hostname = \"-bad\": label \"-bad\"",
            ),
            (
                "version = 1\n[server]\nurl = \"ftp://x/\"",
                "key server.url = \"ftp://x/\": scheme ftp",
            ),
            (
                "version = 1\n[server]\nca = \"x\"",
                "key server.url is missing",
            ),
            (
                "version = 1\n[server]\nurl = \"https://x/\"\nca = \"nope\"",
                "key server.ca = \"nope\": not a PEM certificate",
            ),
            (
                "version = 1\n[repository]\nroot = \"{\"",
                "key repository.root = \"{\": not JSON",
            ),
            (
                "version = 1\n[[users]]\nname = \"Root\"",
                "key users[0].name = \"Root\": not a login name",
            ),
            (
                "version = 1\n[[users]]\nssh_authorized_keys = []",
                "key users[0].name is missing",
            ),
            (
                "version = 1\n[[users]]\nname = \"a\"\nssh_authorized_keys = [\"hello\"]",
                "key users[0].ssh_authorized_keys[0] = \"hello\": not an authorized_keys line",
            ),
            (
                "version = 1\n[[users]]\nname = \"a\"\n[[users]]\nname = \"a\"",
                "key users[1].name = \"a\": user listed twice",
            ),
        ] {
            let e = parse(&src(), doc.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(needle), "{doc}: {e}");
        }
    }

    #[test]
    fn ignition_and_cloud_init_are_recognised_and_refused_by_name() {
        let ign = br#"{"ignition": {"version": "3.4.0"}, "passwd": {}}"#;
        let e = parse(&src(), ign).unwrap_err();
        assert_eq!(
            e,
            DocError::Ignition {
                origin: src(),
                version: "3.4.0".into()
            }
        );
        assert!(e.to_string().contains("this is an Ignition config"), "{e}");
        let e = parse(&src(), b"#cloud-config\nusers: []\n").unwrap_err();
        assert!(e.to_string().contains("cloud-init #cloud-config"), "{e}");
        let e = parse(&src(), b"#!/bin/sh\necho hi\n").unwrap_err();
        assert!(e.to_string().contains("user-data script"), "{e}");
        // Other JSON or garbage is a plain syntax error naming the source.
        let e = parse(&src(), b"{\"x\": 1}").unwrap_err();
        assert!(matches!(e, DocError::Syntax { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("systemd credential moho.provision"),
            "{e}"
        );
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "x".repeat(500);
        let e = parse(
            &src(),
            format!("version = 1\nextra = \"{long}\"").as_bytes(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.len() < 250, "{e}");
        assert!(e.ends_with('…'), "{e}");
    }
}
