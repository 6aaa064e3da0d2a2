//! `moho-admin enrollment-tokens list|create|revoke`: the tokens that let a
//! new node register in a group (registration is closed by default). The
//! secret is printed once, for the nodes' provision documents.

use clap::{ArgGroup, Args, Subcommand};
use jiff::Timestamp;
use moho_protocol::admin::{
    CreateEnrollmentToken, CreatedEnrollmentToken, EnrollmentTokenView, List,
};
use moho_protocol::names::{check_group, check_token_name};
use moho_protocol::secret::NamedSecret;

use super::{Ctx, Report, after, checked};
use crate::client::{Method, enc, with_query};
use crate::error::CliError;
use crate::output::{Table, opt_ts, ts};

/// Enrolment tokens.
#[derive(Debug, Subcommand)]
pub enum EnrollmentCommand {
    /// List live enrolment tokens (never their secrets).
    List {
        /// Also revoked, expired and used-up tokens.
        #[arg(long)]
        all: bool,
    },
    /// Create an enrolment token for a group; its secret is printed once.
    Create(CreateArgs),
    /// Revoke an enrolment token by id or name; refused from then on.
    Revoke {
        /// Token id (from `enrollment-tokens list`) or name.
        #[arg(value_name = "TOKEN")]
        which: String,
    },
}

/// `enrollment-tokens create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("expiry").args(["expires_in", "expires_at"])))]
pub struct CreateArgs {
    /// Name, unique among live enrolment tokens.
    pub name: String,
    /// The group its nodes land in (they must name it).
    #[arg(long)]
    pub group: String,
    /// The channel its nodes must name (default: any).
    #[arg(long)]
    pub channel: Option<String>,
    /// Stops working after this long, e.g. 7d.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub expires_in: Option<std::time::Duration>,
    /// Stops working at this time (RFC 3339).
    #[arg(long)]
    pub expires_at: Option<Timestamp>,
    /// How many nodes may register with it (default: no limit).
    #[arg(long)]
    pub max_uses: Option<u64>,
}

/// A token's state in words at `now`.
fn state(t: &EnrollmentTokenView, now: Timestamp) -> String {
    t.standing(now).describe(ts)
}

fn uses(t: &EnrollmentTokenView) -> String {
    match t.max_uses {
        Some(m) => format!("{}/{m}", t.uses),
        None => t.uses.to_string(),
    }
}

impl EnrollmentCommand {
    /// Runs the command.
    pub fn run(self, ctx: &Ctx<'_>) -> Result<Report, CliError> {
        match self {
            EnrollmentCommand::List { all } => {
                let path = with_query(
                    "/enrollment-tokens",
                    &[("all", all.then(|| "true".to_owned()))],
                );
                let list: List<EnrollmentTokenView> = ctx.api.get(&path)?;
                let mut t = Table::new(&[
                    "ID",
                    "NAME",
                    "GROUP",
                    "CHANNEL",
                    "USES",
                    "LAST USED",
                    "STATE",
                ]);
                for k in &list.items {
                    t.row(vec![
                        k.id.clone(),
                        k.name.clone(),
                        k.group.clone(),
                        k.channel.clone().unwrap_or_else(|| "*".to_owned()),
                        uses(k),
                        opt_ts(k.last_used_at),
                        state(k, ctx.now),
                    ]);
                }
                Ok(Report::new(&list, t.render()))
            }
            EnrollmentCommand::Create(a) => {
                checked(check_token_name(&a.name))?;
                checked(check_group(&a.group))?;
                let expires_at = match (a.expires_at, a.expires_in) {
                    (Some(t), _) => Some(t),
                    (None, Some(d)) => Some(after(ctx.now, d, "--expires-in")?),
                    (None, None) => None,
                };
                let c: CreatedEnrollmentToken = ctx.api.send(
                    Method::Post,
                    "/enrollment-tokens",
                    &CreateEnrollmentToken {
                        name: a.name,
                        group: a.group,
                        channel: a.channel,
                        expires_at,
                        max_uses: a.max_uses,
                    },
                )?;
                let text = format!(
                    "{}\ncreated enrollment token {:?} ({}) for group {:?}, {} use(s) allowed, {}; the secret above is shown only once: put it in the provision document as [server] enrollment_token",
                    c.secret,
                    c.token.name,
                    c.token.id,
                    c.token.group,
                    c.token
                        .max_uses
                        .map_or_else(|| "unlimited".to_owned(), |m| m.to_string()),
                    state(&c.token, ctx.now)
                );
                Ok(Report::new(&c, text))
            }
            EnrollmentCommand::Revoke { which } => {
                let t: EnrollmentTokenView = ctx
                    .api
                    .delete(&format!("/enrollment-tokens/{}", enc(&which)))?;
                let text = format!(
                    "revoked enrollment token {:?} ({}); nodes it registered stay",
                    t.name, t.id
                );
                Ok(Report::new(&t, text))
            }
        }
    }
}
