//! How a node signs its requests, and how the server checks them.
//!
//! Every signed request carries three headers:
//!
//! - `moho-node-id`: the node's id;
//! - `moho-counter`: a decimal u64 that must be larger than the last one the
//!   server accepted from this node (replay protection). Agents use
//!   [`next_counter`]: `max(last + 1, unix time in milliseconds)`, so the
//!   counter keeps rising even if the agent lost its own record of it;
//! - `moho-signature`: base64 (standard, padded) of the ed25519 signature of
//!   [`canonical_bytes`] with the node's key.
//!
//! The signed bytes bind the method, the path (with query), the node id, the
//! counter and the SHA-256 of the exact body bytes, so no part of a request
//! can be swapped or replayed. Verification is strict (`verify_strict`: no
//! malleable signatures, no weak keys).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Header naming the node.
pub const NODE_ID_HEADER: &str = "moho-node-id";
/// Header carrying the counter.
pub const COUNTER_HEADER: &str = "moho-counter";
/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "moho-signature";

/// Domain separation prefix of the signed bytes.
const DOMAIN: &[u8] = b"moho-request-v1\n";

/// Why a signature or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// A public key that is not base64 of 32 bytes or not a valid point.
    #[error("invalid public key {0:?}: expected base64 of a 32-byte ed25519 key")]
    BadPublicKey(String),
    /// A signature header that is not base64 of 64 bytes.
    #[error("invalid signature encoding {0:?}: expected base64 of 64 bytes")]
    BadSignatureEncoding(String),
    /// A counter header that is not a decimal u64.
    #[error("invalid counter {0:?}: expected a decimal number")]
    BadCounter(String),
    /// A header that is missing.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The signature does not match the request and key.
    #[error("signature does not match the request for node {0:?}")]
    Mismatch(String),
}

/// The three signature headers of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSignature {
    /// `moho-node-id`.
    pub node_id: String,
    /// `moho-counter`.
    pub counter: u64,
    /// `moho-signature` (base64).
    pub signature: String,
}

impl RequestSignature {
    /// Reads the headers through a lookup function (header name → value).
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, SigningError> {
        let node_id = get(NODE_ID_HEADER).ok_or(SigningError::MissingHeader(NODE_ID_HEADER))?;
        let counter = get(COUNTER_HEADER).ok_or(SigningError::MissingHeader(COUNTER_HEADER))?;
        let signature =
            get(SIGNATURE_HEADER).ok_or(SigningError::MissingHeader(SIGNATURE_HEADER))?;
        Ok(Self {
            node_id: node_id.to_owned(),
            counter: counter
                .trim()
                .parse()
                .map_err(|_| SigningError::BadCounter(counter.to_owned()))?,
            signature: signature.to_owned(),
        })
    }

    /// The headers as (name, value) pairs.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (NODE_ID_HEADER, self.node_id.clone()),
            (COUNTER_HEADER, self.counter.to_string()),
            (SIGNATURE_HEADER, self.signature.clone()),
        ]
    }
}

/// The bytes a node signs: `"moho-request-v1\n" METHOD "\n" PATH "\n"
/// NODE_ID "\n" COUNTER "\n" hex(sha256(BODY))`.
pub fn canonical_bytes(
    method: &str,
    path_and_query: &str,
    node_id: &str,
    counter: u64,
    body: &[u8],
) -> Vec<u8> {
    let digest = hex::encode(Sha256::digest(body));
    let mut out = Vec::with_capacity(DOMAIN.len() + path_and_query.len() + node_id.len() + 100);
    out.extend_from_slice(DOMAIN);
    for part in [
        method.to_ascii_uppercase().as_str(),
        path_and_query,
        node_id,
        &counter.to_string(),
        &digest,
    ] {
        out.extend_from_slice(part.as_bytes());
        out.push(b'\n');
    }
    out.pop();
    out
}

/// Signs a request.
pub fn sign_request(
    key: &SigningKey,
    method: &str,
    path_and_query: &str,
    node_id: &str,
    counter: u64,
    body: &[u8],
) -> RequestSignature {
    let sig = key.sign(&canonical_bytes(
        method,
        path_and_query,
        node_id,
        counter,
        body,
    ));
    RequestSignature {
        node_id: node_id.to_owned(),
        counter,
        signature: STANDARD.encode(sig.to_bytes()),
    }
}

