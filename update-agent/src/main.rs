//! `update-agent`: the Moho node agent's command line. Parses arguments,
//! sets up logging, runs one command, and turns its error into a message
//! with the whole cause chain and a documented exit code (see [`update_agent::exit`]).

use std::process::ExitCode;

use clap::Parser;

use update_agent::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MOHO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!(
                "update-agent: error: {}",
                moho_core::report::render_chain(err.as_ref())
            );
            ExitCode::from(update_agent::exit::code_for(&err))
        }
    }
}
