//! Moving a repository from the legacy target layout (`HASH.board/version/
//! file`, `tough`'s naming) to the TUF specification's
//! (`board/version/HASH.file`, [`moho_release::layout`]), in place.
//!
//! Target paths are computed by clients from the name and the hash, so no
//! metadata changes: the migration only adds files. In order:
//!
//! 1. Check: the repository loads as nodes load it (expiry aside), and
//!    every signed target has a file in one of the layouts whose length and
//!    SHA-256 are the signed ones. A missing or corrupt target is refused
//!    by name before anything is written.
//! 2. Link: every target without a file at its specification path gets one
//!    — a hard link to the legacy file (no second copy; a copy where the
//!    file system has no hard links) made under a temporary name, flushed
//!    and renamed into place. Each file appears whole or not at all, the
//!    legacy files stay, and so both our older agents (which read only the
//!    legacy layout) and conforming TUF clients read the repository at
//!    every moment.
//! 3. Only with `drop_legacy`, once every target is at its specification
//!    path: the legacy `HASH.board/` directories are removed. Do this when
//!    every node runs an agent that reads the new layout; until then each
//!    publication links its targets into the legacy layout too
//!    ([`RepoDir::keeps_legacy_layout`]).
//!
//! Resumable: an interrupted run leaves whole files only, and running it
//! again checks what is there, links what is missing and removes what is
//! left of the legacy layout.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use moho_release::TargetInfo;
use moho_release::digest::Sha256Hasher;
use moho_release::layout::{Layout, is_legacy_entry};

use crate::dir::{RepoDir, check_file_name, link_or_copy, place};
use crate::error::{RepoError, io_err};

/// What a migration did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Migration {
    /// Signed targets in the repository.
    pub targets: usize,
    /// Targets given a file at their specification path by this run.
    pub linked: usize,
    /// Legacy-layout directories removed (`drop_legacy`).
    pub legacy_removed: usize,
    /// Whether the legacy layout is still there after this run.
    pub legacy_kept: bool,
}

impl fmt::Display for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} target(s) at their TUF specification paths ({} linked by this run)",
            self.targets, self.linked
        )?;
        if self.legacy_removed > 0 {
            write!(f, "; removed {} legacy directory(ies)", self.legacy_removed)?;
        }
        if self.legacy_kept {
            write!(
                f,
                "; the legacy layout is kept for older agents (and new releases are linked there too) until `repo migrate --drop-legacy`"
            )?;
        }
        Ok(())
    }
}

/// Migrates the repository at `dir` in place (see the module docs).
pub fn migrate(dir: &RepoDir, drop_legacy: bool) -> Result<Migration, RepoError> {
    let current = dir.load()?;
    let targets: Vec<&TargetInfo> = current.verified().targets().collect();
    // 1. Check everything before the first write.
    let mut to_link = Vec::new();
    for info in &targets {
        let spec = dir.target_file(info.name(), &info.sha256(), Layout::Spec);
        let legacy = dir.target_file(info.name(), &info.sha256(), Layout::Legacy);
        check_file_name(&spec)?;
        if spec.exists() {
            check_file(info, &spec)?;
        } else if legacy.exists() {
            check_file(info, &legacy)?;
            to_link.push((spec, legacy));
        } else {
            return Err(RepoError::TargetFileMissing {
                name: info.name().to_owned(),
                spec,
                legacy,
            });
        }
    }
    // 2. Add the specification's paths; the legacy files stay.
    let linked = to_link.len();
    for (spec, legacy) in &to_link {
        place(spec, |tmp| link_or_copy(legacy, tmp))?;
    }
    // 3. Drop the legacy layout only when asked, after every target is in place.
    let mut legacy_removed = 0;
    if drop_legacy {
        for info in &targets {
            let spec = dir.target_file(info.name(), &info.sha256(), Layout::Spec);
            if !spec.is_file() {
                return Err(RepoError::TargetFileMissing {
                    name: info.name().to_owned(),
                    legacy: dir.target_file(info.name(), &info.sha256(), Layout::Legacy),
                    spec,
                });
            }
        }
        let root = dir.targets();
        for entry in fs::read_dir(&root).map_err(io_err(&root, "read directory"))? {
            let entry = entry.map_err(io_err(&root, "read directory"))?;
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && entry.file_name().to_str().is_some_and(is_legacy_entry) {
                let path = entry.path();
                fs::remove_dir_all(&path).map_err(io_err(&path, "remove"))?;
                legacy_removed += 1;
            }
        }
        File::open(&root)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&root, "fsync directory"))?;
    }
    Ok(Migration {
        targets: targets.len(),
        linked,
        legacy_removed,
        legacy_kept: dir.keeps_legacy_layout()?,
    })
}

/// Checks that the file at `path` is target `info`, byte for byte.
pub(crate) fn check_file(info: &TargetInfo, path: &Path) -> Result<(), RepoError> {
    let corrupt = |problem: String| RepoError::TargetFileCorrupt {
        name: info.name().to_owned(),
        path: path.to_owned(),
        problem,
    };
    let mut f = File::open(path).map_err(io_err(path, "open"))?;
    let len = f.metadata().map_err(io_err(path, "stat"))?.len();
    if len != info.length() {
        return Err(corrupt(format!(
            "{len} bytes, the signed length is {}",
            info.length()
        )));
    }
    let mut hasher = Sha256Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path, "read")(e)),
        };
        hasher.update(&buf[..n]);
    }
    let actual = hasher.finish();
    if actual != info.sha256() {
        return Err(corrupt(format!(
            "sha256 {actual}, the signed sha256 is {}",
            info.sha256()
        )));
    }
    Ok(())
}
