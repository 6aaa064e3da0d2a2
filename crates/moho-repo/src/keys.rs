//! Signing keys on disk: ed25519 PKCS#8 PEM files, one per key, mode 0600.
//!
//! A keys directory holds `<role>-<n>.pem` files (`root-1.pem`,
//! `targets-1.pem`, `snapshot-1.pem`, `timestamp-1.pem`, ...). The role in
//! the file name only matters to `repo init` and `repo rotate`, which decide
//! which keys a new root trusts; signing matches keys to roles by key id, so
//! a directory may hold just the keys of the task at hand (for instance only
//! the online snapshot and timestamp keys for `repo refresh`).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use tough::async_trait;
use tough::key_source::KeySource;
use tough::schema::RoleType;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;
use tough::sign::{Sign, SignKeyPair};

/// The PEM label of a PKCS#8 private key.
const PEM_TAG: &str = "PRIVATE KEY";

/// Why keys could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file already exists; keys are never overwritten.
    #[error("{}: already exists; refusing to overwrite a key (nothing was written)", path.display())]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// A key file is readable by others.
    #[error("{}: mode {mode:04o} lets others read a private key; chmod 600 it", path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// A file is not an ed25519 PKCS#8 PEM key.
    #[error("{}: not an ed25519 PKCS#8 PEM private key: {reason}", path.display())]
    NotAKey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No key files where some were expected.
    #[error("{}: no {what} key (*.pem) found", dir.display())]
    Missing {
        /// The keys directory.
        dir: PathBuf,
        /// Which keys.
        what: String,
    },
    /// Key generation failed (the system RNG).
    #[error("generating an ed25519 key failed")]
    Generate,
    /// Reading or writing a file failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
}

impl KeyError {
    /// Whether the user gave something unusable (as opposed to a system failure).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, KeyError::Generate | KeyError::Io { .. })
    }
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> KeyError + use<> {
    let path = path.to_owned();
    move |source| KeyError::Io { path, op, source }
}

/// A new ed25519 key as PKCS#8 PEM text.
pub fn generate_pem() -> Result<String, KeyError> {
    let doc =
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
    Ok(pem::encode(&pem::Pem::new(PEM_TAG, doc.as_ref().to_vec())))
}

/// Writes `pem` to `path` with mode 0600; fails if the file exists.
pub fn write_new_key(path: &Path, pem: &str) -> Result<(), KeyError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_owned(),
                }
            } else {
                io_err(path, "create")(e)
            }
        })?;
    file.write_all(pem.as_bytes())
        .map_err(io_err(path, "write"))?;
    file.sync_all().map_err(io_err(path, "fsync"))
}

/// Creates `dir` (mode 0700) if it does not exist.
pub fn create_key_dir(dir: &Path) -> Result<(), KeyError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir, "create directory"))
}

/// One private key loaded from a file.
pub struct KeyFile {
    path: PathBuf,
    pkcs8: Vec<u8>,
    public: Key,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl KeyFile {
    /// Reads and checks one key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let meta = fs::metadata(path).map_err(io_err(path, "stat"))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let text = fs::read(path).map_err(io_err(path, "read"))?;
        let not_a_key = |reason: String| KeyError::NotAKey {
            path: path.to_owned(),
            reason,
        };
        let pem = pem::parse(&text).map_err(|e| not_a_key(e.to_string()))?;
        if pem.tag() != PEM_TAG {
            return Err(not_a_key(format!(
                "PEM label is {:?}, expected {PEM_TAG:?}",
                pem.tag()
            )));
        }
        let pair =
            Ed25519KeyPair::from_pkcs8(pem.contents()).map_err(|e| not_a_key(format!("{e}")))?;
        Ok(Self {
            path: path.to_owned(),
            pkcs8: pem.contents().to_vec(),
            public: pair.tuf_key(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public key as TUF metadata lists it.
    pub fn public(&self) -> &Key {
        &self.public
    }

    /// The TUF key id.
    pub fn key_id(&self) -> Decoded<Hex> {
        // Canonical JSON of a key built from bytes cannot fail to serialize.
        self.public.key_id().unwrap_or_else(|_| Vec::new().into())
    }

    /// The role the file name claims (`root-1.pem` → root).
    pub fn named_role(&self) -> Option<RoleType> {
        let stem = self.path.file_stem()?.to_str()?;
        let role = stem.split('-').next()?;
        match role {
            "root" => Some(RoleType::Root),
            "targets" => Some(RoleType::Targets),
            "snapshot" => Some(RoleType::Snapshot),
            "timestamp" => Some(RoleType::Timestamp),
            _ => None,
        }
    }

    /// A `tough` key source over this key.
    pub fn source(&self) -> Box<dyn KeySource> {
        Box::new(MemoryKey {
            pkcs8: self.pkcs8.clone(),
        })
    }
}

/// Every key file of a directory.
#[derive(Debug)]
pub struct KeyRing {
    dir: PathBuf,
    keys: Vec<KeyFile>,
}

impl KeyRing {
    /// Loads every `*.pem` of `dir` (sorted by name).
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let mut paths = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir, "read directory"))? {
            let entry = entry.map_err(io_err(dir, "read directory"))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pem") {
                paths.push(path);
            }
        }
        paths.sort();
        let keys = paths
            .iter()
            .map(|p| KeyFile::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::Missing {
                dir: dir.to_owned(),
                what: "signing".to_owned(),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            keys,
        })
    }

