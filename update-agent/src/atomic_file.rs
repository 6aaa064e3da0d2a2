//! Files that are replaced, never half-written: write a temporary file in
//! the same directory, fsync it, rename it over the target, fsync the
//! directory. After a crash the file holds the old or the new content.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A state file could not be read or replaced.
#[derive(Debug, thiserror::Error)]
#[error("{}: {op}: {source}", path.display())]
pub struct AtomicFileError {
    /// The file.
    pub path: PathBuf,
    /// What was being done.
    pub op: &'static str,
    /// Why.
    pub source: io::Error,
}

fn err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> AtomicFileError {
    let path = path.to_owned();
    move |source| AtomicFileError { path, op, source }
}

/// Replaces `path` with `bytes` atomically and durably (mode 0600).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AtomicFileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(err(dir, "creating the directory"))?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err(&tmp, "creating a temporary file"))?;
        f.write_all(bytes).map_err(err(&tmp, "writing"))?;
        f.sync_all().map_err(err(&tmp, "fsync"))?;
        fs::rename(&tmp, path).map_err(err(path, "renaming into place"))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err(dir, "fsync of the directory"))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The content of `path`, or `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, AtomicFileError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(path, "reading")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/state.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(read_optional(&p).unwrap().unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert!(read_optional(&dir.path().join("absent")).unwrap().is_none());
    }
}
