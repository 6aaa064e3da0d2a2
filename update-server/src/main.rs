//! `update-server`: parses the command line, sets up logging (`moho_cli`)
//! and runs the command; errors are printed with their whole chain.

use std::process::ExitCode;

use clap::Parser;
use update_server::cli::{Cli, Command, EnrollmentTokenCommand, TokenCommand};
use update_server::commands::run_serve;
use update_server::{backup_cmd, enrollment_cmd, token_cmd};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    moho_cli::logging::init(cli.log.log_format, "info");
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        // `... | head -1`: the reader has what it wanted.
        Err(err) if moho_cli::stdout::closed_in_chain(err.as_ref()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!(
                "update-server: error: {}",
                moho_core::report::render_chain(err.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => run_serve(*args).await?,
        Command::Token(TokenCommand::Create(args)) => {
            moho_cli::outln!("{}", token_cmd::create(args).await?)?
        }
        Command::Token(TokenCommand::List(args)) => {
            moho_cli::outln!("{}", token_cmd::list(args).await?)?
        }
        Command::Token(TokenCommand::Revoke(args)) => {
            moho_cli::outln!("{}", token_cmd::revoke(args).await?)?
        }
        Command::EnrollmentToken(EnrollmentTokenCommand::Create(args)) => {
            moho_cli::outln!("{}", enrollment_cmd::create(args).await?)?
        }
        Command::EnrollmentToken(EnrollmentTokenCommand::List(args)) => {
            moho_cli::outln!("{}", enrollment_cmd::list(args).await?)?
        }
        Command::EnrollmentToken(EnrollmentTokenCommand::Revoke(args)) => {
            moho_cli::outln!("{}", enrollment_cmd::revoke(args).await?)?
        }
        Command::Backup(args) => moho_cli::outln!("{}", backup_cmd::backup(args).await?)?,
        Command::Restore(args) => moho_cli::outln!("{}", backup_cmd::restore(args).await?)?,
    }
    Ok(())
}
