//! The command line: global flags (where the server is, which token,
//! `--json`) and one subcommand per resource, each defined beside the code
//! that runs it (`crate::commands`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::audit::AuditArgs;
use crate::commands::channels::ChannelsCommand;
use crate::commands::enrollment::EnrollmentCommand;
use crate::commands::events::EventsArgs;
use crate::commands::fleetlock::FleetLockCommand;
use crate::commands::groups::GroupsCommand;
use crate::commands::holds::HoldsCommand;
use crate::commands::nodes::NodesCommand;
use crate::commands::releases::ReleasesCommand;
use crate::commands::rollouts::RolloutsCommand;
use crate::commands::tokens::TokensCommand;
use crate::settings::RawSettings;

/// Moho admin CLI: drives an update server through its admin API.
///
/// The server and token come from flags, else the environment (MOHO_SERVER,
/// MOHO_TOKEN or MOHO_TOKEN_FILE, MOHO_CA_CERT), else the config file
/// (~/.config/moho/admin.toml or MOHO_ADMIN_CONFIG). Exit codes: 0 done,
/// 1 server failure, 2 bad arguments or config, 3 server unreachable, 4 not
/// allowed (token unknown, revoked, expired, or a viewer's), 5 not found,
/// 6 refused (invalid value or conflict).
#[derive(Debug, Parser)]
#[command(name = "moho-admin", version, about, long_about)]
pub struct Cli {
    /// Server base URL, e.g. https://updates.example.org:8443.
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Admin or viewer token (prefer --token-file or MOHO_TOKEN: a flag is
    /// visible to other users in the process list).
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// File holding the token.
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for the server's certificate.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Config file (default ~/.config/moho/admin.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Request timeout, e.g. 30s.
    #[arg(long, global = true, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Print JSON (the admin API's shapes) instead of text; errors too.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The settings given as flags.
    pub fn raw_settings(&self) -> RawSettings {
        RawSettings {
            server: self.server.clone(),
            token: self.token.clone(),
            token_file: self.token_file.clone(),
            ca_cert: self.ca_cert.clone(),
            timeout: self.timeout.clone(),
        }
    }
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Channels (alpha, beta, stable, ...).
    #[command(subcommand, visible_alias = "channel")]
    Channels(ChannelsCommand),
    /// Node groups and their FleetLock slots.
    #[command(subcommand, visible_alias = "group")]
    Groups(GroupsCommand),
    /// Releases: synced from the signed repository, and Flatcar releases registered beside them.
    #[command(subcommand, visible_alias = "release")]
    Releases(ReleasesCommand),
    /// Rollouts: create with a policy, pause, resume, abort, revert, change the policy.
    #[command(subcommand, visible_alias = "rollout")]
    Rollouts(RolloutsCommand),
    /// Holds and pins of groups and nodes.
    #[command(subcommand, visible_alias = "hold")]
    Holds(HoldsCommand),
    /// Nodes: list with filters, show, delete, prune.
    #[command(subcommand, visible_alias = "node")]
    Nodes(NodesCommand),
    /// FleetLock reboot slots: holders, free a slot.
    #[command(subcommand)]
    Fleetlock(FleetLockCommand),
    /// Enrolment tokens: what lets a new node register in a group.
    #[command(subcommand)]
    EnrollmentTokens(EnrollmentCommand),
    /// Admin and viewer tokens.
    #[command(subcommand, visible_alias = "token")]
    Tokens(TokensCommand),
    /// The audit log.
    Audit(AuditArgs),
    /// The fleet-wide event stream; --follow to watch it live.
    Events(EventsArgs),
    /// Which token this is: name, role, expiry.
    Whoami,
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    #[test]
    fn the_command_line_is_consistent_and_positionals_do_not_shadow_flags() {
        moho_cli::help::assert_complete(Cli::command());
        let cli = Cli::try_parse_from(["moho-admin", "tokens", "revoke", "grafana"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cli.token, None);
        let cli = Cli::try_parse_from([
            "moho-admin",
            "nodes",
            "list",
            "--json",
            "--server",
            "https://x",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(cli.json);
        assert_eq!(cli.server.as_deref(), Some("https://x"));
    }
}
