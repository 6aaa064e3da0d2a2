//! Admin API for admin and viewer tokens: list (never a secret), create
//! (the secret is in the answer, once), revoke by id or name, and
//! `whoami` for any live token. Managing tokens needs an admin token; the
//! rules and the audit entries are in [`crate::tokens`].

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use moho_protocol::admin::{CreateToken, CreatedToken, List, Role, TokenQuery, TokenView};

use crate::error::ApiError;
use crate::http::auth::{authenticate, authorize};
use crate::http::body::{bad_query, json};
use crate::state::AppState;
use crate::tokens::{self, TokenError};

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        let message = e.to_string();
        match e {
            TokenError::BadName(_) => ApiError::bad_request("invalid_name", message),
            TokenError::ExpiryPast(_) => ApiError::bad_request("invalid_value", message),
            TokenError::NameTaken(_) => ApiError::conflict("exists", message),
            TokenError::Unknown(_) => ApiError::not_found("unknown_token", message),
            TokenError::Ambiguous(_) => ApiError::conflict("ambiguous_name", message),
            TokenError::AlreadyRevoked { .. } => ApiError::conflict("already_revoked", message),
            TokenError::LastAdmin(_) => ApiError::conflict("last_admin", message),
            TokenError::Store(s) => ApiError::from(s),
        }
    }
}

/// `GET /api/v1/tokens[?all=true]`: live tokens, or every token.
pub async fn list_tokens(
    State(app): State<AppState>,
    h: HeaderMap,
    q: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Json<List<TokenView>>, ApiError> {
    authorize(&app, &h, Role::Admin).await?;
    let Query(q) = q.map_err(bad_query)?;
    Ok(Json(List {
        items: app.db.tokens(q.all, app.clock.now()).await?,
    }))
}

/// `POST /api/v1/tokens`.
pub async fn create_token(
    State(app): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let req: CreateToken = json(body, app.config.max_admin_body).await?;
    let created = tokens::create(&app.db, &req, &actor.name, app.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /api/v1/tokens/{id}` (or a live token's name): revoke it. The
/// last live admin token cannot be revoked through the API.
pub async fn revoke_token(
    State(app): State<AppState>,
    h: HeaderMap,
    Path(which): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let after = tokens::revoke(&app.db, &which, &actor.name, app.clock.now(), true).await?;
    Ok(Json(after))
}

/// `GET /api/v1/whoami`: the caller's own token.
pub async fn whoami(
    State(app): State<AppState>,
    h: HeaderMap,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(authenticate(&app, &h).await?))
}
