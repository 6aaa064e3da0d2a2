//! Where the server and the token come from, in three stages: raw values
//! from the flags, the environment and a TOML config file; merged (a flag
//! beats the environment, which beats the file); validated into
//! [`Settings`]. Every error names where the bad value came from.
//!
//! Config file (default `$XDG_CONFIG_HOME/moho/admin.toml`, else
//! `~/.config/moho/admin.toml`; `--config` or `MOHO_ADMIN_CONFIG` to
//! choose another):
//!
//! ```toml
//! server = "https://updates.example.org:8443"
//! token_file = "admin.token"      # relative to this file; or token = "moho_..."
//! ca_cert = "/etc/moho/ca.pem"    # when the server's certificate is from a private CA
//! timeout = "30s"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::error::CliError;

/// Environment variable naming the config file.
pub const ENV_CONFIG: &str = "MOHO_ADMIN_CONFIG";
/// Environment variable with the server URL.
pub const ENV_SERVER: &str = "MOHO_SERVER";
/// Environment variable with the token.
pub const ENV_TOKEN: &str = "MOHO_TOKEN";
/// Environment variable naming a file holding the token.
pub const ENV_TOKEN_FILE: &str = "MOHO_TOKEN_FILE";
/// Environment variable naming the CA certificate file.
pub const ENV_CA_CERT: &str = "MOHO_CA_CERT";

/// Raw values from one source, every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// Server base URL.
    pub server: Option<String>,
    /// Admin or viewer token.
    pub token: Option<String>,
    /// File holding the token.
    pub token_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// Request timeout, e.g. `30s`.
    pub timeout: Option<String>,
}

/// A value and where it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sourced<T> {
    value: T,
    from: String,
}

/// The merged values, each with its source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Merged {
    server: Option<Sourced<String>>,
    token: Option<Sourced<String>>,
    token_file: Option<Sourced<PathBuf>>,
    ca_cert: Option<Sourced<PathBuf>>,
    timeout: Option<Sourced<String>>,
}

/// What the commands use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Server base URL (`https://host:port/`).
    pub server: Url,
    /// The bearer token.
    pub token: String,
    /// Extra CA certificates (PEM).
    pub ca_cert: Option<PathBuf>,
    /// Request timeout.
    pub timeout: Duration,
}

/// Something that reads files and the environment (the real one, or a map
/// in tests).
pub trait Env {
    /// An environment variable, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
    /// A file's contents; `None` if it does not exist.
    fn read(&self, path: &Path) -> Result<Option<String>, std::io::Error>;
    /// Whether a file is readable by others than its owner.
    fn readable_by_others(&self, path: &Path) -> bool;
}

/// The process's environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealEnv;

impl Env for RealEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn read(&self, path: &Path) -> Result<Option<String>, std::io::Error> {
        match std::fs::read_to_string(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn readable_by_others(&self, path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
}

/// The config file to read: the explicit one (which must exist), else the
/// default one if present.
fn config_path(flag: Option<&Path>, env: &dyn Env) -> Option<(PathBuf, bool)> {
    if let Some(p) = flag {
        return Some((p.to_owned(), true));
    }
    if let Some(p) = env.var(ENV_CONFIG) {
        return Some((PathBuf::from(p), true));
    }
    let base = env
        .var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some((base.join("moho").join("admin.toml"), false))
}

fn read_config(
    path: &Path,
    explicit: bool,
    env: &dyn Env,
) -> Result<Option<RawSettings>, CliError> {
    let text = env.read(path).map_err(|source| CliError::File {
        path: path.to_owned(),
        source,
    })?;
    let Some(text) = text else {
        if explicit {
            return Err(CliError::Config {
                path: path.to_owned(),
                message: "no such file".into(),
            });
        }
        return Ok(None);
    };
    let mut raw: RawSettings = toml::from_str(&text).map_err(|e| CliError::Config {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })?;
    // Relative paths in the file are relative to the file.
    let dir = path.parent().unwrap_or(Path::new("."));
    for p in [&mut raw.token_file, &mut raw.ca_cert]
        .into_iter()
        .flatten()
    {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    }
    if raw.token.is_some() && env.readable_by_others(path) {
        eprintln!(
            "warning: {} holds a token and is readable by others: chmod 600 it",
            path.display()
        );
    }
    Ok(Some(raw))
}

fn sourced<T: Clone>(v: &Option<T>, from: &str) -> Option<Sourced<T>> {
    v.as_ref().map(|value| Sourced {
        value: value.clone(),
        from: from.to_owned(),
    })
}

/// Merges the sources: flags, then environment, then file. A token given
/// directly beats a token file from the same or a weaker source.
fn merge(sources: &[(String, RawSettings)]) -> Merged {
    let mut m = Merged::default();
    for (from, raw) in sources {
        m.server = m.server.or_else(|| sourced(&raw.server, from));
        if m.token.is_none() && m.token_file.is_none() {
            m.token = sourced(&raw.token, from);
            if m.token.is_none() {
                m.token_file = sourced(&raw.token_file, from);
            }
        }
        m.ca_cert = m.ca_cert.or_else(|| sourced(&raw.ca_cert, from));
        m.timeout = m.timeout.or_else(|| sourced(&raw.timeout, from));
    }
    m
}

fn validate(m: Merged, env: &dyn Env, config: Option<&Path>) -> Result<Settings, CliError> {
    let where_default = config.map_or_else(
        || "~/.config/moho/admin.toml".to_owned(),
        |p| p.display().to_string(),
    );
    let server = m.server.ok_or_else(|| {
        CliError::Usage(format!(
            "no server: give --server URL, set {ENV_SERVER}, or put server = \"https://...\" in {where_default}"
        ))
    })?;
    let url = Url::parse(&server.value)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "invalid server URL {:?} (from {}): use http(s)://host[:port]",
                server.value, server.from
            ))
        })?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        eprintln!(
            "warning: {} is plain HTTP: the token crosses the network unencrypted",
            url
        );
    }
    let token = match (m.token, m.token_file) {
        (Some(t), _) => t.value.trim().to_owned(),
        (None, Some(f)) => {
            let text = env
                .read(&f.value)
                .map_err(|source| CliError::File {
                    path: f.value.clone(),
                    source,
                })?
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "token file {} (from {}) does not exist",
                        f.value.display(),
                        f.from
                    ))
                })?;
            if env.readable_by_others(&f.value) {
                eprintln!(
                    "warning: token file {} is readable by others: chmod 600 it",
                    f.value.display()
                );
            }
            text.trim().to_owned()
        }
        (None, None) => {
            return Err(CliError::Usage(format!(
                "no token: give --token-file FILE, set {ENV_TOKEN} or {ENV_TOKEN_FILE}, or put token_file = \"...\" in {where_default}"
            )));
        }
    };
    if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CliError::Usage(
            "the token is empty or has spaces or control characters".into(),
        ));
    }
    let timeout = match m.timeout {
        None => Duration::from_secs(30),
        Some(t) => humantime::parse_duration(&t.value)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "invalid timeout {:?} (from {}): use e.g. 30s, 2m",
                    t.value, t.from
                ))
            })?,
    };
    Ok(Settings {
        server: url,
        token,
        ca_cert: m.ca_cert.map(|c| c.value),
        timeout,
    })
}

