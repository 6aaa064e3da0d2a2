//! Admin API for enrolment tokens: list (never a secret), create (the
//! secret is in the answer, once) and revoke by id or name. Admin role
//! only; the rules and audit entries are in [`crate::enrollment`].

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use moho_protocol::admin::{
    CreateEnrollmentToken, CreatedEnrollmentToken, EnrollmentTokenView, List, Role, TokenQuery,
};

use crate::enrollment::{self, EnrollmentError};
use crate::error::ApiError;
use crate::http::auth::authorize;
use crate::http::body::{bad_query, json};
use crate::state::AppState;

impl From<EnrollmentError> for ApiError {
    fn from(e: EnrollmentError) -> Self {
        let message = e.to_string();
        match e {
            EnrollmentError::BadName(_) => ApiError::bad_request("invalid_name", message),
            EnrollmentError::ExpiryPast(_) | EnrollmentError::ZeroUses => {
                ApiError::bad_request("invalid_value", message)
            }
            EnrollmentError::UnknownGroup(_) => ApiError::unprocessable("unknown_group", message),
            EnrollmentError::UnknownChannel(_) => {
                ApiError::unprocessable("unknown_channel", message)
            }
            EnrollmentError::NameTaken(_) => ApiError::conflict("exists", message),
            EnrollmentError::Unknown(_) => ApiError::not_found("unknown_token", message),
            EnrollmentError::Ambiguous(_) => ApiError::conflict("ambiguous_name", message),
            EnrollmentError::AlreadyRevoked { .. } => {
                ApiError::conflict("already_revoked", message)
            }
            EnrollmentError::Store(s) => ApiError::from(s),
        }
    }
}

/// `GET /api/v1/enrollment-tokens[?all=true]`: live tokens, or every one.
pub async fn list(
    State(app): State<AppState>,
    h: HeaderMap,
    q: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Json<List<EnrollmentTokenView>>, ApiError> {
    authorize(&app, &h, Role::Admin).await?;
    let Query(q) = q.map_err(bad_query)?;
    Ok(Json(List {
        items: app.db.enrollment_tokens(q.all, app.clock.now()).await?,
    }))
}

/// `POST /api/v1/enrollment-tokens`.
pub async fn create(
    State(app): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<CreatedEnrollmentToken>), ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let req: CreateEnrollmentToken = json(body, app.config.max_admin_body).await?;
    let created = enrollment::create(&app.db, &req, &actor.name, app.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /api/v1/enrollment-tokens/{id}` (or a live token's name).
pub async fn revoke(
    State(app): State<AppState>,
    h: HeaderMap,
    Path(which): Path<String>,
) -> Result<Json<EnrollmentTokenView>, ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    Ok(Json(
        enrollment::revoke(&app.db, &which, &actor.name, app.clock.now()).await?,
    ))
}
