//! Who this node is to the update server: its id (configured, else the one
//! kept in the state directory since the first start, which is the machine
//! id or a generated one), its ed25519 key (generated once,
//! mode 0600 in the state directory) and the request counter that keeps
//! rising across restarts (replay protection, `moho_protocol::signing`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ed25519_dalek::SigningKey;
use moho_protocol::signing::{RequestSignature, next_counter, sign_request};

use crate::atomic_file::{AtomicFileError, read_optional, write_atomic};

/// The identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// I/O.
    #[error(transparent)]
    Io(#[from] AtomicFileError),
    /// Reading randomness.
    #[error("reading /dev/urandom: {0}")]
    Random(std::io::Error),
    /// A file with the wrong content.
    #[error("{}: {why}; move it away to make a new one", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// The node's id, key and counter.
#[derive(Debug)]
pub struct NodeIdentity {
    /// The id.
    pub id: String,
    key: SigningKey,
    counter_file: PathBuf,
    counter: Mutex<u64>,
}

fn random<const N: usize>() -> Result<[u8; N], IdentityError> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(IdentityError::Random)?;
    Ok(b)
}

fn corrupt(path: &Path, why: &str) -> IdentityError {
    IdentityError::Corrupt {
        path: path.to_owned(),
        why: why.to_owned(),
    }
}

impl NodeIdentity {
    /// Loads (or creates) the identity in `state_dir`. The id is
    /// `configured`, else the one kept in `state_dir/node-id`, which the
    /// first start takes from `/etc/machine-id` (`machine_id`) or makes up.
    /// Kept, because an image with an empty `/etc/machine-id` on a
    /// read-only root gets a new transient machine id at every boot, and
    /// the server must see one node, not one per boot.
    pub fn load(
        state_dir: &Path,
        configured: Option<&str>,
        machine_id: &Path,
    ) -> Result<Self, IdentityError> {
        let id = match configured {
            Some(id) => id.to_owned(),
            None => Self::stored_id(state_dir, machine_id)?,
        };
        let key_file = state_dir.join("node.key");
        let key = match read_optional(&key_file)? {
            Some(b) => {
                let raw = <[u8; 32]>::try_from(b.as_slice())
                    .map_err(|_| corrupt(&key_file, "expected 32 bytes of ed25519 seed"))?;
                SigningKey::from_bytes(&raw)
            }
            None => {
                let seed = random::<32>()?;
                write_atomic(&key_file, &seed)?;
                set_private(&key_file);
                SigningKey::from_bytes(&seed)
            }
        };
        let counter_file = state_dir.join("request-counter");
        let counter = match read_optional(&counter_file)? {
            Some(b) => String::from_utf8_lossy(&b)
                .trim()
                .parse()
                .map_err(|_| corrupt(&counter_file, "expected a decimal number"))?,
            None => 0,
        };
        Ok(Self {
            id,
            key,
            counter_file,
            counter: Mutex::new(counter),
        })
    }

    fn stored_id(state_dir: &Path, machine_id: &Path) -> Result<String, IdentityError> {
        let file = state_dir.join("node-id");
        if let Some(b) = read_optional(&file)? {
            let id = String::from_utf8_lossy(&b).trim().to_owned();
            moho_protocol::names::check_node_id(&id).map_err(|e| corrupt(&file, &e.to_string()))?;
            return Ok(id);
        }
        let from_machine = std::fs::read_to_string(machine_id)
            .ok()
            .map(|m| m.trim().to_owned())
            .filter(|m| moho_protocol::names::check_node_id(m).is_ok());
        let id = match from_machine {
            Some(m) => m,
            None => uuid::Uuid::from_bytes(random::<16>()?).to_string(),
        };
        write_atomic(&file, id.as_bytes())?;
        Ok(id)
    }

    /// The public key as the server expects it.
    pub fn public_key(&self) -> String {
        moho_protocol::signing::encode_public_key(&self.key.verifying_key())
    }

    /// Signs one request; the counter is persisted before it is used.
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        now_unix_millis: u64,
    ) -> Result<RequestSignature, IdentityError> {
        let mut last = self
            .counter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let counter = next_counter(*last, now_unix_millis);
        write_atomic(&self.counter_file, counter.to_string().as_bytes())?;
        *last = counter;
        Ok(sign_request(
            &self.key, method, path, &self.id, counter, body,
        ))
    }
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path.display(), error = %e, "could not make the node key private");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_stable_and_the_counter_keeps_rising_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("no-machine-id");
        let a = NodeIdentity::load(dir.path(), None, &none).unwrap();
        let s1 = a.sign("POST", "/v1/check-in", b"{}", 1000).unwrap();
        let b = NodeIdentity::load(dir.path(), None, &none).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(a.public_key(), b.public_key());
        // The clock went backwards; the counter still rises.
        let s2 = b.sign("POST", "/v1/check-in", b"{}", 10).unwrap();
        assert!(s2.counter > s1.counter);
        let key = std::fs::metadata(dir.path().join("node.key")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn the_machine_id_names_the_node_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        let mid = dir.path().join("machine-id");
        std::fs::write(&mid, "0123456789abcdef0123456789abcdef\n").unwrap();
        let a = NodeIdentity::load(dir.path(), None, &mid).unwrap();
        assert_eq!(a.id, "0123456789abcdef0123456789abcdef");
        let b = NodeIdentity::load(dir.path(), Some("rack1-n7"), &mid).unwrap();
        assert_eq!(b.id, "rack1-n7");
    }

    #[test]
    fn a_machine_id_that_changes_at_each_boot_does_not_rename_the_node() {
        // A read-only root with an empty /etc/machine-id: systemd makes a
        // transient one per boot.
        let dir = tempfile::tempdir().unwrap();
        let mid = dir.path().join("machine-id");
        std::fs::write(&mid, "0123456789abcdef0123456789abcdef\n").unwrap();
        let first = NodeIdentity::load(dir.path(), None, &mid).unwrap();
        std::fs::write(&mid, "fedcba9876543210fedcba9876543210\n").unwrap();
        let second = NodeIdentity::load(dir.path(), None, &mid).unwrap();
        assert_eq!(second.id, "0123456789abcdef0123456789abcdef");
        assert_eq!(first.public_key(), second.public_key());
    }
}
