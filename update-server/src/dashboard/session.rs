//! Logging in to the dashboard: an admin or viewer API token is exchanged
//! for a session cookie (`HttpOnly`, `SameSite=Strict`, `Secure` when the
//! server speaks TLS). Every form carries the session's CSRF secret, checked
//! in constant time; the login form, which has no session yet, uses a
//! double-submit cookie instead. The role is read from the token on every
//! request, so revoking a token (or its expiry) ends its sessions at once.

use axum::http::{HeaderMap, HeaderValue, header};
use jiff::{SignedDuration, Timestamp};
use moho_protocol::admin::Role;

use crate::http::auth::token_hash;
use crate::state::AppState;
use crate::store::StoreError;
use crate::tokens::Refusal;

/// Cookie holding the session id.
pub const SESSION_COOKIE: &str = "moho_session";
/// Cookie holding the login form's CSRF secret.
pub const LOGIN_COOKIE: &str = "moho_login";
/// How long a session lasts.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(12);

/// Who is looking at the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The token's name (the audit log's actor).
    pub name: String,
    /// The token's role.
    pub role: Role,
    /// The secret this session's forms carry.
    pub csrf: String,
    /// The group the pages are scoped to (filled by `require_user`).
    pub scope: super::scope::Scope,
}

impl User {
    /// Whether this user may change things.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A fresh random secret: 244 bits from the OS RNG, hex.
pub fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares two secrets in time that depends only on their length.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: SignedDuration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs().max(0)
    );
    // Names are constants; values are hex secrets.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// The logged-in user of this request, if its session is valid.
pub async fn current_user(app: &AppState, headers: &HeaderMap) -> Result<Option<User>, StoreError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(app
        .db
        .session(&token_hash(id), app.clock.now())
        .await?
        .map(|s| User {
            name: s.name,
            role: s.role,
            csrf: s.csrf,
            scope: super::scope::Scope::default(),
        }))
}

/// Opens a session for the token `secret`; returns the cookie value, or
/// why the token is refused (unknown, revoked, expired).
pub async fn open_session(
    app: &AppState,
    secret: &str,
    now: Timestamp,
) -> Result<Result<String, Refusal>, StoreError> {
    if let Err(refusal) = crate::tokens::check(&app.db, secret, now).await? {
        return Ok(Err(refusal));
    }
    let id = random_secret();
    let expires = now.checked_add(SESSION_LIFETIME).unwrap_or(now);
    app.db
        .insert_session(
            &token_hash(&id),
            &token_hash(secret.trim()),
            &random_secret(),
            now,
            expires,
        )
        .await?;
    Ok(Ok(id))
}

/// Ends the request's session, if any.
pub async fn close_session(app: &AppState, headers: &HeaderMap) -> Result<(), StoreError> {
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        app.db.delete_session(&token_hash(id)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_secrets() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; moho_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        let v = set_cookie(SESSION_COOKIE, "abc", SignedDuration::from_hours(1), true);
        let v = v.to_str().unwrap_or_default();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=3600",
            "Secure",
            "Path=/",
        ] {
            assert!(v.contains(part), "{v}");
        }
        assert!(
            !set_cookie(SESSION_COOKIE, "x", SignedDuration::ZERO, false)
                .to_str()
                .unwrap_or_default()
                .contains("Secure")
        );
        let s = random_secret();
        assert_eq!(s.len(), 64);
        assert_ne!(s, random_secret());
        assert!(same_secret(&s, &s.clone()));
        assert!(!same_secret(&s, &random_secret()));
        assert!(!same_secret("", ""));
        assert!(!same_secret("ab", "abc"));
    }
}
