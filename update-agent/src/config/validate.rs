//! Stage 3: from the merged keys to [`AgentConfig`]. Every problem is
//! collected (so an operator fixes them in one go) and named by file, key
//! and value; a missing required key names the directories searched.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::merge::{Merged, Sourced};
use super::types::{
    AgentConfig, HealthConfig, Name, NodeConfig, RebootConfig, RebootStrategy, RepositoryConfig,
    ServerConfig, UpdateConfig, WindowSpec,
};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or directory could not be read.
    #[error("{}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid TOML.
    #[error("{}: invalid TOML: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Keys are unknown, missing or have bad values.
    #[error("{}", Problems(.0))]
    Invalid(Vec<Problem>),
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A key the agent does not know (a typo, or a key of another version).
    Unknown {
        /// The file.
        file: PathBuf,
        /// The key.
        key: String,
    },
    /// A key with a value that is not allowed.
    BadValue {
        /// The file.
        file: PathBuf,
        /// The key.
        key: String,
        /// The value, as written.
        value: String,
        /// What is expected.
        why: String,
    },
    /// A required key that no file sets.
    Missing {
        /// The key.
        key: String,
        /// The directories searched.
        dirs: Vec<PathBuf>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { file, key } => write!(f, "{}: unknown key {key}", file.display()),
            Self::BadValue {
                file,
                key,
                value,
                why,
            } => write!(f, "{}: {key} = {value}: {why}", file.display()),
            Self::Missing { key, dirs } => {
                let dirs: Vec<_> = dirs.iter().map(|d| d.display().to_string()).collect();
                write!(
                    f,
                    "{key} is required but not set in any of {}",
                    dirs.join(", ")
                )
            }
        }
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: ")?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Reads keys out of the merged map, remembering which were used and
/// collecting problems.
struct Reader<'a> {
    merged: &'a Merged,
    dirs: &'a [PathBuf],
    used: RefCell<BTreeSet<String>>,
    problems: RefCell<Vec<Problem>>,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<&Sourced> {
        self.used.borrow_mut().insert(key.to_owned());
        self.merged.keys.get(key)
    }

    fn bad(&self, s: &Sourced, key: &str, why: impl Into<String>) {
        self.problems.borrow_mut().push(Problem::BadValue {
            file: s.file.clone(),
            key: key.to_owned(),
            value: s.value.to_string(),
            why: why.into(),
        });
    }

    fn missing(&self, key: &str) {
        self.problems.borrow_mut().push(Problem::Missing {
            key: key.to_owned(),
            dirs: self.dirs.to_vec(),
        });
    }

    /// A string value, parsed by `parse`.
    fn parsed<T>(&self, key: &str, parse: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        let s = self.get(key)?;
        let Some(text) = s.value.as_str() else {
            self.bad(s, key, "expected a string");
            return None;
        };
        match parse(text) {
            Ok(v) => Some(v),
            Err(why) => {
                self.bad(s, key, why);
                None
            }
        }
    }

    fn required<T>(&self, key: &str, parse: impl Fn(&str) -> Result<T, String>) -> Option<T> {
        if !self.merged.keys.contains_key(key) {
            self.used.borrow_mut().insert(key.to_owned());
            self.missing(key);
            return None;
        }
        self.parsed(key, parse)
    }

    fn integer(&self, key: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
        let s = self.get(key)?;
        match s.value.as_integer() {
            Some(n) if range.contains(&n) => Some(n),
            Some(_) => {
                self.bad(
                    s,
                    key,
                    format!("expected {} to {}", range.start(), range.end()),
                );
                None
            }
            None => {
                self.bad(s, key, "expected an integer");
                None
            }
        }
    }
}

fn name(s: &str) -> Result<Name, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && b"._-".contains(&b))
        });
    if ok {
        Ok(Name(s.to_owned()))
    } else {
        Err("expected a name of lower-case letters, digits, '.', '_' or '-' (at most 64)".into())
    }
}

