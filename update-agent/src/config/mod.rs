//! Agent configuration in three stages (DESIGN §7):
//!
//! 1. [`raw`]: TOML fragments read from the drop-in directories, each with
//!    the file it came from.
//! 2. [`merge`]: one flat map of dotted keys, later files winning, that
//!    remembers which file set each key.
//! 3. [`validate`]: narrow types ([`types::AgentConfig`]); every unknown key,
//!    missing key or bad value is an error naming file, key and value.

pub mod merge;
pub mod raw;
pub mod types;
pub mod validate;

use std::path::{Path, PathBuf};

pub use types::AgentConfig;
pub use validate::ConfigError;

/// The drop-in directories, in the order they are read.
pub const DEFAULT_DIRS: [&str; 3] = [
    "/usr/lib/moho/agent.d",
    "/etc/moho/agent.d",
    "/run/moho/agent.d",
];

/// Reads, merges and validates the configuration from `dirs`.
pub fn load(dirs: &[PathBuf]) -> Result<(AgentConfig, merge::Merged), ConfigError> {
    let fragments = raw::read_fragments(dirs)?;
    let merged = merge::merge(&fragments);
    let config = validate::validate(&merged, dirs)?;
    Ok((config, merged))
}

/// The directories to read: `explicit` if any were given, else the defaults.
pub fn dirs_or_default(explicit: &[PathBuf]) -> Vec<PathBuf> {
    if explicit.is_empty() {
        DEFAULT_DIRS
            .iter()
            .map(|d| Path::new(d).to_owned())
            .collect()
    } else {
        explicit.to_vec()
    }
}
