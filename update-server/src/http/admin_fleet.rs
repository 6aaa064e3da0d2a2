//! Admin API for the fleet: channels, groups (with FleetLock slots), nodes
//! (filters, stale-node pruning), holds/pins, FleetLock slot holders and the
//! audit log. Reads need a viewer token, changes an admin token; every change
//! is written to the audit log with actor and before/after (channel, group,
//! hold and FleetLock changes through [`crate::fleet_ops`], shared with the
//! dashboard).

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use moho_protocol::admin::{
    AuditEntry, AuditQuery, ChannelView, CreateChannel, CreateHold, FleetLockView, GroupSpec,
    GroupView, HoldView, List, LockHolder, NodeQuery, NodeView, PruneNodes, PruneResult, Role,
};
use moho_protocol::names::check_node_id;

use crate::error::ApiError;
use crate::fleet_ops;
use crate::http::auth::authorize;
use crate::http::body::{bad_path, bad_query, json};
use crate::state::AppState;
use crate::store::NodeRecord;

fn to_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

fn node_view(n: NodeRecord) -> NodeView {
    NodeView {
        id: n.id,
        channel: n.channel,
        group: n.group,
        board: n.board,
        version: n.version,
        slot: n.slot,
        state: n.state,
        last_seen: n.last_seen,
        registered_at: n.registered_at,
        hostname: (!n.hostname.is_empty()).then_some(n.hostname),
        fallback_version: n.fallback_version,
        kind: n.kind,
        omaha: n.omaha,
    }
}

/// `GET /api/v1/channels`.
pub async fn list_channels(
    State(app): State<AppState>,
    h: HeaderMap,
) -> Result<Json<List<ChannelView>>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    let items = app
        .db
        .channels()
        .await?
        .into_iter()
        .map(|name| ChannelView { name })
        .collect();
    Ok(Json(List { items }))
}