    /// The keys of both rings (a key present in both counts once).
    pub fn merged(a: KeyRing, b: KeyRing) -> KeyRing {
        let mut keys = a.keys;
        for k in b.keys {
            if !keys.iter().any(|have| have.key_id() == k.key_id()) {
                keys.push(k);
            }
        }
        KeyRing { dir: a.dir, keys }
    }

    /// Whether the file names name any key for `role`.
    pub fn has_role(&self, role: RoleType) -> bool {
        self.keys.iter().any(|k| k.named_role() == Some(role))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All keys.
    pub fn keys(&self) -> &[KeyFile] {
        &self.keys
    }

    /// The keys whose file name names `role`; an error if there are none.
    pub fn for_role(&self, role: RoleType) -> Result<Vec<&KeyFile>, KeyError> {
        let keys: Vec<&KeyFile> = self
            .keys
            .iter()
            .filter(|k| k.named_role() == Some(role))
            .collect();
        if keys.is_empty() {
            return Err(KeyError::Missing {
                dir: self.dir.clone(),
                what: format!("{role} (file {role}-<n>.pem)"),
            });
        }
        Ok(keys)
    }

    /// `tough` key sources for every key.
    pub fn sources(&self) -> Vec<Box<dyn KeySource>> {
        self.keys.iter().map(KeyFile::source).collect()
    }
}

/// A private key held in memory, for `tough`'s signing code.
struct MemoryKey {
    pkcs8: Vec<u8>,
}

impl fmt::Debug for MemoryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoryKey")
    }
}

#[async_trait]
impl KeySource for MemoryKey {
    async fn as_sign(
        &self,
    ) -> Result<Box<dyn Sign>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        let pair =
            Ed25519KeyPair::from_pkcs8(&self.pkcs8).map_err(|e| format!("ed25519 key: {e}"))?;
        Ok(Box::new(SignKeyPair::ED25519(pair)))
    }

    async fn write(
        &self,
        _value: &str,
        _key_id_hex: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Err("moho-repo never writes keys through tough".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_with_mode_0600_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("targets-1.pem");
        write_new_key(&path, &generate_pem().unwrap()).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let key = KeyFile::load(&path).unwrap();
        assert_eq!(key.named_role(), Some(RoleType::Targets));
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );

        let before = fs::read(&path).unwrap();
        let err = write_new_key(&path, &generate_pem().unwrap()).unwrap_err();
        assert!(matches!(err, KeyError::Exists { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), before);
    }

    #[test]
    fn refuses_readable_keys_and_non_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root-1.pem");
        write_new_key(&path, &generate_pem().unwrap()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            KeyFile::load(&path),
            Err(KeyError::Permissions { mode: 0o644, .. })
        ));

        let junk = dir.path().join("junk.pem");
        write_new_key(&junk, "hello").unwrap();
        assert!(matches!(
            KeyFile::load(&junk),
            Err(KeyError::NotAKey { .. })
        ));
    }
}
