//! Names on the wire: node ids, channels and groups. Checked on both ends so
//! that a bad name is refused with a clear message instead of being stored.

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
    }
}
