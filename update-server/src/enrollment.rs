//! Who may register a new node: the rules of enrolment tokens (created,
//! listed and revoked by admins through `/api/v1/enrollment-tokens`,
//! `moho-admin enrollment-tokens` or `update-server enrollment-token` on the
//! host) and the gate of a first check-in. Registration is closed by
//! default: a new node needs a live enrolment token for its group (and
//! channel, if the token names one), the server-wide `--enrollment-token`,
//! or a server started with `--open-registration`. A token is refused at
//! once when revoked, expired or used up; its use is counted in the same
//! transaction as the node's row ([`Db::enroll_node`]).
//!
//! A node registered with a group's token is pinned to that group (and to
//! the token's channel, if it names one): its own configuration cannot move
//! it into a group whose rollouts, holds and FleetLock slots it was never
//! admitted to. A later check-in naming another scope is admitted only
//! through the gate a new node would pass there ([`admit`]: a live token for
//! the new scope, whose use is counted and which pins it anew; or the
//! server-wide token or open registration, which unpin it), audited as
//! `node.move`; otherwise it is refused and nothing is stored.

use jiff::Timestamp;
use moho_protocol::admin::{CreateEnrollmentToken, CreatedEnrollmentToken, EnrollmentTokenView};
use moho_protocol::names::{NameError, check_channel, check_group, check_token_name};
use moho_protocol::secret::{PickError, live_name_taken, pick_to_revoke};

pub use crate::store::Pin;
use crate::store::{Db, EnrollmentUse, StoreError, token_id};
use crate::tokens::{new_secret, token_hash};

/// An enrolment token change that was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    /// A name breaks the rules.
    #[error(transparent)]
    BadName(#[from] NameError),
    /// A live enrolment token already has this name.
    #[error(
        "a live enrollment token is already named {0:?}: revoke it first or choose another name"
    )]
    NameTaken(String),
    /// The group does not exist.
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    /// The channel does not exist.
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    /// The expiry is not in the future.
    #[error("expiry {0} is not in the future")]
    ExpiryPast(Timestamp),
    /// A use limit of zero.
    #[error("max_uses 0 would never let a node register: give at least 1, or none for no limit")]
    ZeroUses,
    /// No enrolment token has this id (or live one this name).
    #[error("no enrollment token with id or name {0:?}")]
    Unknown(String),
    /// Several enrolment tokens not revoked share the name.
    #[error("several enrollment tokens not revoked are named {0:?}: revoke by id")]
    Ambiguous(String),
    /// Revoked before.
    #[error("enrollment token {name:?} ({id}) was already revoked at {at}")]
    AlreadyRevoked {
        /// Token id.
        id: String,
        /// Token name.
        name: String,
        /// When.
        at: Timestamp,
    },
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a first check-in may not register its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No token, and registration is closed.
    Required,
    /// No enrolment token has this secret.
    Unknown,
    /// Revoked.
    Revoked(EnrollmentTokenView),
    /// Expired.
    Expired(EnrollmentTokenView),
    /// Its use limit is reached.
    UsedUp(EnrollmentTokenView),
    /// The check-in names another group or channel than the token.
    OtherScope {
        /// The token.
        token: EnrollmentTokenView,
        /// The channel the check-in names.
        channel: String,
        /// The group the check-in names.
        group: String,
    },
}

