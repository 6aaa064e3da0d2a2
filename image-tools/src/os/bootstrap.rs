//! The Debian root of a node OS: `debootstrap --variant=minbase
//! --include=<packages>` into a cache keyed by suite, mirror and package set
//! (a second build of the same set takes no download and no install), with
//! debootstrap's own package cache (`--cache-dir`) shared by every set, so a
//! set that differs by one package downloads only that package.
//!
//! Cache layout (`--cache`, env `MOHO_OS_CACHE`, default `/var/cache/moho-os`):
//! `debs/` (the .deb files), `roots/<key>/` (a finished root, never changed
//! after), `roots/<key>.lock` (one builder at a time).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::OsBuildError;
use super::config::NodeOsConfig;

/// The default cache directory.
pub const DEFAULT_CACHE: &str = "/var/cache/moho-os";

/// The cache key of a configuration's root: suite, mirror and packages.
pub fn root_key(cfg: &NodeOsConfig) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "debootstrap minbase\n{}\n{}\n",
        cfg.suite, cfg.mirror
    ));
    for p in &cfg.packages {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    let d = h.finalize();
    format!("{}-{}", cfg.suite, hex::encode(&d[..8]))
}

/// The finished root for `cfg` (made now if the cache has none); read it,
/// copy it, never change it. Says whether it was made now.
pub fn debian_root(cfg: &NodeOsConfig, cache: &Path) -> Result<(PathBuf, bool), OsBuildError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| OsBuildError::Io { path, source }
    };
    let roots = cache.join("roots");
    let debs = cache.join("debs");
    fs::create_dir_all(&roots).map_err(io(&roots))?;
    fs::create_dir_all(&debs).map_err(io(&debs))?;
    // debootstrap wants an absolute --cache-dir.
    let debs = debs.canonicalize().map_err(io(&debs))?;
    let key = root_key(cfg);
    let root = roots.join(&key);
    let done = roots.join(format!("{key}.done"));
    let lock_path = roots.join(format!("{key}.lock"));
    let lock = File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    if done.exists() {
        return Ok((root, false));
    }
    let partial = roots.join(format!("{key}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    tracing::info!(suite = %cfg.suite, packages = cfg.packages.len(), "debootstrap");
    let out = Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--cache-dir={}", debs.display()))
        .arg(format!("--include={}", cfg.packages.join(",")))
        .arg(&cfg.suite)
        .arg(&partial)
        .arg(&cfg.mirror)
        .output()
        .map_err(|source| OsBuildError::Spawn {
            tool: "debootstrap (Debian package debootstrap)",
            source,
        })?;
    if !out.status.success() {
        let log =
            fs::read_to_string(partial.join("debootstrap/debootstrap.log")).unwrap_or_default();
        return Err(OsBuildError::Tool {
            tool: "debootstrap",
            status: out.status.to_string(),
            output: tail(&format!(
                "{}{}{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
        });
    }
    fs::rename(&partial, &root).map_err(io(&root))?;
    fs::write(&done, b"").map_err(io(&done))?;
    Ok((root, true))
}

/// The last lines of a tool's output, for an error message.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_names_the_suite_and_changes_with_the_package_set_only() {
        let path = Path::new("n.toml");
        let base = "version = \"1.0.0\"\nboard = \"b\"\ntrusted_root = \"r.json\"\n";
        let a = super::super::config::parse(path, base).unwrap();
        let b = super::super::config::parse(path, &base.replace("1.0.0", "2.0.0")).unwrap();
        let c =
            super::super::config::parse(path, &format!("{base}packages = [\"podman\"]\n")).unwrap();
        assert!(root_key(&a).starts_with("bookworm-"));
        assert_eq!(
            root_key(&a),
            root_key(&b),
            "the version is not part of the root"
        );
        assert_ne!(root_key(&a), root_key(&c));
    }
}
