//! Admin API for releases and rollouts: list the releases synced from the
//! signed repository, create a rollout of a release to a channel and group,
//! read its live state and counters, pause/resume/abort/revert it, and change
//! its policy (both through [`crate::rollout_ops`]).

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use moho_protocol::admin::{
    CreateRollout, List, ReleaseView, Role, RolloutActionRequest, RolloutView, UpdateRollout,
};

use crate::cache::LiveRollout;
use crate::error::ApiError;
use crate::http::auth::authorize;
use crate::http::body::{bad_path, json};
use crate::rollout_ops;
use crate::state::AppState;

/// The API view of a rollout with fresh counters.
pub fn view(l: &LiveRollout) -> RolloutView {
    let r = &l.record;
    RolloutView {
        id: r.id,
        version: r.version.clone(),
        board: r.board.clone(),
        channel: r.channel.clone(),
        group: r.group.clone(),
        policy: r.policy.clone(),
        state: r.state,
        stats: l.stats,
        current_percent: r.policy.share_at(r.state.step).percent(),
        created_at: r.created_at,
    }
}

/// `GET /api/v1/releases`.
pub async fn list_releases(
    State(app): State<AppState>,
    h: HeaderMap,
) -> Result<Json<List<ReleaseView>>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    Ok(Json(List {
        items: app.db.releases().await?,
    }))
}

/// Rollout `id` with fresh counters, or 404.
pub async fn live(app: &AppState, id: i64) -> Result<LiveRollout, ApiError> {
    app.caches
        .live(&app.db, &app.config, id, app.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_rollout", format!("unknown rollout {id}")))
}

/// `GET /api/v1/rollouts`.
pub async fn list_rollouts(
    State(app): State<AppState>,
    h: HeaderMap,
) -> Result<Json<List<RolloutView>>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    let mut items = Vec::new();
    for r in app.db.rollouts().await? {
        items.push(view(&live(&app, r.id).await?));
    }
    Ok(Json(List { items }))
}

/// `GET /api/v1/rollouts/{id}`.
pub async fn get_rollout(
    State(app): State<AppState>,
    h: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<RolloutView>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    let Path(id) = id.map_err(bad_path)?;
    Ok(Json(view(&live(&app, id).await?)))
}

/// `POST /api/v1/rollouts`: only a release present in the signed repository,
/// signed for the channel, can be rolled out.
pub async fn create_rollout(
    State(app): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<RolloutView>), ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let req: CreateRollout = json(body, app.config.max_admin_body).await?;
    let id = rollout_ops::create(&app, &actor.name, &req).await?;
    Ok((StatusCode::CREATED, Json(view(&live(&app, id).await?))))
}

/// `PATCH /api/v1/rollouts/{id}` with `{"policy": ...}`: change the ramp or
/// the caps.
pub async fn update_rollout(
    State(app): State<AppState>,
    h: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Body,
) -> Result<Json<RolloutView>, ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let Path(id) = id.map_err(bad_path)?;
    let req: UpdateRollout = json(body, app.config.max_admin_body).await?;
    rollout_ops::change_policy(&app, &actor.name, id, req.policy).await?;
    Ok(Json(view(&live(&app, id).await?)))
}

/// `POST /api/v1/rollouts/{id}/actions` with `{"action": "pause"|"resume"|"abort"|"revert"}`.
pub async fn rollout_action(
    State(app): State<AppState>,
    h: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Body,
) -> Result<Json<RolloutView>, ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let Path(id) = id.map_err(bad_path)?;
    let req: RolloutActionRequest = json(body, app.config.max_admin_body).await?;
    rollout_ops::act(&app, &actor.name, id, req.action).await?;
    Ok(Json(view(&live(&app, id).await?)))
}
