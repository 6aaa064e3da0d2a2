//! Admin API authentication: `Authorization: Bearer <token>`; tokens are
//! stored as SHA-256 hashes with a name, a role (admin or viewer), an
//! optional expiry and a revocation time (rules in [`crate::tokens`]). A
//! revoked or expired token is refused at its next request: nothing caches
//! tokens.

use axum::http::HeaderMap;
use moho_protocol::admin::{CreateToken, CreatedToken, Role, TokenView};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Db;
use crate::tokens::{self, LOCAL_ACTOR, TokenError};

pub use crate::tokens::token_hash;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Token name.
    pub name: String,
    /// Role.
    pub role: Role,
}

/// Creates a token that never expires, audited as made on the server's host
/// (`update-server token create`, test set-ups).
pub async fn create_token(
    db: &Db,
    name: &str,
    role: Role,
    now: jiff::Timestamp,
) -> Result<CreatedToken, TokenError> {
    let req = CreateToken {
        name: name.to_owned(),
        role,
        expires_at: None,
    };
    tokens::create(db, &req, LOCAL_ACTOR, now).await
}

/// The live token of the request's `Authorization: Bearer` header.
pub async fn authenticate(app: &AppState, headers: &HeaderMap) -> Result<TokenView, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "unauthenticated",
                "missing Authorization: Bearer <token> header",
            )
        })?;
    let secret = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized(
                "unauthenticated",
                "Authorization header is not 'Bearer <token>'",
            )
        })?;
    tokens::check(&app.db, secret, app.clock.now())
        .await?
        .map_err(|refusal| ApiError::unauthorized(refusal.code(), refusal.message()))
}

/// Checks the bearer token and that its role may do `need`.
pub async fn authorize(app: &AppState, headers: &HeaderMap, need: Role) -> Result<Actor, ApiError> {
    let token = authenticate(app, headers).await?;
    if need == Role::Admin && token.role != Role::Admin {
        return Err(ApiError::forbidden(
            "forbidden",
            format!(
                "token {:?} has role viewer; this call needs admin",
                token.name
            ),
        ));
    }
    Ok(Actor {
        name: token.name,
        role: token.role,
    })
}
