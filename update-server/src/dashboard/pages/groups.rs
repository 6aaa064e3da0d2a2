//! Channels, groups (with their FleetLock settings) and the holds and pins
//! in force, and for admins the forms that create a channel, a group or a
//! hold/pin and the links that remove a hold (each through a confirmation,
//! see [`crate::dashboard::changes`]). With a group chosen in the top bar,
//! only that group and its holds are listed (node holds always are: a
//! node's group can change). Channels and groups cannot be deleted: the
//! admin API has no such operation, since nodes and rollouts name them.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use moho_rollout::{HoldKind, HoldTarget};
use serde::Deserialize;

use crate::dashboard::changes::{ChangeKind, hold_words};
use crate::dashboard::error::DashError;
use crate::dashboard::format::duration;
use crate::dashboard::layout::{Nav, page as frame};
use crate::dashboard::require_user;
use crate::dashboard::session::User;
use crate::dashboard::widgets::{alert, node_link, when};
use crate::state::AppState;

/// `?done=` after a change.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    /// The audit action just carried out.
    pub done: Option<String>,
}

fn lease(secs: u64) -> String {
    duration(jiff::SignedDuration::from_secs(
        i64::try_from(secs).unwrap_or(i64::MAX),
    ))
}

fn forms(user: &User) -> Markup {
    let group = user.scope.group().unwrap_or_default();
    html! {
        section.card #new-channel {
            h2 { "New channel" }
            form.edit data-change="channel" method="get" action=(ChangeKind::Channel.confirm_path()) {
                label { "Name" input type="text" name="name" required maxlength="63" placeholder="edge"; }
                div { button type="submit" { "Review…" } }
            }
        }
        section.card #new-group {
            h2 { "New group" }
            form.edit data-change="group" method="get" action=(ChangeKind::Group.confirm_path()) {
                label { "Name" input type="text" name="name" required maxlength="63" placeholder="db-eu"; }
                label { "FleetLock slots (nodes rebooting at once)" input type="number" min="1" name="fleetlock_slots" value="1" required; }
                label { "Lease (e.g. 1h)" input type="text" name="fleetlock_lease" value="1h" required maxlength="32"; }
                div { button type="submit" { "Review…" } }
            }
        }
        section.card #new-hold {
            h2 { "New hold or pin" }
            form.edit data-change="hold" method="get" action=(ChangeKind::Hold.confirm_path()) {
                label { "Applies to"
                    select name="target_kind" { option value="group" selected { "group" } option value="node" { "node" } }
                }
                label { "Group name or node id"
                    input type="text" name="target" required maxlength="128" value=(group) list="group-names";
                }
                datalist #group-names { @for g in &user.scope.groups { option value=(g) {} } }
                label { "What"
                    select name="hold_type" {
                        option value="hold" selected { "hold: offer no update" }
                        option value="pin" { "pin: nothing newer than a version" }
                    }
                }
                label { "Pin version (pins only)" input type="text" name="version" maxlength="64" placeholder="1.4.2"; }
                label { "For (e.g. 12h, 7d)" input type="text" name="duration" value="7d" required maxlength="32"; }
                div { button type="submit" { "Review…" } }
            }
        }
    }
}

/// `GET /ui/groups`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(done): Query<Done>,
) -> Result<Response, DashError> {
    let user = require_user(&app, &headers, false).await?;
    let now = app.clock.now();
    let channels = app.db.channels().await?;
    let groups: Vec<_> = app
        .db
        .groups()
        .await?
        .into_iter()
        .filter(|g| user.scope.includes(&g.name))
        .collect();
    let holds: Vec<_> = app
        .db
        .holds(now)
        .await?
        .into_iter()
        .filter(|h| match &h.target {
            HoldTarget::Group(g) => user.scope.includes(g),
            HoldTarget::Node(_) => true,
        })
        .collect();
    let body = html! {
        @if let Some(d) = &done.done { (alert("ok", format!("Done: {d}."))) }
        div.two {
            section.card #channels {
                h2 { "Channels" }
                p { @for c in &channels { span.badge data-channel-name=(c) { (c) } " " } }
            }
            section.card #groups {
                h2 { "Groups" }
                table.groups {
                    thead { tr { th { "group" } th.num { "FleetLock slots" } th { "lease" } } }
                    tbody { @for g in &groups {
                        tr data-group=(g.name) {
                            td { strong { (g.name) } } td.num { (g.fleetlock_slots) } td { (lease(g.fleetlock_lease_secs)) }
                        }
                    } }
                }
            }
        }
        section.card #holds {
            h2 { "Holds and pins in force" }
            @if holds.is_empty() { p.muted { "None: every node takes what its rollouts offer." } } @else {
                table.holds {
                    thead { tr { th { "#" } th { "applies to" } th { "what" } th { "until" } @if user.is_admin() { th {} } } }
                    tbody { @for h in &holds {
                        tr data-hold=(h.id) data-type=(match h.kind { HoldKind::Hold => "hold", HoldKind::Pin { .. } => "pin" }) {
                            td { (h.id) }
                            td { @match &h.target {
                                HoldTarget::Group(g) => { "group " strong { (g) } }
                                HoldTarget::Node(n) => { "node " (node_link(n)) }
                            } }
                            td { (hold_words(&h.kind)) }
                            td { (when(now, h.until)) }
                            @if user.is_admin() {
                                td { a.button data-remove=(h.id)
                                    href=(format!("{}?hold={}", ChangeKind::Unhold.confirm_path(), h.id)) { "Remove…" } }
                            }
                        }
                    } }
                }
            }
        }
        @if user.is_admin() { div.two { (forms(&user)) } }
        @else { p.muted { "Your token has the viewer role: creating and removing needs an admin token." } }
        p.muted { "Channels and groups cannot be deleted: nodes and rollouts refer to them by name." }
    };
    Ok(frame(&user, Nav::Groups, "Channels, groups, holds and pins", body).into_response())
}
