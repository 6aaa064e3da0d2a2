//! The release facts every component agrees on: what a signed OS image target
//! carries in its TUF `custom` metadata (DESIGN §5).
//!
//! `image-tools` writes these fields when it adds a target, the agent reads
//! them from verified metadata, and the server reads them when it syncs
//! releases from the repository. Only the shape lives here; signing and
//! verification are the release crate's job.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Default chunk size of the chunk index: 4 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 4 * 1024 * 1024;

/// The `custom` object of an OS image target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageTargetCustom {
    /// Release version (semver), e.g. `"1.4.0"`.
    pub version: String,
    /// Board (hardware/arch family), e.g. `"amd64-generic"`.
    pub board: String,
    /// Channels this release is signed for, e.g. `["alpha", "beta"]`.
    pub channels: BTreeSet<String>,
    /// Chunk size of the chunk index, bytes (a power of two).
    pub chunk_size: u64,
    /// Target name of the chunk index that covers this image.
    pub chunk_index: String,
    /// The oldest booted version this image may be applied from, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// Signed permission to install this image over a newer (or the same)
    /// version: a deliberate rollback release. Absent means refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_downgrade: bool,
}

/// The target name of an image or its companion files: `<board>/<version>/<file>`.
pub fn target_name(board: &str, version: &str, file: &str) -> String {
    format!("{board}/{version}/{file}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_metadata_round_trips_as_json() {
        let c = ImageTargetCustom {
            version: "1.2.3".into(),
            board: "amd64-generic".into(),
            channels: ["beta".to_owned(), "alpha".to_owned()].into(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            chunk_index: target_name("amd64-generic", "1.2.3", "chunks.json"),
            min_version: None,
            allow_downgrade: false,
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["channels"], serde_json::json!(["alpha", "beta"]));
        assert!(json.get("min_version").is_none());
        // Older metadata without the field still parses; unset is refused.
        assert!(json.get("allow_downgrade").is_none());
        let back: ImageTargetCustom = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }
}
