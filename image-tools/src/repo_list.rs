//! `image-tools repo list`: the published releases and the state of each
//! role's metadata (version, expiry), as a table or JSON. Loads the
//! repository as an edit does (the nodes' checks without expiry), so that an
//! expired repository can still be inspected; expired roles are marked.

use std::fmt::{self, Write as _};

use moho_core::release::ImageTargetCustom;
use serde::Serialize;

use moho_repo::{RepoDir, RepoError};

use crate::cli::RepoListArgs;

/// One published image.
#[derive(Debug, Serialize)]
pub struct ListedRelease {
    /// Target name.
    pub name: String,
    /// Length, bytes.
    pub length: u64,
    /// SHA-256 (hex).
    pub sha256: String,
    /// The signed release metadata.
    pub custom: ImageTargetCustom,
}

/// One role's metadata.
#[derive(Debug, Serialize)]
pub struct ListedRole {
    /// Role name.
    pub role: String,
    /// Version.
    pub version: u64,
    /// Expiry (RFC 3339).
    pub expires: String,
    /// Whether it has expired.
    pub expired: bool,
}

/// The listing.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// Releases, by board then version.
    pub releases: Vec<ListedRelease>,
    /// Roles.
    pub roles: Vec<ListedRole>,
    #[serde(skip)]
    json: bool,
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.json {
            let text = serde_json::to_string_pretty(self).map_err(|_| fmt::Error)?;
            return f.write_str(&text);
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<20} {:<16} {:<24} {:>12}  SHA-256",
            "BOARD", "VERSION", "CHANNELS", "BYTES"
        );
        for r in &self.releases {
            let channels = r
                .custom
                .channels
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(",");
            let min = r
                .custom
                .min_version
                .as_ref()
                .map(|m| format!(" (from {m})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<20} {:<16} {:<24} {:>12}  {}{min}",
                r.custom.board, r.custom.version, channels, r.length, r.sha256
            );
        }
        for role in &self.roles {
            let flag = if role.expired { "  EXPIRED" } else { "" };
            let _ = writeln!(
                out,
                "{} version {} expires {}{flag}",
                role.role, role.version, role.expires
            );
        }
        f.write_str(out.trim_end())
    }
}

/// Runs `repo list`.
pub fn run(args: &RepoListArgs) -> Result<Listing, RepoError> {
    let loaded = RepoDir::new(&args.repo).load()?;
    let mut releases = Vec::new();
    for (name, target) in &loaded.targets().signed.targets {
        if target.custom.is_empty() {
            continue;
        }
        let object = serde_json::Value::Object(target.custom.clone().into_iter().collect());
        if let Ok(custom) = serde_json::from_value::<ImageTargetCustom>(object) {
            releases.push(ListedRelease {
                name: name.raw().to_owned(),
                length: target.length,
                sha256: hex::encode(&target.hashes.sha256),
                custom,
            });
        }
    }
    releases.sort_by(|a, b| {
        let va = semver::Version::parse(&a.custom.version).ok();
        let vb = semver::Version::parse(&b.custom.version).ok();
        (&a.custom.board, va, &a.name).cmp(&(&b.custom.board, vb, &b.name))
    });
    let now = jiff::Timestamp::try_from(crate::repo::now()).unwrap_or(jiff::Timestamp::MAX);
    let role = |name: &str, version: u64, expires: jiff::Timestamp| ListedRole {
        role: name.to_owned(),
        version,
        expires: expires.to_string(),
        expired: expires <= now,
    };
    let roles = vec![
        role(
            "root",
            loaded.root().signed.version.get(),
            loaded.root().signed.expires,
        ),
        role(
            "targets",
            loaded.targets().signed.version.get(),
            loaded.targets().signed.expires,
        ),
        role(
            "snapshot",
            loaded.snapshot().signed.version.get(),
            loaded.snapshot().signed.expires,
        ),
        role(
            "timestamp",
            loaded.timestamp().signed.version.get(),
            loaded.timestamp().signed.expires,
        ),
    ];
    Ok(Listing {
        releases,
        roles,
        json: args.json,
    })
}
