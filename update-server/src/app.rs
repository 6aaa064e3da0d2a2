//! The shared state of a running server and the router that maps every
//! path to its handler.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};

use moho_protocol::fleetlock::{PRE_REBOOT_PATH, STEADY_STATE_PATH};
use moho_protocol::node::{CHECK_IN_PATH, EVENTS_PATH};

use crate::cache::Caches;
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::http::{admin_fleet, admin_repo, admin_rollouts, fleetlock, health, node, repo};
use crate::metrics::Metrics;
use crate::store::Db;

/// Everything a handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Storage.
    pub db: Db,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub config: Arc<ServerConfig>,
    /// Caches of rollouts, releases and holds.
    pub caches: Arc<Caches>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Rollback state of the served repository (after the last verification).
    pub repo_state: Arc<std::sync::Mutex<Option<moho_release::TrustedState>>>,
    /// Serialises publications.
    pub publish_lock: Arc<tokio::sync::Mutex<()>>,
    /// Batches the node updates of concurrent check-ins.
    pub check_ins: crate::store::CheckInBatcher,
    /// The dashboard's caches.
    pub dashboard: Arc<crate::dashboard::DashboardState>,
}

impl AppState {
    /// Builds the state (starts the check-in batching task: needs a tokio
    /// runtime).
    pub fn new(db: Db, clock: Arc<dyn Clock>, config: ServerConfig) -> Self {
        Self {
            check_ins: crate::store::CheckInBatcher::start(db.clone()),
            db,
            clock,
            config: Arc::new(config),
            caches: Arc::default(),
            metrics: Arc::new(Metrics::new()),
            repo_state: Arc::default(),
            publish_lock: Arc::default(),
            dashboard: Arc::default(),
        }
    }
}

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
        .route("/releases", get(admin_rollouts::list_releases))
        .route("/releases/sync", post(admin_repo::sync_releases))
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
