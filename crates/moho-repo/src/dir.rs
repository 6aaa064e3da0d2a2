//! A repository in a directory (`metadata/` and `targets/`, static files
//! any web server or CDN can host), and how a publication is written there.
//!
//! Target files are where the TUF specification puts them
//! (`board/version/HASH.file`, [`moho_release::layout`]); a repository that
//! still holds the legacy layout (`HASH.board/version/file`) gets each new
//! target linked there too (see [`RepoDir::keeps_legacy_layout`]).
//!
//! Order of a write: every path is checked first (a name a file system
//! cannot store is refused before the first byte); then target files (each
//! through a temporary file and a rename; an existing file, whose name
//! carries its hash, is kept), new versioned metadata (created, never
//! overwritten: a concurrent publication fails instead), and
//! `timestamp.json` last by atomic rename. Until that rename readers see the
//! previous consistent snapshot; a failure before it leaves at most
//! unreferenced files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use moho_release::layout::{Layout, is_legacy_entry, target_path};
use moho_release::{
    FetchError, MetadataSource, Sha256Digest, TrustedState, VerifiedRepository, load_repository,
};

use crate::current::Current;
use crate::error::{RepoError, io_err};
use crate::publication::{Publication, TargetContent};

/// Longest file name component Linux file systems store (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Metadata files of a directory, as `moho-release` asks for them.
#[derive(Debug, Clone)]
pub struct DirSource {
    dir: PathBuf,
}

impl DirSource {
    /// The files of `dir` (a repository's `metadata/`).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }
}

impl MetadataSource for DirSource {
    fn fetch(&self, file: &str, max_len: u64) -> Result<Option<Vec<u8>>, FetchError> {
        if file.contains('/') || file.starts_with('.') {
            return Err(FetchError::new(format!(
                "refusing metadata file name {file:?}"
            )));
        }
        let path = self.dir.join(file);
        match File::open(&path) {
            Ok(f) => {
                let mut bytes = Vec::new();
                f.take(max_len.saturating_add(1))
                    .read_to_end(&mut bytes)
                    .map_err(|e| FetchError::new(format!("{}: {e}", path.display())))?;
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(FetchError::new(format!("{}: {e}", path.display()))),
        }
    }
}

/// A repository directory.
#[derive(Debug, Clone)]
pub struct RepoDir {
    dir: PathBuf,
}

impl RepoDir {
    /// The repository at `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `metadata/`.
    pub fn metadata(&self) -> PathBuf {
        self.dir.join("metadata")
    }

    /// `targets/`.
    pub fn targets(&self) -> PathBuf {
        self.dir.join("targets")
    }

    /// The metadata as a source for `moho-release`.
    pub fn source(&self) -> DirSource {
        DirSource::new(&self.metadata())
    }

