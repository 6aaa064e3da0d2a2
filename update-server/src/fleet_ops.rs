//! Operator changes to the fleet's set-up, shared by the admin API and the
//! dashboard so both apply the same rules: create a channel or a group,
//! create or remove a hold/pin, free a FleetLock slot by hand. Each change
//! and its audit entry (actor, before, after) are written in one
//! transaction through [`crate::store::Db::change`]; a refused change
//! stores nothing. Errors name the field they blame
//! ([`ApiError::field`]).

use moho_protocol::admin::{ChannelView, CreateHold, GroupSpec, GroupView, HoldView};
use moho_protocol::names::{check_channel, check_group, check_node_id};
use moho_rollout::{Hold, HoldKind, HoldTarget};

use crate::error::ApiError;
use crate::state::AppState;

fn to_value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Creates channel `name` as `actor`; audited as `channel.create`.
pub async fn create_channel(
    app: &AppState,
    actor: &str,
    name: &str,
) -> Result<ChannelView, ApiError> {
    check_channel(name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()).field("name"))?;
    let view = ChannelView {
        name: name.to_owned(),
    };
    let mut change = app
        .db
        .change(
            actor,
            "channel.create",
            format!("channel/{name}"),
            app.clock.now(),
        )
        .await?;
    if !app.db.insert_channel(change.tx(), name).await? {
        change.abandon().await?;
        return Err(ApiError::conflict("exists", format!("channel {name:?} exists")).field("name"));
    }
    change.commit(None, Some(&to_value(&view))).await?;
    app.caches.clear();
    Ok(view)
}

/// Refuses FleetLock settings of zero.
pub fn check_slots(spec: &GroupSpec) -> Result<(), ApiError> {
    if spec.fleetlock_slots == Some(0) {
        return Err(
            ApiError::bad_request("invalid_value", "fleetlock_slots must be at least 1")
                .field("fleetlock_slots"),
        );
    }
    if spec.fleetlock_lease_secs == Some(0) {
        return Err(ApiError::bad_request(
            "invalid_value",
            "fleetlock_lease_secs must be at least 1",
        )
        .field("fleetlock_lease_secs"));
    }
    Ok(())
}

/// Creates the group `spec` describes as `actor` (1 slot and a one-hour
/// lease unless given); audited as `group.create`.
pub async fn create_group(
    app: &AppState,
    actor: &str,
    spec: &GroupSpec,
) -> Result<GroupView, ApiError> {
    let name = spec
        .name
        .clone()
        .ok_or_else(|| ApiError::bad_request("missing_field", "name is required").field("name"))?;
    check_group(&name)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()).field("name"))?;
    check_slots(spec)?;
    if app.db.group(&name).await?.is_some() {
        return Err(ApiError::conflict("exists", format!("group {name:?} exists")).field("name"));
    }
    let view = GroupView {
        name: name.clone(),
        fleetlock_slots: spec.fleetlock_slots.unwrap_or(1),
        fleetlock_lease_secs: spec.fleetlock_lease_secs.unwrap_or(3600),
    };
    let mut change = app
        .db
        .change(
            actor,
            "group.create",
            format!("group/{name}"),
            app.clock.now(),
        )
        .await?;
    app.db.upsert_group(change.tx(), &view).await?;
    change.commit(None, Some(&to_value(&view))).await?;
    app.caches.clear();
    Ok(view)
}

/// Checks a hold before it is stored: the target is a valid group or node
/// name, a pin's version is a version, `until` is in the future.
pub fn check_hold(req: &CreateHold, now: jiff::Timestamp) -> Result<(), ApiError> {
    match &req.target {
        HoldTarget::Group(g) => check_group(g)
            .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()).field("target")),
        HoldTarget::Node(n) => check_node_id(n)
            .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()).field("target")),
    }?;
    if req.until <= now {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("until {} is not in the future", req.until),
        )
        .field("until"));
    }
    if let HoldKind::Pin { version } = &req.kind {
        moho_rollout::version::parse_version(version).map_err(|e| {
            ApiError::bad_request("invalid_version", e.to_string()).field("version")
        })?;
    }
    Ok(())
}

/// Stores a hold or pin as `actor`; audited as `hold.create`.
pub async fn create_hold(
    app: &AppState,
    actor: &str,
    req: &CreateHold,
) -> Result<HoldView, ApiError> {
    let now = app.clock.now();
    check_hold(req, now)?;
    if let HoldTarget::Group(g) = &req.target
        && app.db.group(g).await?.is_none()
    {
        return Err(
            ApiError::unprocessable("unknown_group", format!("unknown group {g:?}"))
                .field("target"),
        );
    }
    let hold = Hold {
        target: req.target.clone(),
        kind: req.kind.clone(),
        until: req.until,
    };
    let mut change = app.db.change(actor, "hold.create", "hold", now).await?;
    let id = app.db.insert_hold(change.tx(), &hold).await?;
    change.set_subject(format!("hold/{id}"));
    let view = HoldView {
        id,
        target: hold.target,
        kind: hold.kind,
        until: hold.until,
    };
    change.commit(None, Some(&to_value(&view))).await?;
    app.caches.clear();
    Ok(view)
}

/// Removes hold `id` as `actor`; audited as `hold.delete` with the hold as
/// it was.
pub async fn delete_hold(app: &AppState, actor: &str, id: i64) -> Result<HoldView, ApiError> {
    let mut change = app
        .db
        .change(actor, "hold.delete", format!("hold/{id}"), app.clock.now())
        .await?;
    let Some(before) = app.db.delete_hold(change.tx(), id).await? else {
        change.abandon().await?;
        return Err(ApiError::not_found(
            "unknown_hold",
            format!("unknown hold {id}"),
        ));
    };
    change.commit(Some(&to_value(&before)), None).await?;
    app.caches.clear();
    Ok(before)
}

/// Frees the FleetLock slot `node` holds in `group` as `actor`; audited as
/// `fleetlock.release`.
pub async fn release_slot(
    app: &AppState,
    actor: &str,
    group: &str,
    node: &str,
) -> Result<(), ApiError> {
    let mut change = app
        .db
        .change(
            actor,
            "fleetlock.release",
            format!("fleetlock/{group}/{node}"),
            app.clock.now(),
        )
        .await?;
    if !app
        .db
        .fleetlock_release(Some(change.tx()), group, node)
        .await?
    {
        change.abandon().await?;
        return Err(ApiError::not_found(
            "not_held",
            format!("node {node:?} holds no slot in group {group:?}"),
        ));
    }
    let before = serde_json::json!({"group": group, "node_id": node});
    change.commit(Some(&before), None).await?;
    Ok(())
}
