//! `moho-admin tokens list|create|revoke` and `moho-admin whoami`: admin and
//! viewer tokens with names and optional expiry. Managing tokens needs an
//! admin token; a revoked or expired token is refused at its next request.

use clap::{ArgGroup, Args, Subcommand};
use jiff::Timestamp;
use moho_protocol::admin::{CreateToken, CreatedToken, List, Role, TokenView};
use moho_protocol::names::check_token_name;
use moho_protocol::secret::NamedSecret;

use super::{Ctx, Report, after, checked};
use crate::client::{Method, enc, with_query};
use crate::error::CliError;
use crate::output::{Table, opt_ts, ts};

/// Admin and viewer tokens.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// List live tokens (never their secrets).
    List {
        /// Also revoked and expired tokens.
        #[arg(long)]
        all: bool,
    },
    /// Create a token; its secret is printed once.
    Create(CreateArgs),
    /// Revoke a token by id or name.
    Revoke {
        /// Token id (from `tokens list`) or name.
        #[arg(value_name = "TOKEN")]
        which: String,
    },
}

/// `tokens create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("expiry").args(["expires_in", "expires_at"])))]
pub struct CreateArgs {
    /// Name (the audit log's actor), unique among live tokens.
    pub name: String,
    /// admin (read and change) or viewer (read only).
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// Stops working after this long, e.g. 90d.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expires_in: Option<std::time::Duration>,
    /// Stops working at this time (RFC 3339).
    #[arg(long)]
    pub expires_at: Option<Timestamp>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("unknown role {s:?}: use admin or viewer"))
}

/// A token's state in words at `now`.
fn state(t: &TokenView, now: Timestamp) -> String {
    t.standing(now).describe(ts)
}

/// `moho-admin whoami`.
pub fn whoami(ctx: &Ctx<'_>) -> Result<Report, CliError> {
    let t: TokenView = ctx.api.get("/whoami")?;
    let text = format!(
        "{} ({}), token {}, {}",
        t.name,
        t.role.as_str(),
        t.id,
        state(&t, ctx.now)
    );
    Ok(Report::new(&t, text))
}

impl TokensCommand {
    /// Runs the command.
    pub fn run(self, ctx: &Ctx<'_>) -> Result<Report, CliError> {
        match self {
            TokensCommand::List { all } => {
                let path = with_query("/tokens", &[("all", all.then(|| "true".to_owned()))]);
                let list: List<TokenView> = ctx.api.get(&path)?;
                let mut t = Table::new(&["ID", "NAME", "ROLE", "CREATED", "LAST USED", "STATE"]);
                for k in &list.items {
                    t.row(vec![
                        k.id.clone(),
                        k.name.clone(),
                        k.role.as_str().to_owned(),
                        ts(k.created_at),
                        opt_ts(k.last_used_at),
                        state(k, ctx.now),
                    ]);
                }
                Ok(Report::new(&list, t.render()))
            }
            TokensCommand::Create(a) => {
                checked(check_token_name(&a.name))?;
                let expires_at = match (a.expires_at, a.expires_in) {
                    (Some(t), _) => Some(t),
                    (None, Some(d)) => Some(after(ctx.now, d, "--expires-in")?),
                    (None, None) => None,
                };
                let c: CreatedToken = ctx.api.send(
                    Method::Post,
                    "/tokens",
                    &CreateToken {
                        name: a.name,
                        role: a.role,
                        expires_at,
                    },
                )?;
                // The secret alone on the first line, for scripts; what it
                // is on stderr-free lines after.
                let text = format!(
                    "{}\ncreated {} token {:?} ({}), {}; the secret above is shown only once",
                    c.secret,
                    c.token.role.as_str(),
                    c.token.name,
                    c.token.id,
                    state(&c.token, ctx.now)
                );
                Ok(Report::new(&c, text))
            }
            TokensCommand::Revoke { which } => {
                let t: TokenView = ctx.api.delete(&format!("/tokens/{}", enc(&which)))?;
                let text = format!("revoked token {:?} ({})", t.name, t.id);
                Ok(Report::new(&t, text))
            }
        }
    }
}
