//! A bounded cache of parsed node public keys, keyed by the key's encoded
//! text. Parsing an ed25519 key decompresses a curve point (about 4.5 % of a
//! check-in's CPU in docs/benchmarks.md); the text → key mapping is a pure
//! function, so the cache needs no invalidation: a re-keyed node brings a new
//! text (a miss), a deleted node is refused before its key is looked up, and
//! two replicas can never disagree. When full it starts over (no eviction
//! order to keep).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use ed25519_dalek::VerifyingKey;
use moho_protocol::signing::{SigningError, decode_public_key};

/// Keys kept at most (about 250 bytes each).
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Parsed keys by their encoded text.
#[derive(Debug)]
pub struct KeyCache {
    capacity: usize,
    keys: Mutex<HashMap<String, VerifyingKey>>,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl KeyCache {
    /// A cache of at most `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The parsed key of `encoded`, as [`decode_public_key`] returns it.
    pub fn decode(&self, encoded: &str) -> Result<VerifyingKey, SigningError> {
        if let Some(k) = self.lock().get(encoded) {
            return Ok(*k);
        }
        let key = decode_public_key(encoded)?;
        let mut keys = self.lock();
        if keys.len() >= self.capacity {
            keys.clear();
        }
        keys.insert(encoded.to_owned(), key);
        Ok(key)
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VerifyingKey>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use moho_protocol::signing::encode_public_key;

    fn encoded(seed: u8) -> String {
        encode_public_key(&SigningKey::from_bytes(&[seed; 32]).verifying_key())
    }

    #[test]
    fn a_re_keyed_node_gets_its_new_key_not_the_cached_old_one() {
        let cache = KeyCache::default();
        let (old, new) = (encoded(1), encoded(2));
        assert_eq!(encode_public_key(&cache.decode(&old).unwrap()), old);
        assert_eq!(encode_public_key(&cache.decode(&new).unwrap()), new);
        assert_eq!(encode_public_key(&cache.decode(&old).unwrap()), old);
    }

    #[test]
    fn a_bad_key_is_refused_and_not_cached() {
        let cache = KeyCache::default();
        assert!(cache.decode("not a key").is_err());
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = KeyCache::with_capacity(3);
        for seed in 0..10 {
            let e = encoded(seed);
            assert_eq!(encode_public_key(&cache.decode(&e).unwrap()), e);
            assert!(cache.len() <= 3);
        }
    }
}
