//! python-tuf's `ngclient`, the TUF reference implementation, as an
//! independent client of our repositories: installed from PyPI into a
//! virtual environment the tests make once (`target/tmp/python-tuf-VERSION`;
//! `$MOHO_PYTHON_TUF_VENV` names a ready one instead), and driven by
//! `tests/interop/tuf_fetch_all.py`. Without PyPI the tests fail saying so;
//! they are never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The python-tuf release the interoperability tests use.
pub const VERSION: &str = "6.0.0";

/// A target as the independent client downloaded and verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Target name.
    pub name: String,
    /// Bytes downloaded.
    pub length: u64,
    /// Their SHA-256 (hex).
    pub sha256: String,
}

/// The virtual environment's `python`: `$MOHO_PYTHON_TUF_VENV` as it is
/// (never changed), else `target/tmp/python-tuf-VERSION`, made on first
/// use with pip from PyPI. Panics with what to do when PyPI cannot be
/// reached: the interoperability test is never skipped.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Some(dir) = std::env::var_os("MOHO_PYTHON_TUF_VENV") {
            let python = Path::new(&dir).join("bin/python");
            let out = Command::new(&python)
                .args(["-c", "import tuf; print(tuf.__version__)"])
                .output();
            let found = out
                .as_ref()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
            assert_eq!(
                found.as_deref(),
                Some(VERSION),
                "MOHO_PYTHON_TUF_VENV={}: not a virtual environment with tuf=={VERSION} ({out:?})",
                python.display()
            );
            return python;
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/tmp")
            .join(format!("python-tuf-{VERSION}"));
        let python = dir.join("bin/python");
        // Written only once pip succeeded: a half-made environment is redone.
        let ready = dir.join(".moho-ready");
        if ready.exists() {
            return python;
        }
        let _ = std::fs::remove_dir_all(&dir);
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .expect("python3 is not installed (scripts/packages/test.txt lists python3-venv)");
        assert!(
            status.success(),
            "python3 -m venv {} failed (is python3-venv installed?)",
            dir.display()
        );
        // A bounded wait: an unreachable PyPI fails in about a minute.
        let out = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                "--timeout",
                "20",
                "--retries",
                "2",
                &format!("tuf=={VERSION}"),
            ])
            .output()
            .expect("running pip");
        assert!(
            out.status.success(),
            "the independent TUF client could not be installed: `pip install tuf=={VERSION}` \
             into {} failed. This test needs PyPI (https://pypi.org, or the index in \
             PIP_INDEX_URL) to be reachable, or MOHO_PYTHON_TUF_VENV naming a virtual \
             environment with tuf=={VERSION} installed. pip said:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&ready, VERSION).unwrap();
        python
    })
}

/// Refreshes the repository at `metadata_url` (trusting the root file
/// `root`) and downloads every target from `targets_url` with python-tuf,
/// working in `work`: every target as it verified it, or the client's
/// error output.
pub fn fetch_all(
    root: &Path,
    metadata_url: &str,
    targets_url: &str,
    work: &Path,
) -> Result<Vec<Fetched>, String> {
    let _ = std::fs::remove_dir_all(work);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/tuf_fetch_all.py");
    let out = Command::new(python())
        .arg(script)
        .arg(root)
        .arg(metadata_url)
        .arg(targets_url)
        .arg(work)
        .output()
        .expect("running python-tuf");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            Fetched {
                name: v["name"].as_str().unwrap().to_owned(),
                length: v["length"].as_u64().unwrap(),
                sha256: v["sha256"].as_str().unwrap().to_owned(),
            }
        })
        .collect())
}
