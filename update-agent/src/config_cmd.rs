//! `update-agent config`: the resolved configuration and which file set
//! each key (keys no file sets have their documented defaults).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::{self, AgentConfig, ConfigError};

/// `update-agent config --json`.
#[derive(Debug, Serialize)]
pub struct ConfigView {
    /// Directories read, in order.
    pub dirs: Vec<PathBuf>,
    /// The validated configuration.
    pub config: AgentConfig,
    /// Dotted key → the file that set it.
    pub sources: BTreeMap<String, PathBuf>,
}

/// Loads the configuration from `dirs` and describes it.
pub fn describe(dirs: &[PathBuf]) -> Result<ConfigView, ConfigError> {
    let (config, merged) = config::load(dirs)?;
    Ok(ConfigView {
        dirs: dirs.to_vec(),
        config,
        sources: merged.keys.into_iter().map(|(k, s)| (k, s.file)).collect(),
    })
}

/// Human-readable form: every key that is set, with its file.
pub fn render_text(view: &ConfigView) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    out.push_str("# directories, in order: ");
    out.push_str(
        &view
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    out.push('\n');
    out.push_str(&serde_json::to_string_pretty(&view.config)?);
    out.push_str("\n# set by:\n");
    for (k, f) in &view.sources {
        out.push_str(&format!("#   {k}: {}\n", f.display()));
    }
    Ok(out)
}