/// Resolves the settings from the flags (`flags`, with `--config` in
/// `config_flag`), the environment and the config file.
pub fn resolve(
    flags: &RawSettings,
    config_flag: Option<&Path>,
    env: &dyn Env,
) -> Result<Settings, CliError> {
    let from_env = RawSettings {
        server: env.var(ENV_SERVER),
        token: env.var(ENV_TOKEN),
        token_file: env.var(ENV_TOKEN_FILE).map(PathBuf::from),
        ca_cert: env.var(ENV_CA_CERT).map(PathBuf::from),
        timeout: None,
    };
    let mut sources = vec![
        ("the command line".to_owned(), flags.clone()),
        ("the environment".to_owned(), from_env),
    ];
    let path = config_path(config_flag, env);
    if let Some((path, explicit)) = &path
        && let Some(raw) = read_config(path, *explicit, env)?
    {
        sources.push((path.display().to_string(), raw));
    }
    validate(
        merge(&sources),
        env,
        path.as_ref().map(|(p, _)| p.as_path()),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    struct FakeEnv {
        vars: HashMap<String, String>,
        files: HashMap<PathBuf, String>,
        open: Vec<PathBuf>,
    }

    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn read(&self, path: &Path) -> Result<Option<String>, std::io::Error> {
            Ok(self.files.get(path).cloned())
        }
        fn readable_by_others(&self, path: &Path) -> bool {
            self.open.iter().any(|p| p == path)
        }
    }

    fn env(vars: &[(&str, &str)], files: &[(&str, &str)]) -> FakeEnv {
        FakeEnv {
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            files: files
                .iter()
                .map(|(k, v)| (PathBuf::from(k), (*v).to_owned()))
                .collect(),
            open: Vec::new(),
        }
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let file = "server = \"https://file.example:8443\"\ntoken_file = \"t\"\ntimeout = \"5s\"\n";
        let e = env(
            &[("HOME", "/home/op"), (ENV_SERVER, "https://env.example")],
            &[
                ("/home/op/.config/moho/admin.toml", file),
                ("/home/op/.config/moho/t", "moho_fromfile\n"),
            ],
        );
        let s = resolve(&RawSettings::default(), None, &e).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.server.as_str(), "https://env.example/");
        assert_eq!(
            s.token, "moho_fromfile",
            "token file relative to the config"
        );
        assert_eq!(s.timeout, Duration::from_secs(5));
        let flags = RawSettings {
            server: Some("https://flag.example".into()),
            token: Some("moho_flag".into()),
            ..RawSettings::default()
        };
        let s = resolve(&flags, None, &e).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.server.as_str(), s.token.as_str()),
            ("https://flag.example/", "moho_flag")
        );
    }

    #[test]
    fn errors_name_the_source_and_the_value() {
        let e = env(&[(ENV_SERVER, "ftp://x"), (ENV_TOKEN, "moho_t")], &[]);
        let err = resolve(&RawSettings::default(), None, &e)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("\"ftp://x\"") && err.contains("environment"),
            "{err}"
        );
        let e = env(&[(ENV_SERVER, "https://x")], &[]);
        let err = resolve(&RawSettings::default(), None, &e)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no token"), "{err}");
        let e = env(&[], &[("/c.toml", "sever = \"https://x\"\n")]);
        let err = resolve(&RawSettings::default(), Some(Path::new("/c.toml")), &e)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/c.toml") && err.contains("sever"), "{err}");
        let err = resolve(&RawSettings::default(), Some(Path::new("/none.toml")), &e)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/none.toml: no such file"), "{err}");
    }
}
