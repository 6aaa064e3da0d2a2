//! `update-server enrollment-token create|list|revoke`: the CLI adapter of
//! [`crate::enrollment`] working straight on the database, audited with
//! actor `local` (the operator on the server's host needs no token).

use jiff::Timestamp;
use moho_protocol::admin::{CreateEnrollmentToken, EnrollmentTokenView, List};

use crate::cli::{EnrollmentCreateArgs, TokenListArgs, TokenRevokeArgs};
use crate::clock::{Clock, SystemClock};
use crate::commands::CommandError;
use crate::enrollment;
use crate::token_cmd::{expiry, open, state};
use crate::tokens::LOCAL_ACTOR;

/// `update-server enrollment-token create`: returns the secret (printed
/// alone on stdout, for scripts and provision documents).
pub async fn create(args: EnrollmentCreateArgs) -> Result<String, CommandError> {
    let now = SystemClock.now();
    let expires_at = expiry(args.expires_in, None, now)?;
    let req = CreateEnrollmentToken {
        name: args.name.clone().unwrap_or_else(|| args.group.clone()),
        group: args.group.clone(),
        channel: args.channel.clone(),
        expires_at,
        max_uses: args.max_uses,
    };
    let db = open(&args.data).await?;
    let created = enrollment::create(&db, &req, LOCAL_ACTOR, now).await;
    db.close().await;
    Ok(created?.secret)
}

/// One line of the table.
fn line(t: &EnrollmentTokenView, now: Timestamp) -> String {
    let state = state(t, now);
    let uses = match t.max_uses {
        Some(m) => format!("{}/{m}", t.uses),
        None => t.uses.to_string(),
    };
    format!(
        "{:<16}  {:<24}  {:<16}  {:<10}  {:<8}  {state}",
        t.id,
        t.name,
        t.group,
        t.channel.as_deref().unwrap_or("*"),
        uses
    )
}

/// `update-server enrollment-token list`: returns what to print.
pub async fn list(args: TokenListArgs) -> Result<String, CommandError> {
    let now = SystemClock.now();
    let db = open(&args.data).await?;
    let items = db.enrollment_tokens(args.all, now).await;
    db.close().await;
    let items = items?;
    if args.json {
        return Ok(serde_json::to_string_pretty(&List { items }).unwrap_or_default());
    }
    let mut out = format!(
        "{:<16}  {:<24}  {:<16}  {:<10}  {:<8}  STATE",
        "ID", "NAME", "GROUP", "CHANNEL", "USES"
    );
    for t in &items {
        out.push('\n');
        out.push_str(&line(t, now));
    }
    Ok(out)
}

/// `update-server enrollment-token revoke`: returns what to print.
pub async fn revoke(args: TokenRevokeArgs) -> Result<String, CommandError> {
    let now = SystemClock.now();
    let db = open(&args.data).await?;
    let revoked = enrollment::revoke(&db, &args.token, LOCAL_ACTOR, now).await;
    db.close().await;
    let t = revoked?;
    Ok(format!(
        "revoked enrollment token {:?} ({}); nodes it registered stay",
        t.name, t.id
    ))
}
