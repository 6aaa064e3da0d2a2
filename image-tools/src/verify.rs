//! `image-tools verify`: load a repository exactly as a node does
//! (`moho_release`, the agent's code) and check a target or a local file
//! against it. Exit 0 only when everything holds; a refusal names the attack.
//! Without `--target` or `--file` it checks every target's bytes too (a
//! mirror audit), unless `--metadata-only`.
//!
//! With `--state FILE` it also keeps what a node keeps between checks: the
//! trusted metadata versions (`FILE`, for rollback detection) and the newest
//! trusted root (`FILE.root.json`, which then replaces `--root`). They are
//! written only after a fully successful verification.

use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use moho_release::digest::Sha256Hasher;
use moho_release::{NodeContext, TrustedState, VerifiedRepository, VerifyError, load_repository};

use crate::cli::VerifyArgs;
use crate::repo_source::RepoLocation;

/// Why `verify` did not pass.
#[derive(Debug, thiserror::Error)]
pub enum VerifyCmdError {
    /// The repository, target or file must not be trusted (or could not be fetched).
    #[error(transparent)]
    Refused(#[from] VerifyError),
    /// A local file matches no signed target.
    #[error("{}: {length} bytes with sha256 {sha256} match no signed target", path.display())]
    FileNotSigned {
        /// The file.
        path: PathBuf,
        /// Its length.
        length: u64,
        /// Its hash.
        sha256: String,
    },
    /// Some targets of the repository failed their check (`verify` without `--target`).
    #[error("{} of {checked} target(s) failed: {}", failures.len(), failures.iter().map(|(name, e)| format!("{name}: {e}")).collect::<Vec<_>>().join("; "))]
    TargetsFailed {
        /// How many targets were checked.
        checked: usize,
        /// Each failed target and why.
        failures: Vec<(String, VerifyCmdError)>,
    },
    /// An unusable argument.
    #[error("{what}: {reason}")]
    BadArg {
        /// Which argument.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Reading or writing a local file failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
}

impl VerifyCmdError {
    /// Whether this is a verdict against the repository, target or file.
    pub fn is_refusal(&self) -> bool {
        match self {
            VerifyCmdError::FileNotSigned { .. } => true,
            VerifyCmdError::Refused(e) => !matches!(e, VerifyError::Fetch { .. }),
            VerifyCmdError::TargetsFailed { failures, .. } => {
                failures.iter().any(|(_, e)| e.is_refusal())
            }
            _ => false,
        }
    }

    /// Whether an argument was unusable.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, VerifyCmdError::BadArg { .. })
    }
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> VerifyCmdError + use<> {
    let path = path.to_owned();
    move |source| VerifyCmdError::Io { path, op, source }
}

/// `STATE.root.json`.
pub fn state_root_path(state: &Path) -> PathBuf {
    let mut s = state.as_os_str().to_owned();
    s.push(".root.json");
    PathBuf::from(s)
}

/// The report of a successful verification.
#[derive(Debug)]
pub struct VerifyReport(String);

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.trim_end())
    }
}

/// Runs `verify`.
pub fn run(args: &VerifyArgs) -> Result<VerifyReport, VerifyCmdError> {
    let location = RepoLocation::parse(&args.repo).map_err(|reason| VerifyCmdError::BadArg {
        what: "--repo",
        reason,
    })?;
    let current_version = args
        .current_version
        .as_deref()
        .map(|v| {
            v.parse::<semver::Version>()
                .map_err(|e| VerifyCmdError::BadArg {
                    what: "--current-version",
                    reason: format!("{v:?} is not semver: {e}"),
                })
        })
        .transpose()?;
    let (root, state) = trusted(args)?;
    let now: SystemTime = args.now.unwrap_or_else(jiff::Timestamp::now).into();
    let source = location.metadata().map_err(|source| VerifyError::Fetch {
        file: args.repo.clone(),
        source,
    })?;
    let repo = load_repository(source.as_ref(), &root, &state, now)?;

    let mut out = String::new();
    let e = repo.expiry();
    let s = repo.trusted_state();
    let _ = writeln!(
        out,
        "repository ok: root v{}, targets v{}, snapshot v{}, timestamp v{} (timestamp expires {}), {} release(s)",
        repo.root_version(),
        s.targets_version(),
        s.snapshot_version(),
        s.timestamp_version(),
        jiff::Timestamp::try_from(e.timestamp)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        repo.releases().count()
    );
    let node = args
        .board
        .as_ref()
        .zip(args.channel.as_ref())
        .map(|(b, c)| NodeContext {
            board: b.clone(),
            channel: c.clone(),
            current_version: current_version.clone(),
        });
    match (&args.target, &args.file) {
        (Some(name), file) => check_target(
            &repo,
            &location,
            name,
            file.as_deref(),
            node.as_ref(),
            &mut out,
        )?,
        (None, Some(file)) => find_file(&repo, file, &mut out)?,
        (None, None) if args.metadata_only => {}
        (None, None) => check_all(&repo, &location, &mut out)?,
    }
    if let Some(path) = &args.state {
        save_state(path, &repo)?;
    }
    Ok(VerifyReport(out))
}

/// The trusted root and rollback state: from `--state` when it has them.
fn trusted(args: &VerifyArgs) -> Result<(Vec<u8>, TrustedState), VerifyCmdError> {
    let mut root_path = args.root.clone();
    let mut state = TrustedState::default();
    if let Some(path) = &args.state {
        match fs::read(path) {
            Ok(bytes) => {
                state = serde_json::from_slice(&bytes).map_err(|e| VerifyCmdError::BadArg {
                    what: "--state",
                    reason: format!("{}: not a state file: {e}", path.display()),
                })?;
                let saved_root = state_root_path(path);
                if saved_root.exists() {
                    root_path = saved_root;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path, "read")(e)),
        }
    }
    let root = fs::read(&root_path).map_err(io_err(&root_path, "read"))?;
    Ok((root, state))
}

