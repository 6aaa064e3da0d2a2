//! Admin API authentication: `Authorization: Bearer <token>`; tokens are
//! stored as SHA-256 hashes with a name and a role (admin or viewer).

use axum::http::HeaderMap;
use moho_protocol::admin::Role;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::error::ApiError;
use crate::store::{Db, StoreError, Token, TokenRecord};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Token name.
    pub name: String,
    /// Role.
    pub role: Role,
}

/// The stored hash of a token secret.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a token with 244 random bits (two v4 UUIDs from the OS RNG).
pub async fn create_token(
    db: &Db,
    name: &str,
    role: Role,
    now: jiff::Timestamp,
) -> Result<Token, StoreError> {
    let secret = format!(
        "moho_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let record = TokenRecord {
        name: name.to_owned(),
        role,
    };
    db.insert_token(&token_hash(&secret), &record, now).await?;
    Ok(Token { secret, record })
}

/// Checks the bearer token and that its role may do `need`.
pub async fn authorize(app: &AppState, headers: &HeaderMap, need: Role) -> Result<Actor, ApiError> {
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
    let record = app
        .db
        .token(&token_hash(secret.trim()))
        .await?
        .ok_or_else(|| ApiError::unauthorized("bad_token", "unknown or revoked token"))?;
    if need == Role::Admin && record.role != Role::Admin {
        return Err(ApiError::forbidden(
            "forbidden",
            format!(
                "token {:?} has role viewer; this call needs admin",
                record.name
            ),
        ));
    }
    Ok(Actor {
        name: record.name,
        role: record.role,
    })
}
