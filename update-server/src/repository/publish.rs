//! Publishing through the admin API: uploads are staged under
//! `DIR/uploads/<id>/`, then [`prepare`] builds a new generation (hard links
//! to the served targets, the served metadata, overlaid with the staged
//! files) and verifies it completely against the trusted root (metadata and
//! every release's target bytes); [`activate`] then switches `DIR/current`
//! to it with an atomic rename, inside the database transaction that makes
//! its metadata the served one (`repository::stored`). A failed commit
//! leaves the served repository untouched. All of it is blocking file work:
//! callers run it on a blocking thread.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use moho_release::{TrustedState, VerifiedRepository};
use moho_repo::dir::NAME_MAX;

use super::sync::{check_target_files, load};
use super::{RepoError, io_err, served_root};

/// The staging directory of upload `id` (which must exist).
pub fn staging_dir(repo_dir: &Path, id: &str) -> Result<PathBuf, RepoError> {
    let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let dir = repo_dir.join("uploads").join(id);
    if !valid || !dir.is_dir() {
        return Err(RepoError::BadUpload(format!("unknown upload {id:?}")));
    }
    Ok(dir)
}

/// Starts an upload; returns its id.
pub fn new_upload(repo_dir: &Path) -> Result<String, RepoError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = repo_dir.join("uploads").join(&id);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    Ok(id)
}

/// Where an uploaded repository file goes inside the staging directory.
/// A path no file system can store (a component longer than
/// [`NAME_MAX`]) is refused by name before anything is written.
pub fn staged_file(repo_dir: &Path, id: &str, path: &str) -> Result<PathBuf, RepoError> {
    if let Some(long) = path.split('/').find(|c| c.len() > NAME_MAX) {
        return Err(RepoError::BadUpload(format!(
            "refusing upload path {path:?}: its component {long:?} is {} bytes, more than the {NAME_MAX} a file name may have",
            long.len()
        )));
    }
    let dir = staging_dir(repo_dir, id)?;
    crate::http::repo::resolve(&dir, path).ok_or_else(|| {
        RepoError::BadUpload(format!(
            "refusing upload path {path:?}: only metadata/... and targets/..."
        ))
    })
}

/// Hard-links (or copies, across file systems) every file below `from` into `to`.
fn link_tree(from: &Path, to: &Path) -> Result<(), RepoError> {
    std::fs::create_dir_all(to).map_err(io_err(to))?;
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(io_err(from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io_err(&src))?;
        if kind.is_dir() {
            link_tree(&src, &dst)?;
        } else if kind.is_file() {
            let _ = std::fs::remove_file(&dst);
            if std::fs::hard_link(&src, &dst).is_err() {
                std::fs::copy(&src, &dst).map_err(io_err(&dst))?;
            }
        }
    }
    Ok(())
}

/// Moves every staged file over the generation's files.
fn overlay(staged: &Path, gen_dir: &Path) -> Result<(), RepoError> {
    let Ok(entries) = std::fs::read_dir(staged) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(io_err(staged))?;
        let src = entry.path();
        let dst = gen_dir.join(entry.file_name());
        if entry.file_type().map_err(io_err(&src))?.is_dir() {
            std::fs::create_dir_all(&dst).map_err(io_err(&dst))?;
            overlay(&src, &dst)?;
        } else {
            let _ = std::fs::remove_file(&dst);
            std::fs::rename(&src, &dst).map_err(io_err(&dst))?;
        }
    }
    Ok(())
}

fn next_generation(gens: &Path) -> u64 {
    std::fs::read_dir(gens)
        .map(|it| {
            it.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
                + 1
        })
        .unwrap_or(1)
}

/// Creates the next free generation directory (`mkdir` is atomic, also on
/// shared storage: two replicas preparing at once get different numbers).
fn create_generation(gens: &Path) -> Result<(u64, PathBuf), RepoError> {
    std::fs::create_dir_all(gens).map_err(io_err(gens))?;
    loop {
        let n = next_generation(gens);
        let dir = gens.join(n.to_string());
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((n, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&dir)(e)),
        }
    }
}

