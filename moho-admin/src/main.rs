//! `moho-admin`: parses the command line, runs the command, prints its
//! report (text or `--json`) or its error, and exits with the documented
//! code (`moho_admin::error`).

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use moho_admin::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // With --json, a usage error is a JSON document too.
            if std::env::args().any(|a| a == "--json") {
                let doc = moho_admin::error::CliError::Usage(e.to_string()).to_json();
                // (A closed pipe only loses the document: no panic.)
                let _ = writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::to_string_pretty(&doc).unwrap_or_default()
                );
            }
            e.exit()
        }
    };
    let json = cli.json;
    let mut out = std::io::stdout().lock();
    match moho_admin::run(cli, &mut out) {
        Ok(report) => match report.write(json, &mut out).and_then(|()| out.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            // A closed pipe (`| head`) is not a failure of the command.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("moho-admin: cannot write the output: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            if json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&e.to_json()).unwrap_or_default()
                );
            }
            eprintln!("moho-admin: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
