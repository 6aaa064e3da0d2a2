//! The `update-server` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use moho_protocol::admin::Role;

/// The Moho update server.
#[derive(Debug, Parser)]
#[command(name = "update-server", version, about)]
pub struct Cli {
    /// Logging flags (`--log-format`).
    #[command(flatten)]
    pub log: moho_cli::LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Admin API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Enrolment tokens: what lets a new node register in a group.
    #[command(subcommand)]
    EnrollmentToken(EnrollmentTokenCommand),
    /// Copy the database while the server runs (SQLite), or print the
    /// pg_dump command that does it (PostgreSQL).
    Backup(BackupArgs),
    /// Put a SQLite backup in place as the data directory's database (the
    /// server stopped), or print the pg_restore command (PostgreSQL).
    Restore(RestoreArgs),
}

/// `update-server backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Data directory and database.
    #[command(flatten)]
    pub data: DataArgs,
    /// The backup file to write (must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

/// `update-server restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Data directory and database.
    #[command(flatten)]
    pub data: DataArgs,
    /// The backup file (from `update-server backup`).
    #[arg(long)]
    pub from: PathBuf,
}

/// Where the data lives (shared by every command).
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Data directory: SQLite database and, by default, the repository.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Database URL: postgres://user@host/db for PostgreSQL; default
    /// sqlite://DATA_DIR/moho.db.
    #[arg(long, env = "MOHO_DATABASE_URL")]
    pub database: Option<String>,
}

impl DataArgs {
    /// The database URL to use.
    pub fn database_url(&self) -> String {
        self.database.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("moho.db").display()
            )
        })
    }
}

/// `update-server serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory and database.
    #[command(flatten)]
    pub data: DataArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (not recommended).
    #[arg(long)]
    pub allow_plain_http: bool,
    /// Directory of the TUF repository (default DATA_DIR/repo).
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// The repository's trusted root metadata (its 1.root.json): releases are
    /// synced and uploads accepted only if they verify against it. Default:
    /// DATA_DIR/trusted-root.json when present.
    #[arg(long)]
    pub trusted_root: Option<PathBuf>,
    /// Directory holding the snapshot and timestamp keys (from `image-tools
    /// keygen`): the server then re-signs them before they expire.
    /// Default: DATA_DIR/online-keys when present.
    #[arg(long)]
    pub online_keys: Option<PathBuf>,
    /// How long the timestamps this server re-signs stay valid, e.g. 1d,
    /// 4h. A timestamp is re-signed when half of this (at most 12 h) is
    /// left; nodes refuse an expired one.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1d")]
    pub timestamp_expiry: std::time::Duration,
    /// How often the replica that runs the background jobs checks whether
    /// the online metadata needs re-signing, e.g. 10m.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    pub resign_check: std::time::Duration,
    /// Tell nodes to fetch the repository from this base URL (a CDN)
    /// instead of this server's /repo.
    #[arg(long)]
    pub repo_url: Option<String>,
    /// A server-wide enrolment token: a node's first check-in carrying it
    /// registers in any group. Per-group tokens with expiry and use limits:
    /// `update-server enrollment-token create` or `moho-admin
    /// enrollment-tokens create`.
    #[arg(long, env = "MOHO_ENROLLMENT_TOKEN")]
    pub enrollment_token: Option<String>,
    /// Let nodes register on their first check-in without an enrolment
    /// token. Default: registration is closed (a token is required).
    #[arg(long, env = "MOHO_OPEN_REGISTRATION")]
    pub open_registration: bool,
    /// Forget nodes that have not checked in for this many days (checked
    /// hourly, audited). Default: keep them.
    #[arg(long)]
    pub node_retention_days: Option<u32>,
    /// Forget node events received more than this many days ago (checked
    /// hourly, audited); 0: keep them.
    #[arg(long, default_value_t = 90)]
    pub event_retention_days: u32,
    /// Forget audit entries older than this many days (checked hourly; the
    /// pruning itself is audited). Default: keep them.
    #[arg(long)]
    pub audit_retention_days: Option<u32>,
    /// How long the dashboard reuses its fleet summary before recomputing
    /// it in the background, e.g. 10s (0s: recompute on every request).
    #[arg(long, default_value = "10s")]
    pub summary_ttl: String,
    /// Nodes held in memory (counter, facts, key; about 100 bytes each,
    /// loaded at start) so that their check-ins do not wait for the
    /// database; 0: every check-in waits for its database write.
    #[arg(long, default_value_t = 2_000_000)]
    pub hot_nodes: usize,
    /// Events the live event stream holds for its subscribers (rounded up
    /// to a power of two; about 1 KiB each): a dashboard or API client that
    /// falls further behind is told how many events it missed.
    #[arg(long, default_value_t = crate::live_events::DEFAULT_BUFFER)]
    pub live_events_buffer: usize,
    /// On SIGTERM, how long requests in flight (downloads too) may take to
    /// finish before their connections are closed, e.g. 30s.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub drain_timeout: std::time::Duration,
    /// With PostgreSQL: how often a replica checks that it still holds the
    /// background jobs' lease, or tries to take it. A standby takes over at
    /// most this long after the leader died. Also how often every replica
    /// picks up metadata another one published (for its /metrics and
    /// dashboard).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub lease_check: std::time::Duration,
    /// First check-ins (registrations) per minute per source address; 0: no
    /// limit. Known nodes' signed check-ins are never limited.
    #[arg(long, default_value_t = 60)]
    pub rate_limit_registrations: u32,
    /// Unsigned FleetLock requests per minute per source address; 0: no limit.
    #[arg(long, default_value_t = 120)]
    pub rate_limit_fleetlock: u32,
    /// Dashboard log-in attempts per minute per source address; 0: no limit.
    #[arg(long, default_value_t = 10)]
    pub rate_limit_logins: u32,
    /// How often idle nodes should check in, e.g. 10m.
    #[arg(long, default_value = "10m")]
    pub check_interval: String,
    /// Answer Flatcar Container Linux nodes over Omaha at /v1/update/
    /// (their update_engine's SERVER=). Their reports are unsigned: they
    /// can pause a rollout, never advance a health-gated one. With
    /// --enrollment-token, every Omaha request must carry ?token=TOKEN.
    #[arg(long)]
    pub omaha: bool,
    /// Omaha application id to answer (repeatable; implies --omaha).
    /// Default: Flatcar's, e96281a6-d1af-4bde-9a0a-97b76e56dc57.
    #[arg(long, value_name = "ID")]
    pub omaha_app_id: Vec<String>,
}