/// A verified generation on disk, not served yet: [`activate`] serves its
/// targets, and its metadata goes to the database.
#[derive(Debug)]
pub struct Prepared {
    /// Generation number (directory name under `DIR/generations`).
    pub number: u64,
    /// The verified repository.
    pub repo: VerifiedRepository,
    /// Every metadata file of the generation.
    pub metadata: Vec<(String, Vec<u8>)>,
}

/// Reads every file of `dir` (a repository's `metadata/`).
pub fn read_metadata_dir(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, RepoError> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries {
        let e = e.map_err(io_err(dir))?;
        let path = e.path();
        if !e.file_type().map_err(io_err(&path))?.is_file() {
            continue;
        }
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        out.push((name, std::fs::read(&path).map_err(io_err(&path))?));
    }
    out.sort();
    Ok(out)
}

/// Verifies upload `id` on top of the served repository (targets from the
/// served directory, metadata from `base`, the served metadata, when the
/// database holds it, else from the directory) and prepares it as a new
/// generation, not served yet. Returns the prepared generation; on an
/// error nothing is left behind.
pub fn prepare(
    repo_dir: &Path,
    id: &str,
    base: Option<&[(String, Vec<u8>)]>,
    trusted_root: &[u8],
    trusted: &TrustedState,
    now: SystemTime,
) -> Result<Prepared, RepoError> {
    let staged = staging_dir(repo_dir, id)?;
    let gens = repo_dir.join("generations");
    let (n, gen_dir) = create_generation(&gens)?;
    let result = (|| {
        let current = served_root(repo_dir);
        link_tree(&current.join("targets"), &gen_dir.join("targets"))?;
        match base {
            Some(files) => {
                let meta = gen_dir.join("metadata");
                std::fs::create_dir_all(&meta).map_err(io_err(&meta))?;
                for (name, bytes) in files {
                    let path = meta.join(name);
                    std::fs::write(&path, bytes).map_err(io_err(&path))?;
                }
            }
            None => link_tree(&current.join("metadata"), &gen_dir.join("metadata"))?,
        }
        overlay(&staged, &gen_dir)?;
        let repo = load(&gen_dir, trusted_root, trusted, now)?;
        check_target_files(&gen_dir, &repo)?;
        let metadata = read_metadata_dir(&gen_dir.join("metadata"))?;
        Ok(Prepared {
            number: n,
            repo,
            metadata,
        })
    })();
    let _ = std::fs::remove_dir_all(&staged);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&gen_dir);
    }
    result
}

/// Drops a prepared generation that will not be served.
pub fn discard(repo_dir: &Path, number: u64) {
    let _ = std::fs::remove_dir_all(repo_dir.join("generations").join(number.to_string()));
}

/// Serves the files of generation `n` from `DIR/current` (atomic rename of
/// a new symlink over the old one), keeps the one it replaces for
/// downloads in flight, and drops older ones.
pub fn activate(repo_dir: &Path, n: u64) -> Result<(), RepoError> {
    let gens = repo_dir.join("generations");
    let previous = std::fs::read_link(repo_dir.join("current"))
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse::<u64>().ok());
    let tmp = repo_dir.join(format!("current.tmp.{}", uuid::Uuid::new_v4().simple()));
    std::os::unix::fs::symlink(Path::new("generations").join(n.to_string()), &tmp)
        .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, repo_dir.join("current")).map_err(io_err(&tmp))?;
    if let Ok(entries) = std::fs::read_dir(&gens) {
        for e in entries.flatten() {
            if e.file_name()
                .to_str()
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|g| g < n && Some(g) != previous)
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

/// Lists the served files as (path below the root, length).
pub fn list_files(repo_dir: &Path) -> Vec<(String, u64)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => walk(base, &p, out),
                Ok(m) => {
                    if let Ok(rel) = p.strip_prefix(base) {
                        out.push((rel.to_string_lossy().into_owned(), m.len()));
                    }
                }
                Err(_) => {}
            }
        }
    }
    let root = served_root(repo_dir);
    let mut out = Vec::new();
    for part in ["metadata", "targets"] {
        walk(&root, &root.join(part), &mut out);
    }
    out.sort();
    out
}
