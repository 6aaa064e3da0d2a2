//! A Flatcar release as an operator registers it (pure): every value is
//! checked before it is stored, and spelt the way the Omaha answer needs it
//! (lower-case hex digests, a base URL ending in `/`). Flatcar payloads are
//! signed by Flatcar's release key, which `update_engine` checks against
//! the key in the node's image; Moho's TUF chain does not cover them, so
//! the server only vouches for where they are and what they hash to.

use moho_protocol::admin::{CreateFlatcarRelease, FlatcarPackage};
use moho_protocol::names::check_channel;
use moho_rollout::version::parse_version;

/// Most extra files (OEM and system extensions) per release.
pub const MAX_EXTRA: usize = 64;

/// Most channels per release.
pub const MAX_CHANNELS: usize = 16;

/// Longest base URL.
pub const MAX_URL: usize = 1024;

/// A registration that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: {rule}")]
pub struct ReleaseError {
    /// Which field.
    pub field: String,
    /// The value (cut to 80 characters).
    pub value: String,
    /// The rule.
    pub rule: &'static str,
}

fn refuse(field: impl Into<String>, value: &str, rule: &'static str) -> ReleaseError {
    ReleaseError {
        field: field.into(),
        value: value.chars().take(80).collect(),
        rule,
    }
}

fn hex_digest(field: String, value: &str, digits: usize) -> Result<String, ReleaseError> {
    if value.len() == digits && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else if digits == 64 {
        Err(refuse(field, value, "use 64 hex digits (SHA-256)"))
    } else {
        Err(refuse(field, value, "use 40 hex digits (SHA-1)"))
    }
}

fn package(field: &str, p: &FlatcarPackage) -> Result<FlatcarPackage, ReleaseError> {
    let name_ok = !p.name.is_empty()
        && p.name.len() <= 255
        && p.name != "."
        && p.name != ".."
        && p.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if !name_ok {
        return Err(refuse(
            format!("{field}.name"),
            &p.name,
            "use a file name of 1-255 characters of A-Z a-z 0-9 . _ + -",
        ));
    }
    if p.size == 0 || i64::try_from(p.size).is_err() {
        return Err(refuse(
            format!("{field}.size"),
            &p.size.to_string(),
            "use the file's length in bytes, above 0",
        ));
    }
    Ok(FlatcarPackage {
        name: p.name.clone(),
        size: p.size,
        sha256: hex_digest(format!("{field}.sha256"), &p.sha256, 64)?,
        sha1: p
            .sha1
            .as_deref()
            .map(|h| hex_digest(format!("{field}.sha1"), h, 40))
            .transpose()?,
    })
}

fn base_url(u: &str) -> Result<String, ReleaseError> {
    let rule = "use an http or https base URL without query or fragment, at most 1024 bytes";
    let parsed = url::Url::parse(u).map_err(|_| refuse("url", u, rule))?;
    if u.len() > MAX_URL
        || !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(refuse("url", u, rule));
    }
    let mut s = parsed.to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    Ok(s)
}

/// The registration checked and normalised.
pub fn check_release(r: &CreateFlatcarRelease) -> Result<CreateFlatcarRelease, ReleaseError> {
    if r.version.len() > 64 || r.version.trim() != r.version || parse_version(&r.version).is_err() {
        return Err(refuse(
            "version",
            &r.version,
            "use a Flatcar version such as 3815.2.1 (at most 64 characters)",
        ));
    }
    let board_ok = !r.board.is_empty()
        && r.board.len() <= 64
        && r.board
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !board_ok {
        return Err(refuse(
            "board",
            &r.board,
            "use a Flatcar board such as amd64-usr or arm64-usr",
        ));
    }
    if r.channels.is_empty() || r.channels.len() > MAX_CHANNELS {
        return Err(refuse(
            "channels",
            &r.channels.join(","),
            "name 1 to 16 channels",
        ));
    }
    for c in &r.channels {
        check_channel(c).map_err(|e| refuse("channels", c, e.rule))?;
    }
    if r.extra.len() > MAX_EXTRA {
        return Err(refuse(
            "extra",
            &r.extra.len().to_string(),
            "list at most 64 extra files",
        ));
    }
    let payload = package("payload", &r.payload)?;
    let mut extra = Vec::with_capacity(r.extra.len());
    let mut names = vec![payload.name.clone()];
    for (i, p) in r.extra.iter().enumerate() {
        let p = package(&format!("extra[{i}]"), p)?;
        if names.contains(&p.name) {
            return Err(refuse(
                format!("extra[{i}].name"),
                &p.name,
                "each file name appears once",
            ));
        }
        names.push(p.name.clone());
        extra.push(p);
    }
    Ok(CreateFlatcarRelease {
        version: r.version.clone(),
        board: r.board.clone(),
        channels: r.channels.clone(),
        url: base_url(&r.url)?,
        payload,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> CreateFlatcarRelease {
        CreateFlatcarRelease {
            version: "3815.2.1".into(),
            board: "amd64-usr".into(),
            channels: vec!["stable".into()],
            url: "https://mirror.example/amd64-usr/3815.2.1".into(),
            payload: FlatcarPackage {
                name: "flatcar_production_update.gz".into(),
                size: 1000,
                sha256: "AB".repeat(32),
                sha1: None,
            },
            extra: vec![],
        }
    }

    #[test]
    fn a_good_registration_is_normalised() {
        let r = check_release(&good()).unwrap();
        assert_eq!(r.url, "https://mirror.example/amd64-usr/3815.2.1/");
        assert_eq!(r.payload.sha256, "ab".repeat(32));
    }

    #[test]
    fn each_rule_names_its_field() {
        type Spoil = fn(&mut CreateFlatcarRelease);
        let cases: [(&str, Spoil); 11] = [
            ("version", |r| r.version = "3815".into()),
            ("version", |r| r.version = format!("1.2.{}", "3".repeat(70))),
            ("board", |r| r.board = "AMD64".into()),
            ("channels", |r| r.channels.clear()),
            ("channels", |r| r.channels = vec!["Stable".into()]),
            ("url", |r| r.url = "ftp://x/".into()),
            ("url", |r| r.url = "https://x/a?b=c".into()),
            ("payload.name", |r| r.payload.name = "../x".into()),
            ("payload.size", |r| r.payload.size = 0),
            ("payload.sha256", |r| r.payload.sha256 = "zz".into()),
            ("extra[0].name", |r| {
                r.extra = vec![r.payload.clone()];
            }),
        ];
        for (field, spoil) in cases {
            let mut r = good();
            spoil(&mut r);
            let e = check_release(&r).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }
}
