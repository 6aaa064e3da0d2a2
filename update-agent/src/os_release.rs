//! The booted system's version: `VERSION_ID` in its os-release file, which
//! `image-tools build` writes into every slot image.

use std::path::{Path, PathBuf};

use semver::Version;

/// The booted version could not be determined.
#[derive(Debug, thiserror::Error)]
pub enum OsReleaseError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `VERSION_ID` is not a semantic version.
    #[error("{}: VERSION_ID={value:?} is not a semantic version (x.y.z)", path.display())]
    NotSemver {
        /// The file.
        path: PathBuf,
        /// The value.
        value: String,
    },
}

/// `VERSION_ID` of the os-release file at `path`; `None` when the file has
/// no `VERSION_ID` or does not exist (a node with no Moho image yet).
pub fn booted_version(path: &Path) -> Result<Option<Version>, OsReleaseError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(OsReleaseError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let Some(value) = parse_version_id(&text) else {
        return Ok(None);
    };
    Version::parse(&value)
        .map(Some)
        .map_err(|_| OsReleaseError::NotSemver {
            path: path.to_owned(),
            value,
        })
}

/// The unquoted `VERSION_ID` value of an os-release text.
pub fn parse_version_id(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("VERSION_ID=")
            .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_and_bare_version_ids() {
        assert_eq!(
            parse_version_id("NAME=Moho\nVERSION_ID=\"1.2.3\"\n").unwrap(),
            "1.2.3"
        );
        assert_eq!(parse_version_id("VERSION_ID=2.0.0").unwrap(), "2.0.0");
        assert!(parse_version_id("NAME=x").is_none());
    }

    #[test]
    fn a_non_semver_version_is_an_error_naming_file_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("os-release");
        std::fs::write(&p, "VERSION_ID=\"12\"\n").unwrap();
        let err = booted_version(&p).unwrap_err().to_string();
        assert!(
            err.contains("VERSION_ID=\"12\" is not a semantic version"),
            "{err}"
        );
    }
}