/// `POST /api/v1/channels`.
pub async fn create_channel(
    State(app): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let req: CreateChannel = json(body, app.config.max_admin_body).await?;
    let view = fleet_ops::create_channel(&app, &actor.name, &req.name).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/v1/groups`.
pub async fn list_groups(
    State(app): State<AppState>,
    h: HeaderMap,
) -> Result<Json<List<GroupView>>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    Ok(Json(List {
        items: app.db.groups().await?,
    }))
}

/// `GET /api/v1/groups/{name}`.
pub async fn get_group(
    State(app): State<AppState>,
    h: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<GroupView>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    app.db
        .group(&name)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("unknown_group", format!("unknown group {name:?}")))
}

/// `POST /api/v1/groups`.
pub async fn create_group(
    State(app): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<GroupView>), ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let spec: GroupSpec = json(body, app.config.max_admin_body).await?;
    let view = fleet_ops::create_group(&app, &actor.name, &spec).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `PATCH /api/v1/groups/{name}`: change FleetLock slots or lease at runtime.
pub async fn update_group(
    State(app): State<AppState>,
    h: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<GroupView>, ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let spec: GroupSpec = json(body, app.config.max_admin_body).await?;
    fleet_ops::check_slots(&spec)?;
    let before =
        app.db.group(&name).await?.ok_or_else(|| {
            ApiError::not_found("unknown_group", format!("unknown group {name:?}"))
        })?;
    let after = GroupView {
        name: name.clone(),
        fleetlock_slots: spec.fleetlock_slots.unwrap_or(before.fleetlock_slots),
        fleetlock_lease_secs: spec
            .fleetlock_lease_secs
            .unwrap_or(before.fleetlock_lease_secs),
    };
    let mut change = app
        .db
        .change(
            &actor.name,
            "group.update",
            format!("group/{name}"),
            app.clock.now(),
        )
        .await?;
    app.db.upsert_group(change.tx(), &after).await?;
    change
        .commit(Some(&to_value(&before)), Some(&to_value(&after)))
        .await?;
    Ok(Json(after))
}

/// `GET /api/v1/nodes?channel=&group=&version=&state=&stale_secs=&limit=&after=`.
pub async fn list_nodes(
    State(app): State<AppState>,
    h: HeaderMap,
    q: Result<Query<NodeQuery>, QueryRejection>,
) -> Result<Json<List<NodeView>>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    let Query(q) = q.map_err(bad_query)?;
    // Check-ins written behind are stored first: an operator reads what the
    // nodes last said.
    app.check_ins.flush().await?;
    let nodes = app.db.list_nodes(&q, app.clock.now()).await?;
    Ok(Json(List {
        items: nodes.into_iter().map(node_view).collect(),
    }))
}

/// `GET /api/v1/nodes/{id}`.
pub async fn get_node(
    State(app): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<NodeView>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    check_node_id(&id).map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    app.check_ins.flush().await?;
    app.db
        .node(&id)
        .await?
        .map(|n| Json(node_view(n)))
        .ok_or_else(|| ApiError::not_found("unknown_node", format!("unknown node {id:?}")))
}

/// `DELETE /api/v1/nodes/{id}`: forget a node (it registers again, possibly
/// with a new key, on its next check-in).
pub async fn delete_node(
    State(app): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let before = app
        .db
        .node(&id)
        .await?
        .map(node_view)
        .ok_or_else(|| ApiError::not_found("unknown_node", format!("unknown node {id:?}")))?;
    let mut change = app
        .db
        .change(
            &actor.name,
            "node.delete",
            format!("node/{id}"),
            app.clock.now(),
        )
        .await?;
    if !app.db.delete_node(change.tx(), &id).await? {
        change.abandon().await?;
        return Err(ApiError::not_found(
            "unknown_node",
            format!("unknown node {id:?}"),
        ));
    }
    change.commit(Some(&to_value(&before)), None).await?;
    app.hot.forget(&id);
    app.caches.clear();
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/nodes/prune`: forget nodes not seen for `stale_secs`.
pub async fn prune_nodes(
    State(app): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> Result<Json<PruneResult>, ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let req: PruneNodes = json(body, app.config.max_admin_body).await?;
    let now = app.clock.now();
    let secs = i64::try_from(req.stale_secs).unwrap_or(i64::MAX / 1000);
    let before = now
        .checked_sub(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(jiff::Timestamp::MIN);
    // Check-ins written behind first (before the transaction takes the
    // writer): a node seen since is not stale.
    app.check_ins.flush().await?;
    let mut change = app
        .db
        .change(&actor.name, "nodes.prune", "nodes", now)
        .await?;
    let removed = app.db.prune_nodes(change.tx(), before).await?;
    let after = serde_json::json!({"stale_secs": req.stale_secs, "removed": removed});
    change.commit(None, Some(&after)).await?;
    app.hot.forget_seen_before(before);
    app.caches.clear();
    Ok(Json(PruneResult { removed }))
}

/// `GET /api/v1/holds`.
pub async fn list_holds(
    State(app): State<AppState>,
    h: HeaderMap,
) -> Result<Json<List<HoldView>>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    Ok(Json(List {
        items: app.db.holds(app.clock.now()).await?,
    }))
}

/// `POST /api/v1/holds`.
pub async fn create_hold(
    State(app): State<AppState>,
    h: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<HoldView>), ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let req: CreateHold = json(body, app.config.max_admin_body).await?;
    let view = fleet_ops::create_hold(&app, &actor.name, &req).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `DELETE /api/v1/holds/{id}`.
pub async fn delete_hold(
    State(app): State<AppState>,
    h: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    let Path(id) = id.map_err(bad_path)?;
    fleet_ops::delete_hold(&app, &actor.name, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/fleetlock/{group}`: slots and who holds them.
pub async fn fleetlock_view(
    State(app): State<AppState>,
    h: HeaderMap,
    Path(group): Path<String>,
) -> Result<Json<FleetLockView>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    let (slots, lease_secs) = app.db.fleetlock_config(&group).await?;
    let holders = app
        .db
        .fleetlock_holders(&group, app.clock.now())
        .await?
        .into_iter()
        .map(|r| LockHolder {
            node_id: r.node_id,
            acquired_at: r.acquired_at,
            expires_at: r.expires_at,
            kind: r.kind,
        })
        .collect();
    Ok(Json(FleetLockView {
        group,
        slots,
        lease_secs,
        holders,
    }))
}

/// `DELETE /api/v1/fleetlock/{group}/{node}`: free a slot by hand.
pub async fn fleetlock_force_release(
    State(app): State<AppState>,
    h: HeaderMap,
    Path((group, node)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let actor = authorize(&app, &h, Role::Admin).await?;
    fleet_ops::release_slot(&app, &actor.name, &group, &node).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/audit?limit=&before=&actor=&action=&subject=`, newest first.
pub async fn audit_log(
    State(app): State<AppState>,
    h: HeaderMap,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<List<AuditEntry>>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    let Query(q) = q.map_err(bad_query)?;
    Ok(Json(List {
        items: app.db.audit_log(&q).await?,
    }))
}
