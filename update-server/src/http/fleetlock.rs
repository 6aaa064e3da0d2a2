//! FleetLock (`POST /v1/pre-reboot`, `POST /v1/steady-state`): a semaphore
//! per group with expiring leases. Requests must carry
//! `fleet-lock-protocol: true`. Only enrolled nodes take and release slots,
//! and only in the group they are registered in: a Moho node signs the
//! request with its node key; a Flatcar node (registered through Omaha,
//! which has no key) is served unsigned as stock FleetLock clients expect —
//! the protocol's limit — within a per-source rate limit (`429` with
//! `Retry-After`). An unknown id is refused (`403 unknown_node`), and
//! nothing is stored.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use moho_protocol::fleetlock::{
    FleetLockError, FleetLockRequest, PRE_REBOOT_PATH, PROTOCOL_HEADER, STEADY_STATE_PATH,
};
use moho_protocol::names::{check_group, check_node_id};
use moho_protocol::signing::{RequestSignature, verify_request};

use moho_protocol::admin::NodeKind;

use crate::http::body::read_limited;
use crate::http::limits::{Limited, Source};
use crate::state::AppState;
use crate::store::Acquire;

fn refuse(status: StatusCode, kind: &str, value: impl Into<String>) -> Response {
    (
        status,
        Json(FleetLockError {
            kind: kind.to_owned(),
            value: value.into(),
        }),
    )
        .into_response()
}

/// Validates headers, body and (for Moho nodes) the signature.
async fn request(
    app: &AppState,
    source: Source,
    headers: &HeaderMap,
    body: Body,
    path: &str,
) -> Result<FleetLockRequest, Response> {
    if headers.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok()) != Some("true") {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "missing_header",
            "header fleet-lock-protocol: true is required",
        ));
    }
    let bytes = read_limited(body, app.config.max_node_body)
        .await
        .map_err(IntoResponse::into_response)?;
    let req: FleetLockRequest = serde_json::from_slice(&bytes).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid FleetLock body: {e}"),
        )
    })?;
    check_node_id(&req.client_params.id)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    check_group(&req.client_params.group)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, "bad_request", e.to_string()))?;
    let node = app
        .db
        .node(&req.client_params.id)
        .await
        .map_err(|e| crate::error::ApiError::from(e).into_response())?;
    let unsigned = node.as_ref().is_none_or(|n| n.kind != NodeKind::Moho);
    if unsigned && let Err(t) = app.limits.check(Limited::FleetLock, source.0) {
        // Unsigned: anyone could send it, so it is limited per source.
        let mut resp = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many unsigned FleetLock requests from this address: retry in {} s",
                t.retry_after_secs
            ),
        );
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, t.retry_after_secs.into());
        return Err(resp);
    }
    let Some(node) = node else {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "unknown_node",
            format!(
                "node {:?} is not enrolled: FleetLock is only for nodes registered with this server",
                req.client_params.id
            ),
        ));
    };
    if node.group != req.client_params.group {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "wrong_group",
            format!(
                "node {:?} is registered in group {:?}, not {:?}",
                node.id, node.group, req.client_params.group
            ),
        ));
    }
    // Flatcar nodes (Omaha) have no key: they speak stock FleetLock.
    if node.kind == NodeKind::Moho {
        let sig = RequestSignature::from_headers(|n| headers.get(n).and_then(|v| v.to_str().ok()))
            .map_err(|e| refuse(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
        let key = app
            .keys
            .decode(&node.public_key)
            .map_err(|e| refuse(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
        if sig.node_id != node.id {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                "signature names another node",
            ));
        }
        verify_request(&key, "POST", path, &sig, &bytes)
            .map_err(|e| refuse(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
        let fresh = app
            .db
            .advance_counter(&node.id, sig.counter)
            .await
            .map_err(|e| crate::error::ApiError::from(e).into_response())?;
        if !fresh {
            return Err(refuse(
                StatusCode::CONFLICT,
                "replayed_request",
                format!("counter {} already used", sig.counter),
            ));
        }
    }
    Ok(req)
}

/// `POST /v1/pre-reboot`: take (or renew) a reboot slot.
pub async fn pre_reboot(
    State(app): State<AppState>,
    source: Source,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req = match request(&app, source, &headers, body, PRE_REBOOT_PATH).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let p = &req.client_params;
    match app
        .db
        .fleetlock_acquire(&p.group, &p.id, app.clock.now())
        .await
    {
        Ok(Acquire::Granted) => StatusCode::OK.into_response(),
        Ok(Acquire::Busy { slots, holders }) => refuse(
            StatusCode::CONFLICT,
            "failed_lock",
            format!(
                "all {slots} reboot slot(s) of group {:?} are held by {}",
                p.group,
                holders.join(", ")
            ),
        ),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

/// `POST /v1/steady-state`: release the slot (fine if none was held).
pub async fn steady_state(
    State(app): State<AppState>,
    source: Source,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let req = match request(&app, source, &headers, body, STEADY_STATE_PATH).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    match app
        .db
        .fleetlock_release(None, &req.client_params.group, &req.client_params.id)
        .await
    {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}
