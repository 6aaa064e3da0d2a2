//! The OpenAPI 3.1 document of the admin API and the node protocol, served
//! at `/api/v1/openapi.json`. Built from the same route table the tests
//! check against the router, so a route cannot go undocumented.

use axum::Json;

/// One documented operation: method, path, role needed, summary.
pub const OPERATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "post",
        "/v1/check-in",
        "node",
        "Node check-in; answers install, revert or wait",
    ),
    ("post", "/v1/events", "node", "Signed node event report"),
    (
        "post",
        "/v1/update/",
        "omaha",
        "Omaha v3 for Flatcar's update_engine (also /v1/update); with --omaha",
    ),
    (
        "post",
        "/v1/update",
        "omaha",
        "Omaha v3 for Flatcar's update_engine; with --omaha",
    ),
    (
        "post",
        "/v1/pre-reboot",
        "fleetlock",
        "FleetLock: take a reboot slot",
    ),
    (
        "post",
        "/v1/steady-state",
        "fleetlock",
        "FleetLock: release the reboot slot",
    ),
    (
        "get",
        "/repo/{path}",
        "public",
        "TUF repository file (Range, ETag)",
    ),
    ("get", "/healthz", "public", "Liveness"),
    ("get", "/readyz", "public", "Readiness (database reachable)"),
    ("get", "/metrics", "public", "Prometheus metrics"),
    ("get", "/api/v1/channels", "viewer", "List channels"),
    ("post", "/api/v1/channels", "admin", "Create a channel"),
    ("get", "/api/v1/groups", "viewer", "List groups"),
    ("post", "/api/v1/groups", "admin", "Create a group"),
    ("get", "/api/v1/groups/{name}", "viewer", "Get a group"),
    (
        "patch",
        "/api/v1/groups/{name}",
        "admin",
        "Change FleetLock slots or lease of a group",
    ),
    (
        "get",
        "/api/v1/nodes",
        "viewer",
        "List nodes (channel, group, version, state, stale_secs, limit, after)",
    ),
    (
        "post",
        "/api/v1/nodes/prune",
        "admin",
        "Forget nodes not seen for stale_secs",
    ),
    ("get", "/api/v1/nodes/{id}", "viewer", "Get a node"),
    (
        "get",
        "/api/v1/nodes/{id}/events",
        "viewer",
        "A node's events, newest first (limit, before)",
    ),
    (
        "delete",
        "/api/v1/nodes/{id}",
        "admin",
        "Forget a node (it may re-register with a new key)",
    ),
    (
        "get",
        "/api/v1/holds",
        "viewer",
        "List active holds and pins",
    ),
    (
        "post",
        "/api/v1/holds",
        "admin",
        "Hold or pin a group or node until a date",
    ),
    ("delete", "/api/v1/holds/{id}", "admin", "Remove a hold"),
    (
        "get",
        "/api/v1/fleetlock/{group}",
        "viewer",
        "FleetLock slots and holders of a group",
    ),
    (
        "delete",
        "/api/v1/fleetlock/{group}/{node}",
        "admin",
        "Free a node's reboot slot",
    ),
    ("get", "/api/v1/audit", "viewer", "Audit log, newest first"),
    (
        "get",
        "/api/v1/events",
        "viewer",
        "Fleet-wide event stream, newest first (after, limit, severity, kind, channel, group, node)",
    ),
    (
        "get",
        "/api/v1/events/live",
        "viewer",
        "Fleet-wide event stream as server-sent events: `event` (an event, its id the event id) and `missed` ({\"missed\": N}: N events passed this slow client by); same filters; after= or Last-Event-ID first replays the stored events after that id",
    ),
    (
        "get",
        "/api/v1/tokens",
        "admin",
        "List live admin and viewer tokens (all=true: also revoked and expired)",
    ),
    (
        "post",
        "/api/v1/tokens",
        "admin",
        "Create a named admin or viewer token, optionally expiring",
    ),
    (
        "delete",
        "/api/v1/tokens/{id}",
        "admin",
        "Revoke a token by id or name (never the last live admin token)",
    ),
    ("get", "/api/v1/whoami", "viewer", "The caller's own token"),
    (
        "get",
        "/api/v1/enrollment-tokens",
        "admin",
        "List live enrollment tokens (all=true: also revoked, expired and used up)",
    ),
    (
        "post",
        "/api/v1/enrollment-tokens",
        "admin",
        "Create an enrollment token for a group (optional channel, expiry, use limit)",
    ),
    (
        "delete",
        "/api/v1/enrollment-tokens/{id}",
        "admin",
        "Revoke an enrollment token by id or name; refused at once",
    ),
    (
        "get",
        "/api/v1/releases",
        "viewer",
        "Releases synced from the signed repository",
    ),
    (
        "post",
        "/api/v1/releases/flatcar",
        "admin",
        "Register a Flatcar release (payloads signed by Flatcar, outside the TUF repository)",
    ),
    (
        "post",
        "/api/v1/releases/sync",
        "admin",
        "Re-read releases from the served signed repository",
    ),
    (
        "get",
        "/api/v1/repository/files",
        "viewer",
        "Served repository files with their lengths",
    ),
    (
        "post",
        "/api/v1/uploads",
        "admin",
        "Start a publication (staging area)",
    ),
    (
        "put",
        "/api/v1/uploads/{id}/files/{path}",
        "admin",
        "Upload one metadata/ or targets/ file",
    ),
    (
        "post",
        "/api/v1/uploads/{id}/commit",
        "admin",
        "Verify the upload against the trusted root and serve it atomically",
    ),
    (
        "get",
        "/api/v1/rollouts",
        "viewer",
        "List rollouts with live counters",
    ),
    (
        "post",
        "/api/v1/rollouts",
        "admin",
        "Create a rollout of a release to a channel and group",
    ),
    ("get", "/api/v1/rollouts/{id}", "viewer", "Get a rollout"),
    (
        "patch",
        "/api/v1/rollouts/{id}",
        "admin",
        "Change a rollout's policy (ramp, caps)",
    ),
    (
        "post",
        "/api/v1/rollouts/{id}/actions",
        "admin",
        "Pause, resume, abort or revert a rollout",
    ),
    ("get", "/api/v1/openapi.json", "public", "This document"),
];

/// The document.
pub fn build() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for (method, path, role, summary) in OPERATIONS {
        let mut op = serde_json::json!({
            "summary": summary,
            "x-moho-role": role,
            "responses": {
                "2XX": {"description": "success"},
                "4XX": {"description": "refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if matches!(*role, "viewer" | "admin") {
            op["security"] = serde_json::json!([{"bearer": []}]);
        }
        let params: Vec<serde_json::Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| serde_json::json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = serde_json::Value::Array(params);
        }
        let entry = paths
            .entry((*path).to_owned())
            .or_insert_with(|| serde_json::json!({}));
        entry[*method] = op;
    }
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "Moho update server", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Node protocol, FleetLock and admin API. Bodies are described in docs/protocol.md."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}
        }
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<serde_json::Value> {
    Json(build())
}
