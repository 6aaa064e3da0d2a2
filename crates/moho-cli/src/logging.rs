//! Log set-up shared by the binaries: a `--log-format text|json` flag
//! (`MOHO_LOG_FORMAT`), the level filter from `MOHO_LOG` (else `RUST_LOG`,
//! else the binary's default), and the colour rule: ANSI escapes only when
//! stderr is a terminal and `NO_COLOR` is unset or empty (no-color.org).

use std::ffi::OsStr;
use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured only on a terminal without NO_COLOR.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, message and
    /// fields), never coloured: for log shippers.
    Json,
}

/// The logging flags every Moho binary takes (flatten into its CLI).
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format on stderr: text (coloured only on a terminal, never with
    /// NO_COLOR set) or json (one object per line). Levels: MOHO_LOG (else
    /// RUST_LOG), e.g. MOHO_LOG=debug.
    #[arg(
        long,
        global = true,
        env = "MOHO_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// Whether log lines may carry ANSI colour: only on a terminal, and not
/// when `NO_COLOR` is set to a non-empty value.
pub fn colour_allowed(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// The level filter: `MOHO_LOG`, else `RUST_LOG`, else `default`
/// (e.g. `"warn"`). An unparsable variable falls back to the next one.
fn filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_env("MOHO_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default))
}

/// Installs the global subscriber writing to stderr. Call once, first
/// thing in `main` after parsing the command line.
pub fn init(format: LogFormat, default_filter: &str) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(default_filter))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let colour = colour_allowed(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            builder.with_ansi(colour).init();
        }
        LogFormat::Json => builder.json().flatten_event(true).with_ansi(false).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_allowed(true, None));
        assert!(!colour_allowed(false, None));
        assert!(!colour_allowed(true, Some(OsStr::new("1"))));
        assert!(!colour_allowed(false, Some(OsStr::new("1"))));
        // no-color.org: an empty value does not count.
        assert!(colour_allowed(true, Some(OsStr::new(""))));
    }
}
