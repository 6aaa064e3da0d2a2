//! One node: what it runs and from which slot, the versions it fell back
//! from (its deny list), holds, its FleetLock lease, its attempts at
//! rollouts, and its event history newest first. Every string here came
//! from the node and is escaped by the template engine.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use moho_protocol::admin::NodeKind;
use moho_protocol::node::{Event, EventKind};
use moho_rollout::HoldTarget;
use serde::Deserialize;

use super::answer;
use crate::dashboard::error::DashError;
use crate::dashboard::layout::{Nav, live, page as frame};
use crate::dashboard::require_user;
use crate::dashboard::widgets::{kind_badge, when};
use crate::state::AppState;
use crate::store::EventRow;

/// Events per page.
const EVENTS: u32 = 50;

/// Query of the node page.
#[derive(Debug, Default, Deserialize)]
pub struct NodeQuery {
    /// Events older than this id.
    pub before: Option<i64>,
    /// `live` for the refreshed region.
    pub part: Option<String>,
}

/// What an event says beyond its type.
fn detail(e: &EventRow) -> String {
    match serde_json::from_str::<Event>(&e.body).map(|ev| ev.kind) {
        Ok(EventKind::Rollback {
            failed_version,
            booted_version,
            reason,
        }) => match reason {
            Some(r) => format!("{failed_version} failed; fell back to {booted_version}: {r}"),
            None => format!("{failed_version} failed; fell back to {booted_version}"),
        },
        Ok(EventKind::Error { code, message, .. }) => format!("{code}: {message}"),
        Ok(other) => other.version().unwrap_or_default().to_owned(),
        Err(_) => e.body.clone(),
    }
}

/// `GET /ui/nodes/{id}`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<NodeQuery>,
) -> Result<Response, DashError> {
    let live_only = q.part.as_deref() == Some("live");
    let user = require_user(&app, &headers, live_only).await?;
    let now = app.clock.now();
    let node = app
        .db
        .node(&id)
        .await?
        .ok_or_else(|| DashError::new(StatusCode::NOT_FOUND, format!("unknown node {id:?}")))?;
    let events = app.db.node_events(&id, q.before, EVENTS).await?;
    let denied = app.db.rolled_back_versions(&id).await?;
    let attempts = app.db.node_attempts(&id).await?;
    let holds: Vec<_> = app
        .db
        .holds(now)
        .await?
        .into_iter()
        .filter(|h| match &h.target {
            HoldTarget::Node(n) => n == &id,
            HoldTarget::Group(g) => g == &node.group,
        })
        .collect();
    let lease = app
        .db
        .fleetlock_holders(&node.group, now)
        .await?
        .into_iter()
        .find(|l| l.node_id == id);
    let older = (events.len() == EVENTS as usize)
        .then(|| {
            events
                .last()
                .map(|e| format!("/ui/nodes/{id}?before={}", e.id))
        })
        .flatten();
    let region = live(
        now,
        html! {
            div.two {
                section.card {
                    h2 { "Node" }
                    table.facts { tbody {
                        tr { th { "id" } td.mono data-fact="id" { (node.id) } }
                        tr { th { "updater" } td data-fact="kind" { (kind_badge(node.kind))
                            @if node.kind == NodeKind::Flatcar {
                                " " span.muted { "update_engine over Omaha: its reports are unsigned, so they can pause a rollout but never advance a health-gated one; a revert cannot send it back (Omaha cannot switch partitions)" }
                            } } }
                        @if let Some(o) = &node.omaha {
                            tr { th { "Omaha" } td data-fact="omaha" {
                                "track " code { (o.track) }
                                @if let Some(oem) = &o.oem { " · OEM " (oem) @if let Some(v) = &o.oem_version { " " (v) } }
                                @if let Some(u) = &o.updater { " · " (u) }
                            } }
                        }
                        tr { th { "host name" } td data-fact="hostname" { (node.hostname) } }
                        tr { th { "channel / group" } td { (node.channel) " / " (node.group) } }
                        tr { th { "board" } td data-fact="board" { (node.board) } }
                        tr { th { "booted version" } td data-fact="version" { (node.version) } }
                        tr { th { "booted slot" } td data-fact="slot" {
                            @if node.slot.is_empty() { span.muted { "not reported" } } @else { (node.slot.to_uppercase()) } } }
                        tr { th { "other slot" } td data-fact="fallback" {
                            @if let Some(v) = &node.fallback_version { (v) } @else { span.muted { "no bootable image reported" } } } }
                        tr { th { "agent state" } td data-fact="state" { (node.state) } }
                        tr { th { "last seen" } td { (when(now, node.last_seen)) } }
                        tr { th { "registered" } td { (when(now, node.registered_at)) } }
                        tr { th { "FleetLock" } td {
                            @if let Some(l) = &lease { "holds a reboot slot until " (when(now, l.expires_at)) }
                            @else { span.muted { "no reboot slot held" } } } }
                    } }
                }
                section.card {
                    h2 { "Deny list" }
                    p.muted { "Versions this node fell back from (from its rollback reports); it never tries them again." }
                    @if denied.is_empty() { p data-deny="none" { "None." } }
                    ul.deny { @for v in &denied { li data-deny=(v) { (v) } } }
                    h2 { "Holds" }
                    @if holds.is_empty() { p.muted { "No hold or pin applies." } }
                    ul { @for h in &holds {
                        li { (serde_json::to_string(&h.kind).unwrap_or_default()) " on "
                            (serde_json::to_string(&h.target).unwrap_or_default()) " until " (when(now, h.until)) }
                    } }
                    h2 { "Attempts" }
                    @if attempts.is_empty() { p.muted { "Never offered a release." } }
                    ul { @for a in &attempts {
                        li { a href=(format!("/ui/rollouts/{}", a.rollout_id)) { "rollout #" (a.rollout_id) }
                            ": " (a.version) " — " (a.phase.as_str()) " (" (a.status.as_str()) "), offered "
                            (when(now, a.started_at)) }
                    } }
                }
            }
            h2 { "Events" }
            table.events {
                thead { tr { th { "when (node clock)" } th { "received" } th { "event" } th { "detail" } } }
                tbody {
                    @for e in &events {
                        tr data-event=(e.kind) {
                            td { (when(now, e.at)) } td { (when(now, e.received_at)) }
                            td { code { (e.kind) } } td.detail { (detail(e)) }
                        }
                    }
                }
            }
            @if events.is_empty() { p.muted { "No events reported." } }
            div.pager {
                @if q.before.is_some() { a href=(format!("/ui/nodes/{id}")) { "← Newest" } }
                @if let Some(o) = &older { a href=(o) { "Older →" } }
            }
        },
    );
    Ok(answer(live_only, region, |region| {
        frame(&user, Nav::Nodes, &format!("Node {id}"), region)
    }))
}