fn url(s: &str, schemes: &[&str]) -> Result<Url, String> {
    let u = Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
    if schemes.contains(&u.scheme()) {
        Ok(u)
    } else {
        Err(format!(
            "scheme {} is not allowed here (use {})",
            u.scheme(),
            schemes.join(", ")
        ))
    }
}

/// A base URL with a trailing slash, so that joining keeps its last segment.
fn dir_url(mut u: Url) -> Url {
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

fn path(s: &str) -> Result<PathBuf, String> {
    if s.starts_with('/') {
        Ok(PathBuf::from(s))
    } else {
        Err("expected an absolute path".into())
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("not a duration ({e}); use e.g. 90s, 15m, 1h"))
}

fn time_of_day(s: &str) -> Result<String, String> {
    let ok = s.len() == 5
        && s.as_bytes()[2] == b':'
        && s[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && s[3..].parse::<u8>().is_ok_and(|m| m < 60);
    if ok {
        Ok(s.to_owned())
    } else {
        Err("expected HH:MM (24-hour)".into())
    }
}

fn window(r: &Reader<'_>, s: &Sourced, i: usize, v: &toml::Value) -> Option<WindowSpec> {
    let key = format!("reboot.windows[{i}]");
    let Some(t) = v.as_table() else {
        r.bad(
            s,
            &key,
            "expected a table with days, start, length, time_zone",
        );
        return None;
    };
    for k in t.keys() {
        if !["days", "start", "length", "time_zone"].contains(&k.as_str()) {
            r.problems.borrow_mut().push(Problem::Unknown {
                file: s.file.clone(),
                key: format!("{key}.{k}"),
            });
        }
    }
    let field = |k: &str| -> Option<&str> {
        let v = t.get(k).and_then(toml::Value::as_str);
        if v.is_none() {
            r.bad(s, &format!("{key}.{k}"), "expected a string");
        }
        v
    };
    let days: Option<Vec<String>> = match t.get("days").and_then(toml::Value::as_array) {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|d| {
                d.as_str()
                    .map(str::to_ascii_lowercase)
                    .filter(|d| DAYS.contains(&d.as_str()))
            })
            .collect(),
        _ => None,
    };
    if days.is_none() {
        r.bad(
            s,
            &format!("{key}.days"),
            "expected a non-empty list of mon, tue, wed, thu, fri, sat, sun",
        );
    }
    let start = field("start").and_then(|v| {
        time_of_day(v)
            .map_err(|why| r.bad(s, &format!("{key}.start"), why))
            .ok()
    });
    let length = field("length").and_then(|v| {
        duration(v)
            .and_then(|d| {
                if d.is_zero() || d > Duration::from_secs(7 * 24 * 3600) {
                    Err("expected a length between 1s and 7 days".into())
                } else {
                    Ok(d)
                }
            })
            .map_err(|why| r.bad(s, &format!("{key}.length"), why))
            .ok()
    });
    let tz = field("time_zone").and_then(|v| {
        jiff::tz::db()
            .get(v)
            .map(|_| v.to_owned())
            .map_err(|_| r.bad(s, &format!("{key}.time_zone"), "unknown IANA time zone"))
            .ok()
    });
    Some(WindowSpec {
        days: days?,
        start: start?,
        length: length?,
        time_zone: tz?,
    })
}

/// Validates the merged keys; `dirs` are named when a required key is missing.
pub fn validate(merged: &Merged, dirs: &[PathBuf]) -> Result<AgentConfig, ConfigError> {
    let r = Reader {
        merged,
        dirs,
        used: RefCell::new(BTreeSet::new()),
        problems: RefCell::new(Vec::new()),
    };
    let web = ["https", "http"];
    let server_url = r.parsed("server.url", |s| url(s, &web).map(dir_url));
    let server_ca = r.parsed("server.ca_cert", path);
    let token = r.parsed("server.enrollment_token", |s| Ok(s.to_owned()));

    let repo_url = r.parsed("repository.url", |s| {
        url(s, &["https", "http", "file"]).map(dir_url)
    });
    let join = |sub: &str| repo_url.as_ref().and_then(|u| u.join(sub).ok());
    let metadata_url = r
        .parsed("repository.metadata_url", |s| {
            url(s, &["https", "http", "file"]).map(dir_url)
        })
        .or_else(|| join("metadata/"));
    let targets_url = r
        .parsed("repository.targets_url", |s| {
            url(s, &["https", "http", "file"]).map(dir_url)
        })
        .or_else(|| join("targets/"));
    if (metadata_url.is_none() || targets_url.is_none())
        && !merged.keys.contains_key("repository.url")
    {
        r.missing("repository.url");
    }
    let root = r.required("repository.root", path);
    let repo_ca = r.parsed("repository.ca_cert", path);

    let channel = r
        .parsed("node.channel", name)
        .unwrap_or_else(|| Name("stable".into()));
    let group = r
        .parsed("node.group", name)
        .unwrap_or_else(|| Name("default".into()));
    let board = r.required("node.board", name);
    let os_release = r
        .parsed("node.os_release", path)
        .unwrap_or_else(|| "/usr/lib/os-release".into());
    let disk = r.parsed("node.disk", path);
    let node_id = r.parsed("node.id", |s| {
        moho_protocol::names::check_node_id(s)
            .map(|()| s.to_owned())
            .map_err(|e| e.rule.to_owned())
    });
    let state_dir = r
        .parsed("agent.state_dir", path)
        .unwrap_or_else(|| "/var/lib/moho".into());

    let check_interval = r
        .parsed("update.check_interval", |s| {
            duration(s).and_then(|d| {
                if d < Duration::from_secs(10) {
                    Err("expected at least 10s".into())
                } else {
                    Ok(d)
                }
            })
        })
        .unwrap_or(Duration::from_secs(3600));
    let tries = r
        .integer("update.tries", 1..=15)
        .and_then(|n| u8::try_from(n).ok())
        .unwrap_or(1);
    let download_attempts = r
        .integer("update.download_attempts", 1..=100)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(5);
    let download_backoff = r
        .parsed("update.download_backoff", duration)
        .unwrap_or(Duration::from_secs(1));
    let at_least = |min: Duration, what: &'static str| {
        move |s: &str| {
            duration(s).and_then(|d| {
                if d < min {
                    Err(format!("expected at least {what}"))
                } else {
                    Ok(d)
                }
            })
        }
    };
    let read_timeout = r
        .parsed(
            "update.read_timeout",
            at_least(Duration::from_secs(1), "1s"),
        )
        .unwrap_or(Duration::from_secs(30));
    let min_bytes_per_sec = r
        .integer("update.min_bytes_per_sec", 0..=1 << 40)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(1024);
    let stall_window = r
        .parsed(
            "update.stall_window",
            at_least(Duration::from_secs(1), "1s"),
        )
        .unwrap_or(Duration::from_secs(60));
    let health_deadline = r
        .parsed("health.deadline", at_least(Duration::from_secs(10), "10s"))
        .unwrap_or(Duration::from_secs(600));

    let max_user_delay = r
        .parsed("reboot.max_user_delay", duration)
        .unwrap_or(Duration::from_secs(3600));
    let max_inhibitor_wait = r
        .parsed("reboot.max_inhibitor_wait", duration)
        .unwrap_or(Duration::from_secs(1800));
    let windows = match r.get("reboot.windows") {
        None => Vec::new(),
        Some(s) => match s.value.as_array() {
            Some(a) => a
                .iter()
                .enumerate()
                .filter_map(|(i, v)| window(&r, s, i, v))
                .collect(),
            None => {
                r.bad(
                    s,
                    "reboot.windows",
                    "expected an array of tables ([[reboot.windows]])",
                );
                Vec::new()
            }
        },
    };
    let lock_url = r.parsed("reboot.fleet_lock_url", |s| url(s, &web).map(dir_url));
    let lock_group = r.parsed("reboot.fleet_lock_group", name);
    let strategy = r
        .parsed("reboot.strategy", |s| match s {
            "immediate" | "windows" | "fleet_lock" | "off" => Ok(s.to_owned()),
            _ => Err("expected immediate, windows, fleet_lock or off".into()),
        })
        .unwrap_or_else(|| "immediate".into());
    let strategy = match strategy.as_str() {
        "windows" => {
            if windows.is_empty() && !merged.keys.contains_key("reboot.windows") {
                r.missing("reboot.windows (strategy = \"windows\")");
            }
            RebootStrategy::Windows { windows }
        }
        "fleet_lock" => match &lock_url {
            Some(u) => RebootStrategy::FleetLock {
                url: u.clone(),
                group: lock_group.clone().unwrap_or_else(|| group.clone()),
            },
            None => {
                if !merged.keys.contains_key("reboot.fleet_lock_url") {
                    r.missing("reboot.fleet_lock_url (strategy = \"fleet_lock\")");
                }
                RebootStrategy::Off
            }
        },
        "off" => RebootStrategy::Off,
        _ => RebootStrategy::Immediate,
    };

    let used = r.used.borrow();
    for (key, s) in &merged.keys {
        if !used.contains(key) {
            r.problems.borrow_mut().push(Problem::Unknown {
                file: s.file.clone(),
                key: key.clone(),
            });
        }
    }
    drop(used);
    let problems = r.problems.into_inner();
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    let (Some(metadata_url), Some(targets_url), Some(root), Some(board)) =
        (metadata_url, targets_url, root, board)
    else {
        // Each None above pushed a problem; this is unreachable in practice.
        return Err(ConfigError::Invalid(vec![Problem::Missing {
            key: "repository".into(),
            dirs: dirs.to_vec(),
        }]));
    };
    Ok(AgentConfig {
        server: server_url.map(|url| ServerConfig {
            url,
            ca_cert: server_ca,
            enrollment_token: token,
        }),
        repository: RepositoryConfig {
            metadata_url,
            targets_url,
            root,
            ca_cert: repo_ca,
        },
        node: NodeConfig {
            channel,
            group,
            board,
            os_release,
            disk,
            id: node_id,
        },
        state_dir,
        update: UpdateConfig {
            check_interval,
            tries,
            download_attempts,
            download_backoff,
            read_timeout,
            min_bytes_per_sec,
            stall_window,
        },
        reboot: RebootConfig {
            strategy,
            max_user_delay,
            max_inhibitor_wait,
        },
        health: HealthConfig {
            deadline: health_deadline,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::merge::merge;
    use crate::config::raw::Fragment;

    fn load(files: &[(&str, &str)]) -> Result<AgentConfig, ConfigError> {
        let frags: Vec<Fragment> = files
            .iter()
            .map(|(f, t)| Fragment {
                file: (*f).into(),
                table: t.parse().unwrap(),
            })
            .collect();
        validate(&merge(&frags), &["/etc/moho/agent.d".into()])
    }

    const BASE: &str = "[repository]\nurl = \"https://repo.example/moho\"\nroot = \"/usr/share/moho/root.json\"\n[node]\nboard = \"amd64-generic\"\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let c = load(&[("/usr/lib/moho/agent.d/00.toml", BASE)]).unwrap();
        assert_eq!(
            c.repository.metadata_url.as_str(),
            "https://repo.example/moho/metadata/"
        );
        assert_eq!(
            c.repository.targets_url.as_str(),
            "https://repo.example/moho/targets/"
        );
        assert_eq!(c.node.channel.as_str(), "stable");
        assert_eq!(c.update.tries, 1);
        assert_eq!(c.health.deadline, Duration::from_secs(600));
        assert_eq!(c.update.read_timeout, Duration::from_secs(30));
        assert_eq!(c.update.min_bytes_per_sec, 1024);
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/moho"));
        assert!(matches!(c.reboot.strategy, RebootStrategy::Immediate));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_key_and_value() {
        let err = load(&[
            ("/usr/lib/moho/agent.d/00.toml", BASE),
            (
                "/etc/moho/agent.d/50-site.toml",
                "[node]\nchanel = \"beta\"\n[update]\ntries = 20\ncheck_interval = \"soon\"\n",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/etc/moho/agent.d/50-site.toml: unknown key node.chanel"),
            "{err}"
        );
        assert!(
            err.contains("50-site.toml: update.tries = 20: expected 1 to 15"),
            "{err}"
        );
        assert!(
            err.contains("update.check_interval = \"soon\": not a duration"),
            "{err}"
        );
    }

    #[test]
    fn download_limits_and_the_health_deadline_are_checked() {
        let c = load(&[(
            "/a.toml",
            &format!(
                "{BASE}[update]\nread_timeout = \"5s\"\nmin_bytes_per_sec = 4096\n\
                 stall_window = \"20s\"\n[health]\ndeadline = \"2m\"\n"
            ),
        )])
        .unwrap();
        assert_eq!(c.update.read_timeout, Duration::from_secs(5));
        assert_eq!(c.update.min_bytes_per_sec, 4096);
        assert_eq!(c.update.stall_window, Duration::from_secs(20));
        assert_eq!(c.health.deadline, Duration::from_secs(120));
        let err = load(&[(
            "/a.toml",
            &format!("{BASE}[health]\ndeadline = \"1s\"\n[update]\nread_timeout = \"0s\"\n"),
        )])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("health.deadline = \"1s\": expected at least 10s"),
            "{err}"
        );
        assert!(
            err.contains("update.read_timeout = \"0s\": expected at least 1s"),
            "{err}"
        );
    }

    #[test]
    fn missing_required_keys_name_the_directories() {
        let err = load(&[("/etc/moho/agent.d/a.toml", "[node]\nboard = \"x\"\n")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("repository.root is required but not set in any of /etc/moho/agent.d"),
            "{err}"
        );
        assert!(err.contains("repository.url is required"), "{err}");
    }

    #[test]
    fn windows_are_validated_field_by_field() {
        let ok = format!(
            "{BASE}[reboot]\nstrategy = \"windows\"\n[[reboot.windows]]\ndays = [\"Sat\", \"sun\"]\nstart = \"02:30\"\nlength = \"90m\"\ntime_zone = \"Europe/Berlin\"\n"
        );
        let c = load(&[("/a.toml", &ok)]).unwrap();
        let RebootStrategy::Windows { windows } = c.reboot.strategy else {
            panic!("expected windows");
        };
        assert_eq!(windows[0].days, vec!["sat", "sun"]);
        assert_eq!(windows[0].length, Duration::from_secs(5400));

        let bad = format!(
            "{BASE}[reboot]\nstrategy = \"windows\"\n[[reboot.windows]]\ndays = [\"someday\"]\nstart = \"25:00\"\nlength = \"1h\"\ntime_zone = \"Mars/Olympus\"\n"
        );
        let err = load(&[("/a.toml", &bad)]).unwrap_err().to_string();
        assert!(err.contains("reboot.windows[0].days"), "{err}");
        assert!(err.contains("reboot.windows[0].start"), "{err}");
        assert!(err.contains("reboot.windows[0].time_zone"), "{err}");
    }

    #[test]
    fn fleet_lock_needs_a_url_and_file_urls_are_allowed_for_the_repo() {
        let err = load(&[(
            "/a.toml",
            &format!("{BASE}[reboot]\nstrategy = \"fleet_lock\"\n"),
        )])
        .unwrap_err()
        .to_string();
        assert!(err.contains("reboot.fleet_lock_url"), "{err}");
        let c = load(&[(
            "/a.toml",
            "[repository]\nurl = \"file:///srv/repo\"\nroot = \"/r.json\"\n[node]\nboard = \"b\"\n",
        )])
        .unwrap();
        assert_eq!(
            c.repository.metadata_url.as_str(),
            "file:///srv/repo/metadata/"
        );
    }
}