/// `update-server token ...`: admin and viewer tokens, straight in the
/// database (for the first token, and to recover when no admin token is
/// left; day to day, use `moho-admin tokens`). Audited with actor `local`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an admin or viewer token and print it (shown only once).
    Create(TokenCreateArgs),
    /// List live tokens (never their secrets).
    List(TokenListArgs),
    /// Revoke a token by id or name; it is refused from its next request.
    Revoke(TokenRevokeArgs),
}

/// `update-server token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// Data directory and database.
    #[command(flatten)]
    pub data: DataArgs,
    /// admin (read and change) or viewer (read only).
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// Name shown as the actor in the audit log; unique among live tokens.
    #[arg(long, default_value = "operator")]
    pub name: String,
    /// The token stops working after this long, e.g. 90d, 12h.
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "expires_at")]
    pub expires_in: Option<std::time::Duration>,
    /// The token stops working at this time (RFC 3339, e.g. 2027-01-01T00:00:00Z).
    #[arg(long)]
    pub expires_at: Option<jiff::Timestamp>,
}

/// `update-server token list`.
#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// Data directory and database.
    #[command(flatten)]
    pub data: DataArgs,
    /// Also list revoked and expired tokens.
    #[arg(long)]
    pub all: bool,
    /// Print JSON (`{"items": [...]}`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `update-server token revoke`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// Data directory and database.
    #[command(flatten)]
    pub data: DataArgs,
    /// The token's id (from `token list`) or its name.
    pub token: String,
}

/// `update-server enrollment-token ...`: enrolment tokens straight in the
/// database (day to day, use `moho-admin enrollment-tokens`). Audited with
/// actor `local`.
#[derive(Debug, Subcommand)]
pub enum EnrollmentTokenCommand {
    /// Create an enrolment token for a group and print it (shown only once).
    Create(EnrollmentCreateArgs),
    /// List live enrolment tokens (never their secrets).
    List(TokenListArgs),
    /// Revoke an enrolment token by id or name; refused from then on.
    Revoke(TokenRevokeArgs),
}

/// `update-server enrollment-token create`.
#[derive(Debug, Args)]
pub struct EnrollmentCreateArgs {
    /// Data directory and database.
    #[command(flatten)]
    pub data: DataArgs,
    /// The group a node registering with it lands in (it must name it).
    #[arg(long)]
    pub group: String,
    /// The channel a node registering with it must name (default: any).
    #[arg(long)]
    pub channel: Option<String>,
    /// Name, unique among live enrolment tokens (default: the group's).
    #[arg(long)]
    pub name: Option<String>,
    /// The token stops working after this long, e.g. 7d.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expires_in: Option<std::time::Duration>,
    /// How many nodes may register with it (default: no limit).
    #[arg(long)]
    pub max_uses: Option<u64>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("unknown role {s:?}: use admin or viewer"))
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory as _;

    #[test]
    fn help_explains_every_command_and_argument() {
        moho_cli::help::assert_complete(super::Cli::command());
    }
}