/// Checks a request's signature against the node's key.
pub fn verify_request(
    key: &VerifyingKey,
    method: &str,
    path_and_query: &str,
    sig: &RequestSignature,
    body: &[u8],
) -> Result<(), SigningError> {
    let raw = STANDARD
        .decode(sig.signature.trim())
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| SigningError::BadSignatureEncoding(sig.signature.clone()))?;
    let signature = Signature::from_bytes(&raw);
    key.verify_strict(
        &canonical_bytes(method, path_and_query, &sig.node_id, sig.counter, body),
        &signature,
    )
    .map_err(|_| SigningError::Mismatch(sig.node_id.clone()))
}

/// Encodes a public key for the wire.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    STANDARD.encode(key.to_bytes())
}

/// Decodes a public key from the wire.
pub fn decode_public_key(s: &str) -> Result<VerifyingKey, SigningError> {
    let bad = || SigningError::BadPublicKey(s.to_owned());
    let raw = STANDARD.decode(s.trim()).map_err(|_| bad())?;
    let raw = <[u8; 32]>::try_from(raw.as_slice()).map_err(|_| bad())?;
    let key = VerifyingKey::from_bytes(&raw).map_err(|_| bad())?;
    if key.is_weak() { Err(bad()) } else { Ok(key) }
}

/// The counter for the next request: `max(last + 1, now_unix_millis)`.
pub fn next_counter(last: u64, now_unix_millis: u64) -> u64 {
    last.saturating_add(1).max(now_unix_millis)
}

/// Whether a presented counter is fresh given the last accepted one.
pub fn counter_is_fresh(last_accepted: Option<u64>, presented: u64) -> bool {
    last_accepted.is_none_or(|last| presented > last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn signed_request_verifies_and_any_change_breaks_it() {
        let k = key(7);
        let body = br#"{"node_id":"n1"}"#;
        let sig = sign_request(&k, "POST", "/v1/check-in", "n1", 42, body);
        let vk = k.verifying_key();
        verify_request(&vk, "POST", "/v1/check-in", &sig, body).unwrap();
        assert!(verify_request(&vk, "POST", "/v1/events", &sig, body).is_err());
        assert!(verify_request(&vk, "POST", "/v1/check-in", &sig, b"{}").is_err());
        let other_counter = RequestSignature {
            counter: 43,
            ..sig.clone()
        };
        assert!(verify_request(&vk, "POST", "/v1/check-in", &other_counter, body).is_err());
        let other_node = RequestSignature {
            node_id: "n2".into(),
            ..sig.clone()
        };
        let err = verify_request(&vk, "POST", "/v1/check-in", &other_node, body).unwrap_err();
        assert_eq!(
            err.to_string(),
            "signature does not match the request for node \"n2\""
        );
        assert!(
            verify_request(&key(8).verifying_key(), "POST", "/v1/check-in", &sig, body).is_err()
        );
    }

    #[test]
    fn headers_round_trip_and_bad_values_are_named() {
        let sig = sign_request(&key(1), "POST", "/v1/events", "n1", 5, b"");
        let h = sig.headers();
        let back = RequestSignature::from_headers(|n| {
            h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str())
        });
        assert_eq!(back.unwrap(), sig);
        let err = RequestSignature::from_headers(|n| match n {
            NODE_ID_HEADER => Some("n1"),
            COUNTER_HEADER => Some("soon"),
            _ => Some("x"),
        })
        .unwrap_err();
        assert_eq!(err, SigningError::BadCounter("soon".into()));
        assert_eq!(
            RequestSignature::from_headers(|_| None).unwrap_err(),
            SigningError::MissingHeader(NODE_ID_HEADER)
        );
    }

    #[test]
    fn public_keys_round_trip_and_garbage_is_refused() {
        let vk = key(3).verifying_key();
        assert_eq!(decode_public_key(&encode_public_key(&vk)).unwrap(), vk);
        assert!(decode_public_key("not base64!").is_err());
        assert!(decode_public_key(&STANDARD.encode([0u8; 31])).is_err());
        // The identity point is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(decode_public_key(&STANDARD.encode(identity)).is_err());
    }

    #[test]
    fn counters_only_go_up() {
        assert_eq!(next_counter(5, 1_000), 1_000);
        assert_eq!(next_counter(2_000, 1_000), 2_001);
        assert!(counter_is_fresh(None, 0));
        assert!(counter_is_fresh(Some(5), 6));
        assert!(!counter_is_fresh(Some(5), 5));
    }

    proptest::proptest! {
        #[test]
        fn any_body_signed_verifies(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512), counter: u64) {
            let k = key(9);
            let sig = sign_request(&k, "post", "/v1/events?x=1", "node", counter, &body);
            proptest::prop_assert!(verify_request(&k.verifying_key(), "POST", "/v1/events?x=1", &sig, &body).is_ok());
        }
    }
}
