//! `update-server`: parses the command line and runs the command; errors are
//! printed with their whole chain.

use clap::Parser;
use update_server::cli::{Cli, Command, TokenCommand};
use update_server::commands::{run_serve, run_token_create};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => run_serve(*args).await?,
        Command::Token(TokenCommand::Create(args)) => println!("{}", run_token_create(args).await?),
    }
    Ok(())
}