fn save_state(path: &Path, repo: &VerifiedRepository) -> Result<(), VerifyCmdError> {
    let mut json = serde_json::to_vec_pretty(&repo.trusted_state()).unwrap_or_default();
    json.push(b'\n');
    let root_path = state_root_path(path);
    write_atomically(&root_path, repo.root_json())?;
    write_atomically(path, &json)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), VerifyCmdError> {
    let dir = crate::build::parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".moho-state-")
        .tempfile_in(&dir)
        .map_err(io_err(&dir, "create temporary file"))?;
    io::Write::write_all(&mut tmp, bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io_err(path, "write"))?;
    tmp.persist(path).map_err(|e| VerifyCmdError::Io {
        path: path.to_owned(),
        op: "rename into place",
        source: e.error,
    })?;
    Ok(())
}

fn fetch_err(path: &str) -> impl FnOnce(moho_release::FetchError) -> VerifyCmdError + '_ {
    move |source| {
        VerifyCmdError::Refused(VerifyError::Fetch {
            file: path.to_owned(),
            source,
        })
    }
}

fn check_target(
    repo: &VerifiedRepository,
    location: &RepoLocation,
    name: &str,
    file: Option<&Path>,
    node: Option<&NodeContext>,
    out: &mut String,
) -> Result<(), VerifyCmdError> {
    let info = repo.target(name)?.clone();
    let open = |path: Option<&Path>,
                target: &moho_release::TargetInfo|
     -> Result<Box<dyn Read>, VerifyCmdError> {
        match path {
            Some(p) => {
                let f = File::open(p).map_err(io_err(p, "open"))?;
                let len = f.metadata().map_err(io_err(p, "stat"))?.len();
                if len != target.length() {
                    return Err(VerifyError::TargetLengthMismatch {
                        name: target.name().to_owned(),
                        expected: target.length(),
                        actual: len,
                    }
                    .into());
                }
                Ok(Box::new(f))
            }
            None => location
                .open_target(target, target.length().saturating_add(1))
                .map(|(_, body)| body)
                .map_err(fetch_err(target.name())),
        }
    };
    let release = match repo.release(name) {
        Ok(r) => Some(r),
        Err(VerifyError::NotAnImage { .. }) if node.is_none() => None,
        Err(e) => return Err(e.into()),
    };
    let Some(release) = release else {
        let mut bytes = Vec::new();
        open(file, &info)?
            .read_to_end(&mut bytes)
            .map_err(|e| io_err(Path::new(name), "read")(e))?;
        info.verify_bytes(&bytes)?;
        let _ = writeln!(
            out,
            "target {name} ok: {} bytes, sha256 {}",
            info.length(),
            info.sha256()
        );
        return Ok(());
    };
    // Without node facts, check it as a node of its own board and first channel would.
    let own = NodeContext {
        board: release.custom().board.clone(),
        channel: release
            .custom()
            .channels
            .iter()
            .next()
            .cloned()
            .unwrap_or_default(),
        current_version: None,
    };
    let verified = repo.release_for(name, node.unwrap_or(&own))?;
    let index_info = verified.chunk_index();
    let mut index_bytes = Vec::new();
    open(None, index_info)?
        .read_to_end(&mut index_bytes)
        .map_err(|e| io_err(Path::new(index_info.name()), "read")(e))?;
    let index = verified.verify_chunk_index(&index_bytes)?;
    index.verify_image(open(file, verified.image())?)?;
    let _ = writeln!(
        out,
        "image {name} ok: version {}, board {}, channels {}, {} bytes, {} chunks of {} bytes verified",
        verified.version(),
        verified.board(),
        verified
            .channels()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(","),
        verified.image().length(),
        index.index().chunk_count(),
        verified.chunk_size()
    );
    Ok(())
}

/// Checks the bytes of every target, as a mirror audit would: each image
/// chunk by chunk against its signed chunk index, every other target
/// against its signed length and hash. Every failure is reported, by name.
fn check_all(
    repo: &VerifiedRepository,
    location: &RepoLocation,
    out: &mut String,
) -> Result<(), VerifyCmdError> {
    let indexes: std::collections::BTreeSet<&str> = repo
        .releases()
        .map(|r| r.custom().chunk_index.as_str())
        .collect();
    let mut checked = 0;
    let mut failures = Vec::new();
    for target in repo.targets() {
        let name = target.name();
        if indexes.contains(name) {
            // Checked with its image (and reported there if it fails).
            continue;
        }
        checked += 1;
        if let Err(e) = check_target(repo, location, name, None, None, out) {
            failures.push((name.to_owned(), e));
        }
    }
    if !failures.is_empty() {
        return Err(VerifyCmdError::TargetsFailed { checked, failures });
    }
    let _ = writeln!(
        out,
        "every target ok: {checked} target(s) and their chunk indexes verified byte for byte"
    );
    Ok(())
}

fn find_file(
    repo: &VerifiedRepository,
    path: &Path,
    out: &mut String,
) -> Result<(), VerifyCmdError> {
    let mut f = File::open(path).map_err(io_err(path, "open"))?;
    let mut h = Sha256Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut length = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err(path, "read"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        length += n as u64;
    }
    let sha = h.finish();
    match repo
        .targets()
        .find(|t| t.sha256() == sha && t.length() == length)
    {
        Some(t) => {
            let _ = writeln!(out, "{} is the signed target {}", path.display(), t.name());
            Ok(())
        }
        None => Err(VerifyCmdError::FileNotSigned {
            path: path.to_owned(),
            length,
            sha256: sha.to_string(),
        }),
    }
}
