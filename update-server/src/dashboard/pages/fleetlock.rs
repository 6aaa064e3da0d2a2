//! FleetLock: per group, its reboot slots, lease length and the nodes that
//! hold a slot now (Moho agents, Flatcar nodes and stock clients side by
//! side) with when their lease runs out; for admins, a link per holder to
//! free its slot (after a confirmation, see [`crate::dashboard::changes`]).

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;

use super::answer;
use super::groups::Done;
use crate::dashboard::changes::ChangeKind;
use crate::dashboard::error::DashError;
use crate::dashboard::format::duration;
use crate::dashboard::layout::{Nav, Part, live, page as frame};
use crate::dashboard::require_user;
use crate::dashboard::widgets::{alert, kind_badge, node_link, when};
use crate::state::AppState;

/// The confirmation page for freeing `node`'s slot (group names and node
/// ids are restricted by the protocol to URL-safe characters).
fn free_link(group: &str, node: &str) -> String {
    format!(
        "{}?group={group}&node={node}",
        ChangeKind::FreeSlot.confirm_path()
    )
}

/// `GET /ui/fleetlock`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(part): Query<Part>,
    Query(done): Query<Done>,
) -> Result<Response, DashError> {
    let user = require_user(&app, &headers, part.is_live()).await?;
    let now = app.clock.now();
    let mut groups = Vec::new();
    for g in app.db.fleetlock_groups(now).await? {
        if !user.scope.includes(&g) {
            continue;
        }
        let (slots, lease) = app.db.fleetlock_config(&g).await?;
        let holders = app.db.fleetlock_holders(&g, now).await?;
        groups.push((g, slots, lease, holders));
    }
    let region = live(
        now,
        html! {
            @if let Some(d) = &done.done { (alert("ok", format!("Done: {d}."))) }
            @for (g, slots, lease, holders) in &groups {
                section.card data-group=(g) {
                    h2 { "Group " (g) }
                    p { strong data-figure="held" { (holders.len()) } " of " (slots) " reboot slot(s) held · lease "
                        (duration(jiff::SignedDuration::from_secs(i64::try_from(*lease).unwrap_or(i64::MAX)))) }
                    @if holders.is_empty() { p.muted { "Nobody is rebooting." } } @else {
                        table { thead { tr { th { "node" } th { "updater" } th { "since" } th { "lease ends" } @if user.is_admin() { th {} } } }
                            tbody { @for h in holders {
                                tr data-holder=(h.node_id) { td { (node_link(&h.node_id)) }
                                    td { @if let Some(k) = h.kind { (kind_badge(k)) } @else { span.muted title="a FleetLock client this server knows only from its lock requests" { "stock client" } } }
                                    td { (when(now, h.acquired_at)) } td { (when(now, h.expires_at)) }
                                    @if user.is_admin() {
                                        td { a.button data-free=(h.node_id) href=(free_link(g, &h.node_id)) { "Free slot…" } }
                                    }
                                }
                            } } }
                    }
                }
            }
        },
    );
    Ok(answer(part.is_live(), region, |region| {
        frame(&user, Nav::FleetLock, "FleetLock reboot slots", region)
    }))
}
