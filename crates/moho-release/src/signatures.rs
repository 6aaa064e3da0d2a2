//! Parsing one metadata file and checking its signatures against a root.
//!
//! `tough`'s `Root::verify_role` is the final word on whether a threshold of
//! keys signed a role, but it only answers "threshold not met". To name the
//! attack (unknown key, bad signature, duplicate, short of threshold) each
//! signature is first classified here, over the canonical JSON of the
//! `signed` object as received; then `tough` must agree.

use std::collections::HashSet;

use olpc_cjson::CanonicalFormatter;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tough::schema::key::Key;
use tough::schema::{Role, RoleType, Root, Signed};

use crate::error::VerifyError;

/// A metadata file parsed into `tough`'s schema type, with the raw `signed`
/// object kept for signature checks.
#[derive(Debug)]
pub(crate) struct Parsed<T> {
    pub(crate) signed: Signed<T>,
    raw_signed: Value,
}

/// Parses `bytes` as signed metadata of role `T` (its `_type` must say so:
/// `tough`'s types would accept a snapshot as a timestamp, their fields
/// being alike).
pub(crate) fn parse<T: Role + DeserializeOwned>(
    file: &str,
    bytes: &[u8],
) -> Result<Parsed<T>, VerifyError> {
    let malformed = |reason: String| VerifyError::Malformed {
        file: file.to_owned(),
        reason,
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let raw_signed = value
        .get("signed")
        .cloned()
        .ok_or_else(|| malformed("no \"signed\" object".to_owned()))?;
    let expected = T::TYPE.to_string();
    match raw_signed.get("_type").and_then(Value::as_str) {
        Some(t) if t == expected => {}
        other => {
            return Err(malformed(format!(
                "_type is {other:?}, expected {expected:?}"
            )));
        }
    }
    let signed: Signed<T> = serde_json::from_value(value).map_err(|e| malformed(e.to_string()))?;
    Ok(Parsed { signed, raw_signed })
}

/// Checks that a threshold of `role`'s keys in `root` signed `parsed`.
pub(crate) fn check<T: Role + Serialize>(
    root: &Root,
    role: RoleType,
    file: &str,
    parsed: &Parsed<T>,
) -> Result<(), VerifyError> {
    let role_keys = root
        .roles
        .get(&role)
        .ok_or_else(|| VerifyError::Malformed {
            file: file.to_owned(),
            reason: format!("the root names no {role} keys"),
        })?;
    let threshold = role_keys.threshold.get();
    let mut message = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut message, CanonicalFormatter::new());
    parsed
        .raw_signed
        .serialize(&mut ser)
        .map_err(|e| VerifyError::Malformed {
            file: file.to_owned(),
            reason: format!("no canonical form: {e}"),
        })?;

    let mut seen_keyids = HashSet::new();
    let mut valid_public_keys: HashSet<&[u8]> = HashSet::new();
    let (mut unknown, mut bad, mut duplicate) = (None, None, None);
    for sig in &parsed.signed.signatures {
        let keyid = hex::encode(&sig.keyid);
        if !seen_keyids.insert(sig.keyid.as_ref()) {
            return Err(VerifyError::DuplicateSignature {
                file: file.to_owned(),
                role,
                keyid,
            });
        }
        let key = match root.keys.get(&sig.keyid) {
            Some(key) if role_keys.keyids.contains(&sig.keyid) => key,
            _ => {
                unknown.get_or_insert(keyid);
                continue;
            }
        };
        let Key::Ed25519 { keyval, .. } = key else {
            return Err(VerifyError::UnsupportedKey {
                file: file.to_owned(),
                role,
                keyid,
            });
        };
        let public: &[u8] = keyval.public.as_ref();
        let ok =
            aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, public)
                .verify(&message, sig.sig.as_ref())
                .is_ok();
        if !ok {
            bad.get_or_insert(keyid);
        } else if !valid_public_keys.insert(public) {
            // One key listed under two key ids: it still counts once.
            duplicate.get_or_insert(keyid);
        }
    }

    let valid = valid_public_keys.len();
    if valid as u64 >= threshold {
        // Our count says yes; tough must say so too.
        return root
            .verify_role(&parsed.signed)
            .map_err(|e| VerifyError::BadSignature {
                file: file.to_owned(),
                role,
                keyid: format!("(tough disagrees: {e})"),
            });
    }
    let file = file.to_owned();
    Err(if let Some(keyid) = duplicate {
        VerifyError::DuplicateSignature { file, role, keyid }
    } else if let Some(keyid) = bad {
        VerifyError::BadSignature { file, role, keyid }
    } else if let Some(keyid) = unknown {
        VerifyError::UnknownKey { file, role, keyid }
    } else {
        VerifyError::ThresholdNotMet {
            file,
            role,
            valid,
            threshold,
        }
    })
}
