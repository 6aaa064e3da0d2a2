//! A rollout: its policy in words, status and figures against the ramp
//! target, a chart of its nodes per state over time, its audit trail, and
//! for admins the actions (pause, resume, abort, revert, change the ramp or
//! caps), each of which asks for confirmation first. With another group
//! chosen in the top bar than the rollout's, the page says so and offers
//! to show the rollout's group instead of showing it.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use moho_rollout::state::{Action, apply_action};
use serde::Deserialize;

use super::answer;
use crate::dashboard::charts::timeline as chart;
use crate::dashboard::error::DashError;
use crate::dashboard::format::{bytes, thousands, utc};
use crate::dashboard::layout::{Nav, live, page as frame};
use crate::dashboard::policy_form::PolicyFields;
use crate::dashboard::progress::Progress;
use crate::dashboard::require_user;
use crate::dashboard::session::User;
use crate::dashboard::timeline::{bucket_ms, build};
use crate::dashboard::widgets::{alert, status_badge, when};
use crate::dashboard::words::policy_in_words;
use crate::rollout_ops::action_name;
use crate::state::AppState;

/// Query of the rollout page.
#[derive(Debug, Default, Deserialize)]
pub struct RolloutQuery {
    /// `live` for the refreshed region.
    pub part: Option<String>,
    /// What was just done (shown as a confirmation).
    pub done: Option<String>,
}

/// Parses the `{id}` of a dashboard path.
pub fn rollout_id(id: Result<Path<i64>, PathRejection>) -> Result<i64, DashError> {
    id.map(|Path(id)| id)
        .map_err(|e| DashError::new(StatusCode::NOT_FOUND, e.body_text()))
}

fn action_label(a: Action) -> &'static str {
    match a {
        Action::Pause => "Pause",
        Action::Resume => "Resume",
        Action::Abort => "Abort",
        Action::Revert => "Revert",
    }
}

fn actions(user: &User, id: i64, state: &moho_rollout::RolloutState) -> Markup {
    let now = jiff::Timestamp::UNIX_EPOCH;
    let allowed: Vec<Action> = [Action::Pause, Action::Resume, Action::Abort, Action::Revert]
        .into_iter()
        .filter(|a| apply_action(*state, *a, now).is_ok())
        .collect();
    html! {
        @if user.is_admin() && !allowed.is_empty() {
            div.actions {
                @for a in allowed {
                    a.button.(if matches!(a, Action::Abort | Action::Revert) { "danger" } else { "primary" })
                        href=(format!("/ui/rollouts/{id}/confirm?action={}", action_name(a)))
                        data-action=(action_name(a)) { (action_label(a)) "…" }
                }
            }
        }
    }
}

/// `GET /ui/rollouts/{id}`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    Query(q): Query<RolloutQuery>,
) -> Result<Response, DashError> {
    let live_only = q.part.as_deref() == Some("live");
    let user = require_user(&app, &headers, live_only).await?;
    let id = rollout_id(id)?;
    let now = app.clock.now();
    let l = crate::http::admin_rollouts::live(&app, id).await?;
    let r = &l.record;
    if !user.scope.includes(&r.group) {
        let shown = user.scope.group().unwrap_or_default();
        let body = html! {
            p.lead data-out-of-scope=(r.group) {
                "Rollout #" (id) " is a rollout to group " strong { (r.group) }
                "; the dashboard shows group " strong { (shown) } " only."
            }
            div.actions {
                a.button.primary href=(format!("/ui/scope?group={}&back=/ui/rollouts/{id}", r.group)) {
                    "Show group " (r.group)
                }
            }
        };
        return Ok(answer(live_only, body.clone(), |_| {
            frame(&user, Nav::Overview, &format!("Rollout #{id}"), body)
        }));
    }
    let timeout_start = now
        .checked_sub(r.policy.update_timeout)
        .unwrap_or(jiff::Timestamp::MIN);
    let p = Progress::from_rows(&app.db.attempt_phases(id, timeout_start).await?);
    let scope = l.index.len() as u64;
    let share = r.policy.share_at(r.state.step);
    let target = share.of(scope);
    let subject = format!("rollout/{id}");
    let audit = app.db.audit_of(&subject, 500).await?;
    let buckets = app
        .db
        .attempt_buckets(id, r.created_at, bucket_ms(r.created_at, now))
        .await?;
    let (series, axis) = build(r.created_at, now, &buckets, &audit, &r.policy, scope);
    let region = live(
        now,
        html! {
            p { "Status: " (status_badge(&r.state)) " · step " (r.state.step + 1) " of "
                (r.policy.steps.len()) " at " (share) ", since " (when(now, r.state.step_started)) }
            (actions(&user, id, &r.state))
            div.figures {
                div { span.n data-figure="scope" { (thousands(scope)) } span.k { "nodes in scope" } }
                div { span.n data-figure="offered" { (thousands(p.offered)) } span.k { "offered" } }
                div { span.n data-figure="in_flight" { (thousands(p.in_flight())) } span.k { "in flight" } }
                div { span.n data-figure="healthy" { (thousands(p.healthy)) } span.k { "healthy" } }
                div { span.n data-figure="failed" { (thousands(p.failed())) } span.k { "failed" } }
                div { span.n data-figure="target" { (thousands(target)) } span.k { "ramp target" } }
            }
            (p.bar(scope, target))
            @if p.timed_out > 0 {
                (alert("bad", format!("{} node(s) stuck past the update timeout.", thousands(p.timed_out))))
            }
            h2 { "Nodes per state over time" }
            (chart(&format!("Rollout {id}: nodes per state over time"), &series, &axis))
            h2 { "Audit trail" }
            table.audit {
                thead { tr { th { "when" } th { "who" } th { "what" } } }
                tbody {
                    @for e in audit.iter().rev().take(20) {
                        tr data-audit-action=(e.action) {
                            td { (when(now, e.at)) } td { (e.actor) } td { code { (e.action) } }
                        }
                    }
                }
            }
        },
    );
    let release = app.db.release(&r.version, &r.board).await?;
    let fields = PolicyFields::of(&r.policy);
    Ok(answer(live_only, region, |region| {
        let title = format!("Rollout #{id}: {} to {}/{}", r.version, r.channel, r.group);
        frame(
            &user,
            Nav::Overview,
            &title,
            html! {
                @if let Some(done) = &q.done { (alert("ok", format!("Done: {done}."))) }
                p.muted {
                    "Release " strong { (r.version) } " for " (r.board)
                    @if let Some(size) = release.as_ref().and_then(|x| x.size) { " (" (bytes(size)) ")" }
                    ", created " (utc(r.created_at)) "."
                }
                div.two {
                    section.card {
                        h2 { "Policy" }
                        ul.policy { @for line in policy_in_words(&r.policy) { li { (line) } } }
                    }
                    @if user.is_admin() {
                        section.card {
                            h2 { "Change ramp or caps" }
                            form.edit method="get" action=(format!("/ui/rollouts/{id}/change")) {
                                (fields.inputs())
                                div { button type="submit" { "Review change…" } }
                            }
                        }
                    }
                }
                (region)
            },
        )
    }))
}
