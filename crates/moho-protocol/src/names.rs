//! Names on the wire: node ids, channels, groups, boards, and the versions a
//! node reports. Checked on both ends so that a bad name is refused with a
//! clear message instead of being stored.

/// A name that breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {rule}")]
pub struct NameError {
    /// Which kind of name.
    pub what: &'static str,
    /// The value given.
    pub value: String,
    /// The rule it broke.
    pub rule: &'static str,
}

/// Node ids: 1–128 characters of `A-Z a-z 0-9 . _ : -` (a machine id, a
/// UUID or a host name fits).
pub fn check_node_id(id: &str) -> Result<(), NameError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(NameError {
            what: "node id",
            value: id.to_owned(),
            rule: "use 1-128 characters of A-Z a-z 0-9 . _ : -",
        })
    }
}

/// Most bytes of a reported host name.
pub const MAX_HOSTNAME_LEN: usize = 255;

/// Host names as reported by nodes: at most [`MAX_HOSTNAME_LEN`] bytes, no
/// control characters. Otherwise free text (it is only displayed, and every
/// consumer must escape it).
pub fn check_hostname(s: &str) -> Result<(), NameError> {
    if s.len() <= MAX_HOSTNAME_LEN && !s.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(NameError {
            what: "hostname",
            value: s.chars().take(80).collect(),
            rule: "use at most 255 bytes and no control characters",
        })
    }
}

fn check_label(what: &'static str, s: &str) -> Result<(), NameError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(NameError {
            what,
            value: s.to_owned(),
            rule: "use 1-64 characters of a-z 0-9 - _, starting with a letter or digit",
        })
    }
}

/// Channel names (`alpha`, `beta`, `stable`, …).
pub fn check_channel(s: &str) -> Result<(), NameError> {
    check_label("channel", s)
}

/// Group names (`default`, `db-eu`, …).
pub fn check_group(s: &str) -> Result<(), NameError> {
    check_label("group", s)
}

/// Most bytes of a board name.
pub const MAX_BOARD_LEN: usize = 64;

/// Board names (`amd64-generic`, `arm64-usr`): 1-64 characters of
/// `A-Z a-z 0-9 . _ + -` starting with a letter or digit — the characters a
/// release's board may have in its target name, with a bound, so a node can
/// name every board a release can be signed for and nothing longer.
pub fn check_board(s: &str) -> Result<(), NameError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_BOARD_LEN
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(NameError {
            what: "board",
            value: s.chars().take(80).collect(),
            rule: "use 1-64 characters of A-Z a-z 0-9 . _ + -, starting with a letter or digit",
        })
    }
}

/// Most bytes of a version a node reports.
pub const MAX_VERSION_LEN: usize = 128;

/// A version a node reports (booted, fallback, staged): a semantic version
/// (`1.4.0`, `3815.2.0+build.7`) of at most [`MAX_VERSION_LEN`] bytes.
pub fn check_version(what: &'static str, s: &str) -> Result<(), NameError> {
    let rule = if s.len() > MAX_VERSION_LEN {
        "use at most 128 bytes"
    } else if moho_rollout::version::parse_version(s).is_err() || s.trim() != s {
        "use a semantic version such as 1.4.0"
    } else {
        return Ok(());
    };
    Err(NameError {
        what,
        value: s.chars().take(80).collect(),
        rule,
    })
}

/// Actor names the server itself writes into the audit log; no token may
/// take them.
pub const RESERVED_ACTORS: &[&str] = &["system", "local"];

/// Admin and viewer token names (the audit log's actor): 1-64 characters of
/// `A-Z a-z 0-9 . _ @ -`, starting with a letter or digit (`alice`,
/// `ci-deploy`, `bob@example.org`), and not one of [`RESERVED_ACTORS`].
pub fn check_token_name(s: &str) -> Result<(), NameError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if !ok {
        return Err(NameError {
            what: "token name",
            value: s.chars().take(80).collect(),
            rule: "use 1-64 characters of A-Z a-z 0-9 . _ @ -, starting with a letter or digit",
        });
    }
    if RESERVED_ACTORS.contains(&s) {
        return Err(NameError {
            what: "token name",
            value: s.to_owned(),
            rule: "this name is reserved for the server's own audit entries",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        assert!(check_node_id("4c4c4544-0042-3510-8052-b4c04f4e4d32").is_ok());
        assert!(check_node_id("web-01.example.org").is_ok());
        assert!(check_node_id("").is_err());
        assert!(
            check_node_id("a/b")
                .unwrap_err()
                .to_string()
                .contains("\"a/b\"")
        );
        assert!(check_channel("stable").is_ok());
        assert!(check_group("db_eu-2").is_ok());
        assert!(check_group("Prod").is_err());
        assert!(check_channel("-x").is_err());
        assert!(check_hostname("<b>web-01</b> \u{e9}").is_ok());
        assert!(check_hostname("a\nb").is_err());
        assert!(check_hostname(&"x".repeat(256)).is_err());
        assert!(check_token_name("bob@example.org").is_ok());
        assert!(check_token_name("ci-deploy_2").is_ok());
        assert!(check_token_name("system").is_err());
        assert!(check_token_name("-x").is_err());
        assert!(check_token_name("a b").is_err());
        assert!(check_token_name(&"a".repeat(65)).is_err());
        assert!(check_board("amd64-generic").is_ok());
        assert!(check_board("rpi4.v2+x_1").is_ok());
        assert!(check_board(&"b".repeat(64)).is_ok());
        assert!(check_board(&"b".repeat(65)).is_err());
        assert!(check_board("").is_err());
        assert!(check_board("../etc").is_err());
        assert!(check_board("a b").is_err());
        assert!(check_version("version", "3815.2.0+build.7").is_ok());
        assert!(check_version("version", "1.0").is_err());
        assert!(check_version("version", " 1.0.0").is_err());
        let long = format!("1.0.0+{}", "a".repeat(123));
        assert_eq!(long.len(), 129);
        let e = check_version("booted.version", &long).unwrap_err();
        assert!(e.to_string().contains("at most 128 bytes"), "{e}");
        assert!(
            e.value.len() <= 80,
            "the message does not repeat a huge value"
        );
        assert!(check_version("version", &long[..128]).is_ok());
    }
}