    /// `metadata/1.root.json`, the root every edit and self-check trusts.
    pub fn first_root(&self) -> Result<Vec<u8>, RepoError> {
        let path = self.metadata().join("1.root.json");
        fs::read(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                RepoError::NotARepo {
                    path: self.dir.clone(),
                }
            } else {
                io_err(&path, "read")(e)
            }
        })
    }

    /// Loads the repository for an edit (see [`Current`]).
    pub fn load(&self) -> Result<Current, RepoError> {
        let root = self.first_root()?;
        Current::load(&self.source(), &root, &self.dir.display().to_string())
    }

    /// Makes a new repository of `publication` (from [`crate::init()`]):
    /// refuses a directory that already has `metadata/`, checks the
    /// publication, then creates `metadata/` and `targets/` and writes it.
    pub fn initialize(
        &self,
        publication: &Publication,
        now: SystemTime,
    ) -> Result<VerifiedRepository, RepoError> {
        if self.metadata().exists() {
            return Err(RepoError::AlreadyInitialized {
                path: self.dir.clone(),
            });
        }
        let root = publication
            .versioned
            .iter()
            .find(|(name, _)| name == "1.root.json")
            .map(|(_, bytes)| bytes.as_slice())
            .unwrap_or_default();
        publication.verify(&self.source(), root, now)?;
        for dir in [self.metadata(), self.targets()] {
            fs::create_dir_all(&dir).map_err(io_err(&dir, "create directory"))?;
        }
        self.write(publication)?;
        self.self_check(now)
    }

    /// Checks `publication` as nodes would see the result at `now`, writes
    /// it, and re-reads what was written. A refusal writes nothing.
    pub fn publish(
        &self,
        publication: &Publication,
        now: SystemTime,
    ) -> Result<VerifiedRepository, RepoError> {
        publication.verify(&self.source(), &self.first_root()?, now)?;
        self.write(publication)?;
        self.self_check(now)
    }

    /// The file of a target in `layout` (consistent snapshots: every Moho
    /// repository has them).
    pub fn target_file(&self, name: &str, sha256: &Sha256Digest, layout: Layout) -> PathBuf {
        self.targets().join(target_path(name, sha256, true, layout))
    }

    /// Whether `targets/` still holds files in the legacy layout
    /// (`HASH.board/...` directories): then every publication links its
    /// targets there too, so that agents which read only that layout keep
    /// updating until `repo migrate --drop-legacy` removes it.
    pub fn keeps_legacy_layout(&self) -> Result<bool, RepoError> {
        let targets = self.targets();
        let entries = match fs::read_dir(&targets) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(&targets, "read directory")(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&targets, "read directory"))?;
            if entry.file_type().is_ok_and(|t| t.is_dir())
                && entry.file_name().to_str().is_some_and(is_legacy_entry)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Writes `publication` (see the module docs for the order). Prefer
    /// [`publish`](Self::publish), which checks it first.
    pub fn write(&self, publication: &Publication) -> Result<(), RepoError> {
        let metadata = self.metadata();
        let legacy = self.keeps_legacy_layout()?;
        let mut paths: Vec<PathBuf> = Vec::new();
        for t in &publication.targets {
            paths.push(self.target_file(&t.name, &t.sha256, Layout::Spec));
            if legacy {
                paths.push(self.target_file(&t.name, &t.sha256, Layout::Legacy));
            }
        }
        paths.extend(publication.metadata_files().map(|(n, _)| metadata.join(n)));
        for path in &paths {
            check_file_name(path)?;
        }
        for t in &publication.targets {
            let dest = self.target_file(&t.name, &t.sha256, Layout::Spec);
            match &t.content {
                TargetContent::File(src) => place(&dest, |tmp| fs::copy(src, tmp).map(drop))?,
                TargetContent::Bytes(bytes) => place(&dest, |tmp| fs::write(tmp, bytes))?,
            }
            if legacy {
                let old = self.target_file(&t.name, &t.sha256, Layout::Legacy);
                place(&old, |tmp| link_or_copy(&dest, tmp))?;
            }
        }
        for (file, bytes) in &publication.versioned {
            let path = metadata.join(file);
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io_err(&path, "create (another publication may be running)"))?;
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .map_err(io_err(&path, "write"))?;
        }
        place_replacing(&metadata.join("timestamp.json"), &publication.timestamp)?;
        File::open(&metadata)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&metadata, "fsync directory"))
    }

    /// Re-reads the repository as a node would (trusting `1.root.json`, at
    /// `now`) to prove what was written verifies.
    pub fn self_check(&self, now: SystemTime) -> Result<VerifiedRepository, RepoError> {
        let root = self.first_root()?;
        load_repository(&self.source(), &root, &TrustedState::default(), now).map_err(|source| {
            RepoError::SelfCheck {
                path: self.dir.clone(),
                source: Box::new(source),
            }
        })
    }
}

/// Refuses a path with a component longer than [`NAME_MAX`].
pub(crate) fn check_file_name(path: &Path) -> Result<(), RepoError> {
    let len = path
        .components()
        .map(|c| c.as_os_str().len())
        .max()
        .unwrap_or(0);
    if len > NAME_MAX {
        return Err(RepoError::FileNameTooLong {
            path: path.to_owned(),
            len,
            limit: NAME_MAX,
        });
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile, RepoError> {
    tempfile::Builder::new()
        .prefix(".moho-")
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(io_err(dir, "create temporary file"))
}

/// Creates `dest` (and its directories) through a temporary file, flushed
/// and renamed into place; keeps an existing `dest`, whose name already is
/// its content hash.
pub(crate) fn place(
    dest: &Path,
    fill: impl FnOnce(&Path) -> io::Result<()>,
) -> Result<(), RepoError> {
    if dest.exists() {
        return Ok(());
    }
    let dir = parent_dir(dest);
    fs::create_dir_all(&dir).map_err(io_err(&dir, "create directory"))?;
    let tmp = temp_in(&dir)?;
    fill(tmp.path()).map_err(io_err(dest, "write"))?;
    File::open(tmp.path())
        .and_then(|f| f.sync_all())
        .map_err(io_err(tmp.path(), "fsync"))?;
    tmp.persist(dest).map_err(|e| RepoError::Io {
        path: dest.to_owned(),
        op: "rename into place",
        source: e.error,
    })?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(&dir, "fsync directory"))
}

/// Fills `tmp` with the bytes of `src`: a hard link where the file system
/// allows (no second copy of an image), else a copy.
pub(crate) fn link_or_copy(src: &Path, tmp: &Path) -> io::Result<()> {
    fs::remove_file(tmp)?;
    match fs::hard_link(src, tmp) {
        Ok(()) => Ok(()),
        Err(_) => fs::copy(src, tmp).map(drop),
    }
}

/// Replaces `dest` atomically with `bytes`.
fn place_replacing(dest: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    let mut tmp = temp_in(&parent_dir(dest))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err(tmp.path(), "write"))?;
    tmp.persist(dest).map_err(|e| RepoError::Io {
        path: dest.to_owned(),
        op: "rename into place",
        source: e.error,
    })?;
    Ok(())
}
