//! Where a target's file lives below a repository's `targets/` (TUF
//! specification §5.7.3): with consistent snapshots, target `dir/sub/file`
//! of SHA-256 `HASH` is the file `dir/sub/HASH.file`.
//!
//! Moho repositories made before this rule followed `tough`'s naming,
//! `HASH.dir/sub/file` (the "legacy" layout). Readers try the
//! specification's path first and the legacy one second, so both kinds of
//! repository keep working; `image-tools repo migrate` adds the
//! specification's paths to an old repository.

use crate::digest::Sha256Digest;

/// Which way a repository names its consistent-snapshot target files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `dir/HASH.basename`, as the TUF specification says.
    Spec,
    /// `HASH.dir/basename`, as `tough` and older Moho tools write it.
    Legacy,
}

/// The file of target `name` with SHA-256 `sha256` in `layout`, relative to
/// the targets directory. Without consistent snapshots it is the name.
pub fn target_path(name: &str, sha256: &Sha256Digest, consistent: bool, layout: Layout) -> String {
    if !consistent {
        return name.to_owned();
    }
    match layout {
        Layout::Spec => match name.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/{sha256}.{base}"),
            None => format!("{sha256}.{name}"),
        },
        Layout::Legacy => format!("{sha256}.{name}"),
    }
}

/// The legacy path of a file requested at a specification path, if the
/// request has that shape (`dir.../HASH.basename`, at least one directory:
/// a top-level target is named the same way in both layouts). Lets a
/// server answer a conforming client from a repository not yet migrated.
pub fn legacy_path_of(spec_path: &str) -> Option<String> {
    let (dir, base) = spec_path.rsplit_once('/')?;
    let (hash, file) = base.split_once('.')?;
    if dir.is_empty() || file.is_empty() || hash.parse::<Sha256Digest>().is_err() {
        return None;
    }
    Some(format!("{hash}.{dir}/{file}"))
}

/// Whether a top-level entry of `targets/` belongs to the legacy layout
/// (`HASH.board`, a directory whose name starts with a SHA-256).
pub fn is_legacy_entry(file_name: &str) -> bool {
    file_name
        .split_once('.')
        .is_some_and(|(hash, rest)| !rest.is_empty() && hash.parse::<Sha256Digest>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Sha256Digest {
        Sha256Digest::of(b"image")
    }

    #[test]
    fn spec_paths_put_the_hash_before_the_basename() {
        let d = digest();
        assert_eq!(
            target_path("amd64/1.0.0/root.img", &d, true, Layout::Spec),
            format!("amd64/1.0.0/{d}.root.img")
        );
        assert_eq!(
            target_path("amd64/1.0.0/root.img", &d, true, Layout::Legacy),
            format!("{d}.amd64/1.0.0/root.img")
        );
        assert_eq!(
            target_path("file.txt", &d, true, Layout::Spec),
            format!("{d}.file.txt")
        );
        assert_eq!(
            target_path("amd64/1.0.0/root.img", &d, false, Layout::Spec),
            "amd64/1.0.0/root.img"
        );
    }

    #[test]
    fn a_spec_request_maps_to_its_legacy_file_and_nothing_else_does() {
        let d = digest();
        let spec = target_path("amd64/1.0.0/root.img.chunks", &d, true, Layout::Spec);
        assert_eq!(
            legacy_path_of(&spec),
            Some(target_path(
                "amd64/1.0.0/root.img.chunks",
                &d,
                true,
                Layout::Legacy
            ))
        );
        assert_eq!(legacy_path_of(&format!("{d}.file.txt")), None);
        assert_eq!(legacy_path_of("amd64/1.0.0/root.img"), None);
        assert_eq!(legacy_path_of(&format!("amd64/{d}.")), None);
        assert_eq!(legacy_path_of("amd64/abc.root.img"), None);
    }

    #[test]
    fn legacy_entries_are_recognised_by_their_hash() {
        assert!(is_legacy_entry(&format!("{}.amd64-generic", digest())));
        assert!(!is_legacy_entry("amd64-generic"));
        assert!(!is_legacy_entry(&format!("{}.", digest())));
        assert!(!is_legacy_entry("deadbeef.amd64"));
    }
}
