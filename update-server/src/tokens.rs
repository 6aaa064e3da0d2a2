//! The rules of admin and viewer tokens, shared by the admin API
//! (`/api/v1/tokens`), the dashboard's login and the local
//! `update-server token ...` commands: a name unique among live tokens, an
//! expiry in the future, revocation that takes effect at the next request
//! (nothing caches a token), and the API never revoking the last live admin
//! token (which would lock every operator out). Creation and revocation are
//! audited in the same transaction as the change.

use jiff::{SignedDuration, Timestamp};
use moho_protocol::admin::{CreateToken, CreatedToken, Role, TokenView};
use moho_protocol::names::{NameError, check_token_name};
use moho_protocol::secret::{NamedSecret, PickError, Standing, live_name_taken, pick_to_revoke};
use sha2::{Digest, Sha256};

use crate::store::{Db, StoreError, token_id};

/// The actor of changes made with `update-server token ...` on the
/// server's own host (no token involved).
pub const LOCAL_ACTOR: &str = "local";

/// How stale a token's "last used" may get before a request updates it.
const TOUCH_EVERY: SignedDuration = SignedDuration::from_secs(60);

/// A token change that was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The name breaks the rules.
    #[error(transparent)]
    BadName(#[from] NameError),
    /// A live token already has this name.
    #[error("a live token is already named {0:?}: revoke it first or choose another name")]
    NameTaken(String),
    /// The expiry is not in the future.
    #[error("expiry {0} is not in the future")]
    ExpiryPast(Timestamp),
    /// No token has this id (or live token this name).
    #[error("no token with id or name {0:?}")]
    Unknown(String),
    /// Several live tokens share the name (made before names were unique).
    #[error("several live tokens are named {0:?}: revoke by id")]
    Ambiguous(String),
    /// Revoked before.
    #[error("token {name:?} ({id}) was already revoked at {at}")]
    AlreadyRevoked {
        /// Token id.
        id: String,
        /// Token name.
        name: String,
        /// When.
        at: Timestamp,
    },
    /// It is the only live admin token.
    #[error(
        "token {0:?} is the last live admin token: create another admin token first (or use `update-server token` on the server's host)"
    )]
    LastAdmin(String),
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a presented secret is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No token has this secret.
    Unknown,
    /// Revoked.
    Revoked(TokenView),
    /// Expired.
    Expired(TokenView),
}

impl Refusal {
    /// A message naming the token and what happened to it.
    pub fn message(&self) -> String {
        match self {
            Refusal::Unknown => "unknown token".to_owned(),
            Refusal::Revoked(t) => format!(
                "token {:?} ({}) was revoked at {}",
                t.name,
                t.id,
                t.revoked_at.unwrap_or_default()
            ),
            Refusal::Expired(t) => format!(
                "token {:?} ({}) expired at {}",
                t.name,
                t.id,
                t.expires_at.unwrap_or_default()
            ),
        }
    }

    /// A stable code for the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Unknown => "bad_token",
            Refusal::Revoked(_) => "token_revoked",
            Refusal::Expired(_) => "token_expired",
        }
    }
}

/// The stored hash of a token secret.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh secret with 244 random bits (two v4 UUIDs from the OS RNG)
/// after `prefix`, which tells the kinds of token apart at a glance.
pub(crate) fn new_secret(prefix: &str) -> String {
    format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn audit_value(t: &TokenView) -> serde_json::Value {
    serde_json::to_value(t).unwrap_or_default()
}

/// Creates a token as `actor`; audited as `token.create` (without the
/// secret, which is returned this once).
pub async fn create(
    db: &Db,
    req: &CreateToken,
    actor: &str,
    now: Timestamp,
) -> Result<CreatedToken, TokenError> {
    check_token_name(&req.name)?;
    if let Some(at) = req.expires_at
        && at <= now
    {
        return Err(TokenError::ExpiryPast(at));
    }
    let secret = new_secret("moho_");
    let hash = token_hash(&secret);
    let token = TokenView {
        id: token_id(&hash),
        name: req.name.clone(),
        role: req.role,
        created_at: now,
        expires_at: req.expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    let mut change = db
        .change(actor, "token.create", format!("token/{}", token.id), now)
        .await?;
    db.lock(change.tx(), "moho-tokens").await?;
    if live_name_taken(&db.tokens_tx(change.tx()).await?, &req.name, now) {
        return Err(TokenError::NameTaken(req.name.clone()));
    }
    db.insert_token(change.tx(), &hash, &token).await?;
    change.commit(None, Some(&audit_value(&token))).await?;
    Ok(CreatedToken { secret, token })
}

/// Revokes the token with id (or live name) `which` as `actor`; audited
/// as `token.revoke`. With `keep_last_admin`, the last live admin token
/// cannot be revoked. Its dashboard sessions end with it.
pub async fn revoke(
    db: &Db,
    which: &str,
    actor: &str,
    now: Timestamp,
    keep_last_admin: bool,
) -> Result<TokenView, TokenError> {
    let mut change = db.change(actor, "token.revoke", "token", now).await?;
    db.lock(change.tx(), "moho-tokens").await?;
    let all = db.tokens_tx(change.tx()).await?;
    let live: Vec<TokenView> = all.iter().filter(|t| t.is_live(now)).cloned().collect();
    // The token with this id (revoked or not), else a live one by name.
    let candidates: Vec<TokenView> = all
        .iter()
        .filter(|t| t.id == which)
        .chain(live.iter())
        .cloned()
        .collect();
    let before = match pick_to_revoke(&candidates, which) {
        Ok(t) => t.clone(),
        Err(PickError::Unknown) => return Err(TokenError::Unknown(which.to_owned())),
        Err(PickError::Ambiguous) => return Err(TokenError::Ambiguous(which.to_owned())),
        Err(PickError::AlreadyRevoked { id, name, at }) => {
            return Err(TokenError::AlreadyRevoked { id, name, at });
        }
    };
    let live_admins = live.iter().filter(|t| t.role == Role::Admin).count();
    if keep_last_admin && before.role == Role::Admin && before.is_live(now) && live_admins <= 1 {
        return Err(TokenError::LastAdmin(before.name));
    }
    change.set_subject(format!("token/{}", before.id));
    db.revoke_token(change.tx(), &before.id, now).await?;
    let after = TokenView {
        revoked_at: Some(now),
        ..before.clone()
    };
    change
        .commit(Some(&audit_value(&before)), Some(&audit_value(&after)))
        .await?;
    Ok(after)
}

/// The live token whose secret is `secret`, or why it is refused. Notes
/// the use (at most once a minute per token).
pub async fn check(
    db: &Db,
    secret: &str,
    now: Timestamp,
) -> Result<Result<TokenView, Refusal>, StoreError> {
    let hash = token_hash(secret.trim());
    let Some(token) = db.token(&hash).await? else {
        return Ok(Err(Refusal::Unknown));
    };
    match token.standing(now) {
        Standing::Live { .. } => {}
        Standing::Revoked(_) => return Ok(Err(Refusal::Revoked(token))),
        Standing::Expired(_) | Standing::UsedUp => return Ok(Err(Refusal::Expired(token))),
    }
    let stale = token
        .last_used_at
        .is_none_or(|t| now.duration_since(t) >= TOUCH_EVERY);
    if stale {
        db.touch_token(&hash, now).await?;
    }
    Ok(Ok(token))
}
