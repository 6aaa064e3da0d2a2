//! `image-tools`: the release engineer's command line. Parses arguments,
//! sets up logging (`moho_cli`), runs one command and turns its error into a message
//! with the whole cause chain and a documented exit code.

use std::process::ExitCode;

use clap::Parser;

use image_tools::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    moho_cli::logging::init(cli.log.log_format, "warn");
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `... | head -1`: the reader has what it wanted.
        Err(err) if moho_cli::stdout::closed_in_chain(err.as_ref()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!(
                "image-tools: error: {}",
                moho_core::report::render_chain(err.as_ref())
            );
            ExitCode::from(image_tools::exit::code_for(&err))
        }
    }
}
