//! `moho-loadgen`: seeds a database with N simulated nodes and drives a
//! running update server with their signed check-ins, printing check-ins per
//! second and latency percentiles. A benchmark tool (scripts/bench-server.sh).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use moho_loadgen::dashboard;
use moho_loadgen::drive::{DriveConfig, drive};
use moho_loadgen::fleet::{add_attempts, add_rollout, seed};
use update_server::store::Db;

/// Load generator for the Moho update server.
#[derive(Debug, Parser)]
#[command(name = "moho-loadgen")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Register N simulated nodes directly in the server's database.
    Seed {
        /// Database URL (sqlite://... or postgres://...).
        #[arg(long)]
        database: String,
        /// Number of nodes.
        #[arg(long)]
        nodes: u64,
        /// Channel of the nodes.
        #[arg(long, default_value = "stable")]
        channel: String,
        /// Group of the nodes.
        #[arg(long, default_value = "default")]
        group: String,
        /// Also create a rollout of release 1.1.0 to them at this percentage
        /// (benchmark fixture: the release row is written directly, not
        /// synced from a signed repository).
        #[arg(long)]
        rollout_percent: Option<f64>,
        /// With --rollout-percent: also record this many attempts at it, in
        /// every phase (dashboard benchmark).
        #[arg(long, default_value_t = 0)]
        attempts: u64,
    },
    /// Measure dashboard pages: log in, then request each path in turn.
    Dashboard {
        /// Server base URL.
        #[arg(long)]
        server: String,
        /// Admin or viewer API token.
        #[arg(long, env = "MOHO_TOKEN")]
        token: String,
        /// Requests per path after the first.
        #[arg(long, default_value_t = 50)]
        requests: u64,
        /// Paths to measure (default: the overview).
        #[arg(default_value = "/ui/")]
        paths: Vec<String>,
    },
    /// Drive signed check-ins against a running server.
    Run {
        /// Server base URL.
        #[arg(long)]
        server: String,
        /// Number of seeded nodes to pick from.
        #[arg(long)]
        nodes: u64,
        /// Concurrent requests.
        #[arg(long, default_value_t = 32)]
        concurrency: u64,
        /// Seconds to run.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// One request in this many is an event report (0: none).
        #[arg(long, default_value_t = 10)]
        report_every: u64,
        /// Channel of the nodes.
        #[arg(long, default_value = "stable")]
        channel: String,
        /// Group of the nodes.
        #[arg(long, default_value = "default")]
        group: String,
        /// Measure the baseline (GET /healthz) instead of check-ins.
        #[arg(long)]
        baseline: bool,
        /// PEM file of the CA that signed the server's certificate (an
        /// https:// server with a private CA).
        #[arg(long)]
        ca_cert: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        // `moho-loadgen run ... | head -1`: a closed stdout is no failure.
        Err(err) if moho_cli::stdout::closed_in_chain(err.as_ref()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("moho-loadgen: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Seed {
            database,
            nodes,
            channel,
            group,
            rollout_percent,
            attempts,
        } => {
            let db = Db::connect(&database).await?;
            let started = std::time::Instant::now();
            let progress = |done: u64| {
                if done.is_multiple_of(100_000) || done == nodes {
                    eprintln!(
                        "seeded {done} nodes ({:.0}s)",
                        started.elapsed().as_secs_f64()
                    );
                }
            };
            seed(
                &db,
                nodes,
                &channel,
                &group,
                "1.0.0",
                jiff::Timestamp::now(),
                progress,
            )
            .await?;
            if let Some(p) = rollout_percent {
                let id = add_rollout(&db, &channel, &group, p, jiff::Timestamp::now()).await?;
                eprintln!("rollout of 1.1.0 to {channel}/{group} at {p}%");
                if attempts > 0 {
                    add_attempts(&db, id, attempts, jiff::Timestamp::now()).await?;
                    eprintln!("{attempts} attempts at it");
                }
            }
            db.close().await;
        }
        Cmd::Dashboard {
            server,
            token,
            requests,
            paths,
        } => {
            let http = dashboard::client()?;
            let session = dashboard::log_in(&http, &server, &token).await?;
            for path in paths {
                moho_cli::outln!(
                    "{}",
                    dashboard::measure(&http, &server, &session, &path, requests).await?
                )?;
            }
        }
        Cmd::Run {
            server,
            nodes,
            concurrency,
            seconds,
            report_every,
            channel,
            group,
            baseline,
            ca_cert,
        } => {
            let ca_pem = match &ca_cert {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    anyhow::anyhow!("cannot read --ca-cert {}: {e}", path.display())
                })?),
                None => None,
            };
            anyhow::ensure!(
                nodes > 0 && concurrency > 0,
                "--nodes and --concurrency must be at least 1"
            );
            let report = drive(DriveConfig {
                server,
                nodes,
                concurrency,
                duration: Duration::from_secs(seconds),
                report_every,
                channel,
                group,
                baseline,
                ca_pem,
            })
            .await?;
            let printed = moho_cli::outln!("{report}");
            anyhow::ensure!(
                report.check_ins > 0,
                "no request succeeded ({} errors)",
                report.errors
            );
            printed?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn help_explains_every_command_and_argument() {
        moho_cli::help::assert_complete(super::Cli::command());
    }
}
