//! Stage 1: the TOML fragments, as written, with the file each came from.
//!
//! Directories are read in the order given; inside one directory, `*.toml`
//! files in file-name order. A file with the same name in a later directory
//! replaces the earlier one entirely (as systemd drop-ins do), which is how
//! an operator masks a vendor fragment. A missing directory is fine; an
//! unreadable file or invalid TOML is an error naming the file.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::validate::ConfigError;

/// One parsed file.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// Where it came from.
    pub file: PathBuf,
    /// What it says.
    pub table: toml::Table,
}

/// Reads every fragment under `dirs`, in the order they apply.
pub fn read_fragments(dirs: &[PathBuf]) -> Result<Vec<Fragment>, ConfigError> {
    // file name → (directory index, path); later directories replace.
    let mut by_name: BTreeMap<(usize, String), PathBuf> = BTreeMap::new();
    let mut latest_dir: BTreeMap<String, usize> = BTreeMap::new();
    for (i, dir) in dirs.iter().enumerate() {
        for (name, path) in toml_files(dir)? {
            latest_dir.insert(name.clone(), i);
            by_name.insert((i, name), path);
        }
    }
    by_name
        .into_iter()
        .filter(|((i, name), _)| latest_dir.get(name) == Some(i))
        .map(|(_, path)| parse_file(&path))
        .collect()
}

fn toml_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, ConfigError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Read {
                file: dir.to_owned(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::Read {
            file: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") && !name.starts_with('.') {
            files.push((name, path));
        }
    }
    files.sort();
    Ok(files)
}

fn parse_file(path: &Path) -> Result<Fragment, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_owned(),
        source,
    })?;
    let table = text
        .parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            file: path.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
    Ok(Fragment {
        file: path.to_owned(),
        table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_directory_masks_the_same_file_name_and_order_is_by_name() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        fs::write(
            a.path().join("10-vendor.toml"),
            "[node]\nchannel = \"stable\"\n",
        )
        .unwrap();
        fs::write(a.path().join("20-board.toml"), "[node]\nboard = \"x\"\n").unwrap();
        fs::write(
            b.path().join("10-vendor.toml"),
            "[node]\nchannel = \"beta\"\n",
        )
        .unwrap();
        fs::write(b.path().join("README"), "not toml").unwrap();
        let f = read_fragments(&[a.path().into(), b.path().into()]).unwrap();
        let files: Vec<_> = f.iter().map(|f| f.file.clone()).collect();
        assert_eq!(
            files,
            vec![
                a.path().join("20-board.toml"),
                b.path().join("10-vendor.toml")
            ]
        );
    }

    #[test]
    fn bad_toml_names_the_file() {
        let a = tempfile::tempdir().unwrap();
        fs::write(a.path().join("x.toml"), "[node\n").unwrap();
        let err = read_fragments(&[a.path().into()]).unwrap_err().to_string();
        assert!(err.contains("x.toml"), "{err}");
    }
}
