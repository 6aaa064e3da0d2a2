//! Metadata files of a repository directory, as `moho-release` asks for
//! them (blocking reads: callers run this on a blocking thread).

use std::io::Read;
use std::path::PathBuf;

use moho_release::{FetchError, MetadataSource};

/// Reads `DIR/metadata/<file>`.
#[derive(Debug, Clone)]
pub struct DirSource {
    /// Repository root (holding `metadata/`).
    pub root: PathBuf,
}

impl MetadataSource for DirSource {
    fn fetch(&self, file: &str, max_len: u64) -> Result<Option<Vec<u8>>, FetchError> {
        if file.contains('/') || file.starts_with('.') {
            return Err(FetchError::new(format!(
                "refusing metadata file name {file:?}"
            )));
        }
        let path = self.root.join("metadata").join(file);
        let f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FetchError::new(e)),
        };
        let mut bytes = Vec::new();
        f.take(max_len.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(FetchError::new)?;
        if bytes.len() as u64 > max_len {
            return Err(FetchError::new(format!(
                "{} is larger than {max_len} bytes",
                path.display()
            )));
        }
        Ok(Some(bytes))
    }
}
