//! `update-server token create|list|revoke`: the CLI adapter of
//! [`crate::tokens`] working straight on the database, audited with actor
//! `local` (the operator on the server's host needs no token).

use jiff::{SignedDuration, Timestamp};
use moho_protocol::admin::{CreateToken, List, TokenView};
use moho_protocol::secret::NamedSecret;

use crate::cli::{DataArgs, TokenCreateArgs, TokenListArgs, TokenRevokeArgs};
use crate::clock::{Clock, SystemClock};
use crate::commands::CommandError;
use crate::store::Db;
use crate::tokens::{self, LOCAL_ACTOR};

/// Opens (creating the data directory if needed) the database of `data`.
pub(crate) async fn open(data: &DataArgs) -> Result<Db, CommandError> {
    std::fs::create_dir_all(&data.data_dir).map_err(|source| CommandError::Io {
        path: data.data_dir.display().to_string(),
        source,
    })?;
    Ok(Db::connect(&data.database_url()).await?)
}

/// When a token (admin or enrolment) made at `now` with `--expires-in`
/// or `--expires-at` expires.
pub(crate) fn expiry(
    expires_in: Option<std::time::Duration>,
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<Option<Timestamp>, CommandError> {
    let Some(d) = expires_in else {
        return Ok(expires_at);
    };
    let d = SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .ok_or_else(|| CommandError::Usage(format!("--expires-in {d:?} is too long")))?;
    Ok(Some(d))
}

/// `update-server token create`: returns the secret (printed alone on
/// stdout, for scripts).
pub async fn create(args: TokenCreateArgs) -> Result<String, CommandError> {
    let now = SystemClock.now();
    let req = CreateToken {
        name: args.name.clone(),
        role: args.role,
        expires_at: expiry(args.expires_in, args.expires_at, now)?,
    };
    let db = open(&args.data).await?;
    let created = tokens::create(&db, &req, LOCAL_ACTOR, now).await;
    db.close().await;
    Ok(created?.secret)
}

/// A token's state, as both token tables show it.
pub(crate) fn state(t: &impl NamedSecret, now: Timestamp) -> String {
    t.standing(now).describe(|at| at.to_string())
}

/// One line of the token table.
fn line(t: &TokenView, now: Timestamp) -> String {
    let state = state(t, now);
    format!(
        "{:<16}  {:<24}  {:<6}  {state}",
        t.id,
        t.name,
        t.role.as_str()
    )
}

/// `update-server token list`: returns what to print.
pub async fn list(args: TokenListArgs) -> Result<String, CommandError> {
    let now = SystemClock.now();
    let db = open(&args.data).await?;
    let items = db.tokens(args.all, now).await;
    db.close().await;
    let items = items?;
    if args.json {
        return Ok(serde_json::to_string_pretty(&List { items }).unwrap_or_default());
    }
    let mut out = format!("{:<16}  {:<24}  {:<6}  STATE", "ID", "NAME", "ROLE");
    for t in &items {
        out.push('\n');
        out.push_str(&line(t, now));
    }
    Ok(out)
}

/// `update-server token revoke`: returns what to print.
pub async fn revoke(args: TokenRevokeArgs) -> Result<String, CommandError> {
    let now = SystemClock.now();
    let db = open(&args.data).await?;
    let revoked = tokens::revoke(&db, &args.token, LOCAL_ACTOR, now, false).await;
    db.close().await;
    let t = revoked?;
    Ok(format!("revoked token {:?} ({})", t.name, t.id))
}
