//! `moho-admin`, the Moho admin CLI in the tradition of CoreUpdate's
//! `updateservicectl`: a client of the update server's admin API
//! (`/api/v1`), nothing more. It shares only wire types (`moho-protocol`)
//! and the policy rules (`moho-rollout`) with the server.
//!
//! - [`cli`]: the command line.
//! - [`settings`]: server, token and CA from flags, environment, config file.
//! - [`client`]: the transport (real HTTPS or a recording fake) and typed calls.
//! - [`commands`]: one module per resource.
//! - [`output`]: text tables and `--json`.
//! - [`error`]: failures and their exit codes.

pub mod cli;
pub mod client;
pub mod commands;
pub mod error;
pub mod output;
pub mod settings;

use cli::{Cli, Command};
use client::{Api, HttpTransport, Transport};
use commands::{Ctx, Report};
use error::CliError;

/// Runs the parsed command against `transport` at `now`; a command that
/// streams (`events --follow`) writes to `out` as it goes.
pub fn run_with(
    cli: Cli,
    transport: &dyn Transport,
    now: jiff::Timestamp,
    out: &mut dyn std::io::Write,
) -> Result<Report, CliError> {
    let json = cli.json;
    let ctx = Ctx {
        api: Api::new(transport),
        now,
    };
    match cli.command {
        Command::Channels(c) => c.run(&ctx),
        Command::Groups(c) => c.run(&ctx),
        Command::Releases(c) => c.run(&ctx),
        Command::Rollouts(c) => c.run(&ctx),
        Command::Holds(c) => c.run(&ctx),
        Command::Nodes(c) => c.run(&ctx),
        Command::Fleetlock(c) => c.run(&ctx),
        Command::Tokens(c) => c.run(&ctx),
        Command::EnrollmentTokens(c) => c.run(&ctx),
        Command::Audit(c) => c.run(&ctx),
        Command::Events(c) => c.run(&ctx, out, json),
        Command::Whoami => commands::tokens::whoami(&ctx),
    }
}

/// Resolves the settings, connects and runs the command.
pub fn run(cli: Cli, out: &mut dyn std::io::Write) -> Result<Report, CliError> {
    let settings = settings::resolve(
        &cli.raw_settings(),
        cli.config.as_deref(),
        &settings::RealEnv,
    )?;
    let transport = HttpTransport::new(&settings)?;
    run_with(cli, &transport, jiff::Timestamp::now(), out)
}
