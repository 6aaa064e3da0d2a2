//! The router: maps every path of the HTTP surface to its handler. Handlers
//! take their state from [`crate::state`], never from here.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};

use moho_protocol::fleetlock::{PRE_REBOOT_PATH, STEADY_STATE_PATH};
use moho_protocol::node::{CHECK_IN_PATH, EVENTS_PATH};

use crate::error::ApiError;
use crate::http::{
    admin_enrollment, admin_events, admin_flatcar, admin_fleet, admin_repo, admin_rollouts,
    admin_tokens, fleetlock, health, node, repo,
};
use crate::state::AppState;

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route(
            "/channels",
            get(admin_fleet::list_channels).post(admin_fleet::create_channel),
        )
        .route(
            "/groups",
            get(admin_fleet::list_groups).post(admin_fleet::create_group),
        )
        .route(
            "/groups/{name}",
            get(admin_fleet::get_group).patch(admin_fleet::update_group),
        )
        .route("/nodes", get(admin_fleet::list_nodes))
        .route("/nodes/prune", post(admin_fleet::prune_nodes))
        .route(
            "/nodes/{id}",
            get(admin_fleet::get_node).delete(admin_fleet::delete_node),
        )
        .route("/nodes/{id}/events", get(admin_events::node_events))
        .route("/events", get(admin_events::event_stream))
        .route("/events/live", get(admin_events::event_stream_live))
        .route(
            "/holds",
            get(admin_fleet::list_holds).post(admin_fleet::create_hold),
        )
        .route("/holds/{id}", delete(admin_fleet::delete_hold))
        .route("/fleetlock/{group}", get(admin_fleet::fleetlock_view))
        .route(
            "/fleetlock/{group}/{node}",
            delete(admin_fleet::fleetlock_force_release),
        )
        .route("/audit", get(admin_fleet::audit_log))
        .route(
            "/tokens",
            get(admin_tokens::list_tokens).post(admin_tokens::create_token),
        )
        .route("/tokens/{id}", delete(admin_tokens::revoke_token))
        .route("/whoami", get(admin_tokens::whoami))
        .route(
            "/enrollment-tokens",
            get(admin_enrollment::list).post(admin_enrollment::create),
        )
        .route("/enrollment-tokens/{id}", delete(admin_enrollment::revoke))
        .route("/releases", get(admin_rollouts::list_releases))
        .route("/releases/sync", post(admin_repo::sync_releases))
        .route("/releases/flatcar", post(admin_flatcar::register))
        .route("/repository/files", get(admin_repo::list_files))
        .route("/uploads", post(admin_repo::create_upload))
        .route("/uploads/{id}/files/{*path}", put(admin_repo::upload_file))
        .route("/uploads/{id}/commit", post(admin_repo::commit_upload))
        .route(
            "/rollouts",
            get(admin_rollouts::list_rollouts).post(admin_rollouts::create_rollout),
        )
        .route(
            "/rollouts/{id}",
            get(admin_rollouts::get_rollout).patch(admin_rollouts::update_rollout),
        )
        .route(
            "/rollouts/{id}/actions",
            post(admin_rollouts::rollout_action),
        )
        .route("/openapi.json", get(crate::http::openapi::document));
    Router::new()
        .route(CHECK_IN_PATH, post(node::check_in))
        .route(EVENTS_PATH, post(node::events))
        .route("/v1/update", post(crate::omaha::endpoint::update))
        .route("/v1/update/", post(crate::omaha::endpoint::update))
        .route(PRE_REBOOT_PATH, post(fleetlock::pre_reboot))
        .route(STEADY_STATE_PATH, post(fleetlock::steady_state))
        .route(
            "/repo/{*path}",
            get(repo::serve_file).head(repo::serve_file),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::metrics::render))
        .nest("/api/v1", api)
        .merge(crate::dashboard::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}
