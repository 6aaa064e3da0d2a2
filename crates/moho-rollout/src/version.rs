//! Version comparison of OS releases (semantic versions, DESIGN §5).

use std::cmp::Ordering;

use crate::decide::VersionRelation;

/// A version string that is not a semantic version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {0:?}: expected a semantic version such as 1.4.0")]
pub struct VersionError(pub String);

/// Parses a release version.
pub fn parse_version(v: &str) -> Result<semver::Version, VersionError> {
    semver::Version::parse(v.trim()).map_err(|_| VersionError(v.to_owned()))
}

/// How the `booted` version relates to the `release` version.
pub fn relation(booted: &str, release: &str) -> Result<VersionRelation, VersionError> {
    Ok(match parse_version(booted)?.cmp(&parse_version(release)?) {
        Ordering::Less => VersionRelation::Older,
        Ordering::Equal => VersionRelation::Same,
        Ordering::Greater => VersionRelation::Newer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_semantically_not_as_text() {
        assert_eq!(relation("1.9.0", "1.10.0").unwrap(), VersionRelation::Older);
        assert_eq!(relation("1.10.0", "1.10.0").unwrap(), VersionRelation::Same);
        assert_eq!(relation("2.0.0", "1.10.0").unwrap(), VersionRelation::Newer);
        assert_eq!(
            relation("1.0.0-rc.1", "1.0.0").unwrap(),
            VersionRelation::Older
        );
        assert!(
            relation("one", "1.0.0")
                .unwrap_err()
                .to_string()
                .contains("\"one\"")
        );
    }
}