impl Refusal {
    /// A stable code for the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Required => "enrollment_required",
            Refusal::Unknown => "bad_enrollment_token",
            Refusal::Revoked(_) => "enrollment_token_revoked",
            Refusal::Expired(_) => "enrollment_token_expired",
            Refusal::UsedUp(_) => "enrollment_token_used_up",
            Refusal::OtherScope { .. } => "enrollment_token_scope",
        }
    }

    /// A message naming the token and what is wrong with it.
    pub fn message(&self) -> String {
        match self {
            Refusal::Required => "registration is closed: a node's first check-in needs an enrollment token (server.enrollment_token; the operator creates one with `moho-admin enrollment-tokens create`, or starts the server with --open-registration)".to_owned(),
            Refusal::Unknown => "unknown enrollment token".to_owned(),
            Refusal::Revoked(t) => format!(
                "enrollment token {:?} ({}) was revoked at {}",
                t.name,
                t.id,
                t.revoked_at.unwrap_or_default()
            ),
            Refusal::Expired(t) => format!(
                "enrollment token {:?} ({}) expired at {}",
                t.name,
                t.id,
                t.expires_at.unwrap_or_default()
            ),
            Refusal::UsedUp(t) => format!(
                "enrollment token {:?} ({}) is used up: {} of {} node(s) registered",
                t.name,
                t.id,
                t.uses,
                t.max_uses.unwrap_or_default()
            ),
            Refusal::OtherScope {
                token,
                channel,
                group,
            } => format!(
                "enrollment token {:?} ({}) is for group {:?}{}, the check-in names channel {channel:?}, group {group:?}",
                token.name,
                token.id,
                token.group,
                token
                    .channel
                    .as_ref()
                    .map(|c| format!(" in channel {c:?}"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Whether `token` lets a node naming `channel` and `group` register at
/// `now` (pure).
pub fn judge(
    token: &EnrollmentTokenView,
    channel: &str,
    group: &str,
    now: Timestamp,
) -> Result<(), Refusal> {
    if token.revoked_at.is_some() {
        return Err(Refusal::Revoked(token.clone()));
    }
    if token.expires_at.is_some_and(|t| t <= now) {
        return Err(Refusal::Expired(token.clone()));
    }
    if token.max_uses.is_some_and(|m| token.uses >= m) {
        return Err(Refusal::UsedUp(token.clone()));
    }
    if token.group != group || token.channel.as_deref().is_some_and(|c| c != channel) {
        return Err(Refusal::OtherScope {
            token: token.clone(),
            channel: channel.to_owned(),
            group: group.to_owned(),
        });
    }
    Ok(())
}

/// How a first check-in may register, before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Without counting a token (open registration, or the server-wide
    /// `--enrollment-token`).
    Free,
    /// With this enrolment token, whose use is counted with the node's row.
    Token {
        /// The token as read.
        token: Box<EnrollmentTokenView>,
        /// Its hash.
        hash: String,
    },
}

/// Decides how (and whether) a node naming `channel` and `group` and
/// presenting `presented` may register at `now`. A token presented is
/// always checked, even with open registration, so a wrong one is never
/// silently ignored.
pub async fn admit(
    db: &Db,
    open: bool,
    server_token: Option<&str>,
    presented: Option<&str>,
    channel: &str,
    group: &str,
    now: Timestamp,
) -> Result<Result<Admission, Refusal>, StoreError> {
    let Some(secret) = presented.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(if open {
            Ok(Admission::Free)
        } else {
            Err(Refusal::Required)
        });
    };
    if server_token.is_some_and(|t| t == secret) {
        return Ok(Ok(Admission::Free));
    }
    let hash = token_hash(secret);
    let Some(token) = db.enrollment_token(&hash).await? else {
        return Ok(Err(Refusal::Unknown));
    };
    Ok(
        judge(&token, channel, group, now).map(|()| Admission::Token {
            token: Box::new(token),
            hash,
        }),
    )
}

/// Takes the token's use and registers the node (see [`Db::enroll_node`]);
/// a token that stopped being live meanwhile is refused with its reason.
pub async fn enroll(
    db: &Db,
    n: &crate::store::NodeUpsert<'_>,
    counter: u64,
    token: &EnrollmentTokenView,
    hash: &str,
    now: Timestamp,
) -> Result<Result<EnrollmentUse, Refusal>, StoreError> {
    match db.enroll_node(n, counter, token, hash, now).await? {
        EnrollmentUse::NotLive => {
            let again = db.enrollment_token(hash).await?;
            Ok(Err(match again {
                None => Refusal::Unknown,
                Some(t) => match judge(&t, n.channel, n.group, now) {
                    Err(r) => r,
                    // Live again is impossible; report what was seen.
                    Ok(()) => Refusal::UsedUp(t),
                },
            }))
        }
        other => Ok(Ok(other)),
    }
}

fn audit_value(t: &EnrollmentTokenView) -> serde_json::Value {
    serde_json::to_value(t).unwrap_or_default()
}

/// Checks `req` as [`create`] would, without writing (a form's
/// confirmation page); a live token of the same name is found by `create`.
pub async fn check_new(
    db: &Db,
    req: &CreateEnrollmentToken,
    now: Timestamp,
) -> Result<(), EnrollmentError> {
    check_token_name(&req.name)?;
    check_group(&req.group)?;
    if let Some(c) = &req.channel {
        check_channel(c)?;
    }
    if let Some(at) = req.expires_at
        && at <= now
    {
        return Err(EnrollmentError::ExpiryPast(at));
    }
    if req.max_uses == Some(0) {
        return Err(EnrollmentError::ZeroUses);
    }
    if !db.groups().await?.iter().any(|g| g.name == req.group) {
        return Err(EnrollmentError::UnknownGroup(req.group.clone()));
    }
    if let Some(c) = &req.channel
        && !db.channels().await?.iter().any(|x| x == c)
    {
        return Err(EnrollmentError::UnknownChannel(c.clone()));
    }
    Ok(())
}

/// Creates an enrolment token as `actor`; audited as
/// `enrollment_token.create` (without the secret, returned this once).
pub async fn create(
    db: &Db,
    req: &CreateEnrollmentToken,
    actor: &str,
    now: Timestamp,
) -> Result<CreatedEnrollmentToken, EnrollmentError> {
    check_new(db, req, now).await?;
    let secret = new_secret("mohoenr_");
    let hash = token_hash(&secret);
    let token = EnrollmentTokenView {
        id: token_id(&hash),
        name: req.name.clone(),
        group: req.group.clone(),
        channel: req.channel.clone(),
        created_at: now,
        expires_at: req.expires_at,
        max_uses: req.max_uses,
        uses: 0,
        revoked_at: None,
        last_used_at: None,
    };
    let mut change = db
        .change(
            actor,
            "enrollment_token.create",
            format!("enrollment_token/{}", token.id),
            now,
        )
        .await?;
    db.lock(change.tx(), "moho-enrollment-tokens").await?;
    if live_name_taken(&db.enrollment_tokens_tx(change.tx()).await?, &req.name, now) {
        return Err(EnrollmentError::NameTaken(req.name.clone()));
    }
    db.insert_enrollment_token(change.tx(), &hash, &token)
        .await?;
    change.commit(None, Some(&audit_value(&token))).await?;
    Ok(CreatedEnrollmentToken { secret, token })
}

/// Revokes the enrolment token with id (or live name) `which` as `actor`;
/// audited as `enrollment_token.revoke`. Nodes it registered stay.
pub async fn revoke(
    db: &Db,
    which: &str,
    actor: &str,
    now: Timestamp,
) -> Result<EnrollmentTokenView, EnrollmentError> {
    let mut change = db
        .change(actor, "enrollment_token.revoke", "enrollment_token", now)
        .await?;
    db.lock(change.tx(), "moho-enrollment-tokens").await?;
    let all = db.enrollment_tokens_tx(change.tx()).await?;
    let before = match pick_to_revoke(&all, which) {
        Ok(t) => t.clone(),
        Err(PickError::Unknown) => return Err(EnrollmentError::Unknown(which.to_owned())),
        Err(PickError::Ambiguous) => return Err(EnrollmentError::Ambiguous(which.to_owned())),
        Err(PickError::AlreadyRevoked { id, name, at }) => {
            return Err(EnrollmentError::AlreadyRevoked { id, name, at });
        }
    };
    change.set_subject(format!("enrollment_token/{}", before.id));
    db.revoke_enrollment_token(change.tx(), &before.id, now)
        .await?;
    let after = EnrollmentTokenView {
        revoked_at: Some(now),
        ..before.clone()
    };
    change
        .commit(Some(&audit_value(&before)), Some(&audit_value(&after)))
        .await?;
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> EnrollmentTokenView {
        EnrollmentTokenView {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            group: "web".into(),
            channel: Some("stable".into()),
            created_at: Timestamp::UNIX_EPOCH,
            expires_at: Some("2026-01-02T00:00:00Z".parse().unwrap()),
            max_uses: Some(2),
            uses: 1,
            revoked_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn a_live_token_admits_its_own_group_and_channel_only() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(judge(&token(), "stable", "web", now), Ok(()));
        let other = judge(&token(), "beta", "web", now).unwrap_err();
        assert_eq!(other.code(), "enrollment_token_scope");
        assert!(other.message().contains("\"beta\""), "{}", other.message());
        assert!(judge(&token(), "stable", "db", now).is_err());
        let any_channel = EnrollmentTokenView {
            channel: None,
            ..token()
        };
        assert_eq!(judge(&any_channel, "beta", "web", now), Ok(()));
    }

    #[test]
    fn revoked_expired_and_used_up_tokens_are_refused_with_their_reason() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let revoked = EnrollmentTokenView {
            revoked_at: Some(now),
            ..token()
        };
        assert_eq!(
            judge(&revoked, "stable", "web", now).unwrap_err().code(),
            "enrollment_token_revoked"
        );
        let later: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        assert_eq!(
            judge(&token(), "stable", "web", later).unwrap_err().code(),
            "enrollment_token_expired"
        );
        let used = EnrollmentTokenView { uses: 2, ..token() };
        let r = judge(&used, "stable", "web", now).unwrap_err();
        assert_eq!(r.code(), "enrollment_token_used_up");
        assert!(r.message().contains("2 of 2"), "{}", r.message());
    }
}
