//! The shape of Moho target names: `<board>/<version>/<file>`, and nothing
//! that could climb out of the targets directory.
//!
//! `tough` quietly resolves `a/../b` to `b`; Moho refuses such names outright,
//! both when publishing and when verifying, so that a name means one path on
//! every mirror and on every node.

/// Longest accepted target name, bytes.
pub const MAX_TARGET_NAME_LEN: usize = 255;

/// Why a target name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetNameError {
    /// Empty, or longer than [`MAX_TARGET_NAME_LEN`].
    #[error("length {0} is outside 1..={MAX_TARGET_NAME_LEN}")]
    Length(usize),
    /// Starts with `/`: an absolute path.
    #[error("absolute path")]
    Absolute,
    /// Has a `.`, `..` or empty path component.
    #[error("path component {0:?} would traverse directories")]
    Traversal(String),
    /// Not three components.
    #[error("has {0} path components, expected <board>/<version>/<file>")]
    Shape(usize),
    /// A character outside `A-Z a-z 0-9 . _ + -` (or a component not starting with a letter or digit).
    #[error(
        "component {0:?} has characters outside [A-Za-z0-9._+-] or does not start with a letter or digit"
    )]
    Character(String),
}

/// Checks that `name` is `<board>/<version>/<file>` with plain components.
pub fn validate_target_name(name: &str) -> Result<(), TargetNameError> {
    if name.is_empty() || name.len() > MAX_TARGET_NAME_LEN {
        return Err(TargetNameError::Length(name.len()));
    }
    if name.starts_with('/') {
        return Err(TargetNameError::Absolute);
    }
    let parts: Vec<&str> = name.split('/').collect();
    if let Some(bad) = parts
        .iter()
        .find(|p| p.is_empty() || **p == "." || **p == "..")
    {
        return Err(TargetNameError::Traversal((*bad).to_owned()));
    }
    if parts.len() != 3 {
        return Err(TargetNameError::Shape(parts.len()));
    }
    for part in parts {
        validate_component(part)?;
    }
    Ok(())
}

/// Checks one component (a board name, a version, a file name).
pub fn validate_component(part: &str) -> Result<(), TargetNameError> {
    let ok_start = part
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_chars = part
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
    if ok_start && ok_chars && part != "." && part != ".." {
        Ok(())
    } else {
        Err(TargetNameError::Character(part.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_release_names() {
        validate_target_name("amd64-generic/1.2.3/root.img").unwrap();
        validate_target_name("amd64-generic/1.2.3-rc.1+build.5/root.img.chunks").unwrap();
    }

    #[test]
    fn refuses_traversal_and_odd_shapes() {
        assert_eq!(
            validate_target_name("../etc/passwd"),
            Err(TargetNameError::Traversal("..".into()))
        );
        assert_eq!(
            validate_target_name("amd64/1.0.0/../../x"),
            Err(TargetNameError::Traversal("..".into()))
        );
        assert_eq!(
            validate_target_name("/amd64/1.0.0/x"),
            Err(TargetNameError::Absolute)
        );
        assert_eq!(
            validate_target_name("amd64//x"),
            Err(TargetNameError::Traversal(String::new()))
        );
        assert_eq!(
            validate_target_name("amd64/x"),
            Err(TargetNameError::Shape(2))
        );
        assert_eq!(
            validate_target_name("amd64/1.0.0/a\\b"),
            Err(TargetNameError::Character("a\\b".into()))
        );
        assert_eq!(
            validate_target_name("amd64/1.0.0/.hidden"),
            Err(TargetNameError::Character(".hidden".into()))
        );
        assert_eq!(validate_target_name(""), Err(TargetNameError::Length(0)));
    }
}
