//! `image-tools keygen`: the ed25519 keys of the four TUF roles.
//!
//! Root and targets keys are meant to live offline; snapshot and timestamp
//! keys sign often and may live on the publishing host (DESIGN §5). Nothing
//! is written if any of the files already exists.

use std::fmt;
use std::path::PathBuf;

use crate::cli::KeygenArgs;
use moho_repo::keys::{self, KeyError};

/// What `keygen` wrote.
#[derive(Debug)]
pub struct KeygenReport {
    files: Vec<PathBuf>,
}

impl fmt::Display for KeygenReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.files.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "wrote {}", p.display())?;
        }
        Ok(())
    }
}

/// Runs `keygen`.
pub fn run(args: &KeygenArgs) -> Result<KeygenReport, KeyError> {
    let mut names = Vec::new();
    for n in 1..=args.root_keys {
        names.push(format!("root-{n}.pem"));
    }
    for n in 1..=args.targets_keys {
        names.push(format!("targets-{n}.pem"));
    }
    names.push("snapshot-1.pem".to_owned());
    names.push("timestamp-1.pem".to_owned());
    let files: Vec<PathBuf> = names.iter().map(|n| args.out.join(n)).collect();
    // Check everything first so that a clash leaves nothing half-written.
    if let Some(existing) = files.iter().find(|p| p.symlink_metadata().is_ok()) {
        return Err(KeyError::Exists {
            path: existing.clone(),
        });
    }
    keys::create_key_dir(&args.out)?;
    for path in &files {
        keys::write_new_key(path, &keys::generate_pem()?)?;
    }
    Ok(KeygenReport { files })
}
