//! Admin API for Flatcar releases: `POST /api/v1/releases/flatcar`
//! registers one (its payloads' base URL, sizes and hashes), checked
//! before anything is written and audited. Flatcar releases are their own
//! kind: signed by Flatcar's key, outside the TUF repository, offered only
//! to Flatcar nodes over Omaha, rolled out like any release.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use moho_protocol::admin::{CreateFlatcarRelease, ReleaseView, Role};

use crate::error::ApiError;
use crate::http::auth::authorize;
use crate::http::body::json;
use crate::omaha::release::check_release;
use crate::state::AppState;

/// `POST /api/v1/releases/flatcar`.
pub async fn register(
    State(app): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ReleaseView>), ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let req: CreateFlatcarRelease = json(body, app.config.max_admin_body).await?;
    let r =
        check_release(&req).map_err(|e| ApiError::bad_request("invalid_release", e.to_string()))?;
    for c in &r.channels {
        if !app.db.channel_exists(c).await? {
            return Err(ApiError::unprocessable(
                "unknown_channel",
                format!("unknown channel {c:?}"),
            ));
        }
    }
    let now = app.clock.now();
    let mut change = app
        .db
        .change(
            &actor.name,
            "release.register_flatcar",
            format!("release/{}/{}", r.board, r.version),
            now,
        )
        .await?;
    if !app
        .db
        .insert_flatcar_release(
            change.tx(),
            &r.version,
            &r.board,
            &r.channels,
            &r.payloads(),
        )
        .await?
    {
        return Err(ApiError::conflict(
            "release_exists",
            format!(
                "a release {} for board {:?} exists already (releases are immutable)",
                r.version, r.board
            ),
        ));
    }
    let after = serde_json::to_value(&r).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding_failed",
            e.to_string(),
        )
    })?;
    change.commit(None, Some(&after)).await?;
    app.caches.clear();
    let view = app.db.release(&r.version, &r.board).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "release_lost",
            format!("release {} vanished after it was registered", r.version),
        )
    })?;
    Ok((StatusCode::CREATED, Json(view)))
}
