//! Changing a rollout from the dashboard: every action first shows a
//! confirmation page (what will happen, a form with the CSRF secret), then
//! the form posts it. Only admins see these pages and only their posts are
//! carried out; the change itself goes through [`crate::rollout_ops`], the
//! same code as the admin API, and lands in the audit log.

use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use moho_rollout::state::{Action, apply_action};
use serde::Deserialize;

use super::error::DashError;
use super::layout::{Nav, page};
use super::pages::rollout::rollout_id;
use super::policy_form::PolicyFields;
use super::words::policy_in_words;
use super::{require_admin_form, require_user};
use crate::rollout_ops::{act, action_name, change_policy, parse_action};
use crate::state::AppState;
use crate::store::RolloutRecord;

/// `?action=` of the confirmation page.
#[derive(Debug, Deserialize)]
pub struct ActionQuery {
    /// pause, resume, abort or revert.
    #[serde(default)]
    pub action: String,
}

/// The posted action.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    /// pause, resume, abort or revert.
    #[serde(default)]
    pub action: String,
    /// The session's CSRF secret.
    #[serde(default)]
    pub csrf: String,
}

/// The posted policy change.
#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    /// The fields.
    #[serde(flatten)]
    pub fields: PolicyFields,
    /// The session's CSRF secret.
    #[serde(default)]
    pub csrf: String,
}

fn bad_form(e: FormRejection) -> DashError {
    DashError::new(StatusCode::BAD_REQUEST, e.body_text())
}

fn action(s: &str) -> Result<Action, DashError> {
    parse_action(s).ok_or_else(|| {
        DashError::new(
            StatusCode::BAD_REQUEST,
            format!("unknown action {s:?}: use pause, resume, abort or revert"),
        )
    })
}

async fn rollout(app: &AppState, id: i64) -> Result<RolloutRecord, DashError> {
    app.db
        .rollout(id)
        .await?
        .ok_or_else(|| DashError::new(StatusCode::NOT_FOUND, format!("unknown rollout {id}")))
}

fn consequence(a: Action, r: &RolloutRecord) -> String {
    match a {
        Action::Pause => format!(
            "No node is offered {} while the rollout is paused. Nodes already updating finish.",
            r.version
        ),
        Action::Resume => format!(
            "Nodes are offered {} again; the current step's hold time starts over.",
            r.version
        ),
        Action::Abort => format!(
            "The rollout stops for good: no node is offered {} any more. Nodes that already run it keep it.",
            r.version
        ),
        Action::Revert => format!(
            "Every node of {}/{} that runs {} is told to boot back into its previous slot. This cannot be undone.",
            r.channel, r.group, r.version
        ),
    }
}

/// `GET /ui/rollouts/{id}/confirm?action=...`.
pub async fn confirm_action(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    Query(q): Query<ActionQuery>,
) -> Result<Response, DashError> {
    let user = require_user(&app, &headers, false).await?;
    if !user.is_admin() {
        return Err(DashError::viewer());
    }
    let id = rollout_id(id)?;
    let a = action(&q.action)?;
    let r = rollout(&app, id).await?;
    apply_action(r.state, a, app.clock.now())
        .map_err(|e| DashError::new(StatusCode::CONFLICT, e.to_string()))?;
    let name = action_name(a);
    let title = format!("{} rollout #{id} of {}?", capitalised(name), r.version);
    let body = html! {
        p.lead { (consequence(a, &r)) }
        p { "The change is recorded in the audit log under your name, " strong { (user.name) } "." }
        form.confirm method="post" action=(format!("/ui/rollouts/{id}/action")) {
            input type="hidden" name="action" value=(name);
            input type="hidden" name="csrf" value=(user.csrf);
            div.actions {
                button.(if matches!(a, Action::Abort | Action::Revert) { "danger" } else { "primary" })
                    type="submit" data-confirm=(name) { "Yes, " (name) " the rollout" }
                a.button href=(format!("/ui/rollouts/{id}")) { "Cancel" }
            }
        }
    };
    Ok(page(&user, Nav::Overview, &title, body).into_response())
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `POST /ui/rollouts/{id}/action`.
pub async fn do_action(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Response, DashError> {
    let Form(f) = form.map_err(bad_form)?;
    let user = require_admin_form(&app, &headers, &f.csrf).await?;
    let id = rollout_id(id)?;
    let a = action(&f.action)?;
    act(&app, &user.name, id, a).await?;
    Ok(Redirect::to(&format!("/ui/rollouts/{id}?done={}", action_name(a))).into_response())
}

/// `GET /ui/rollouts/{id}/change?ramp=...`: the change in words, to confirm.
pub async fn confirm_policy(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    Query(fields): Query<PolicyFields>,
) -> Result<Response, DashError> {
    let user = require_user(&app, &headers, false).await?;
    if !user.is_admin() {
        return Err(DashError::viewer());
    }
    let id = rollout_id(id)?;
    let r = rollout(&app, id).await?;
    let next = fields
        .apply(&r.policy)
        .map_err(|e| DashError::new(StatusCode::BAD_REQUEST, e))?;
    let title = format!("Change the policy of rollout #{id}?");
    let body = html! {
        div.two {
            section.card { h2 { "Now" } ul { @for l in policy_in_words(&r.policy) { li { (l) } } } }
            section.card { h2 { "After the change" } ul { @for l in policy_in_words(&next) { li { (l) } } } }
        }
        p { "The rollout keeps its current step. The change is recorded in the audit log under your name, "
            strong { (user.name) } "." }
        form.confirm method="post" action=(format!("/ui/rollouts/{id}/policy")) {
            (fields.hidden())
            input type="hidden" name="csrf" value=(user.csrf);
            div.actions {
                button.primary type="submit" data-confirm="policy" { "Yes, change the policy" }
                a.button href=(format!("/ui/rollouts/{id}")) { "Cancel" }
            }
        }
    };
    Ok(page(&user, Nav::Overview, &title, body).into_response())
}

/// `POST /ui/rollouts/{id}/policy`.
pub async fn do_policy(
    State(app): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    form: Result<Form<PolicyForm>, FormRejection>,
) -> Result<Response, DashError> {
    let Form(f) = form.map_err(bad_form)?;
    let user = require_admin_form(&app, &headers, &f.csrf).await?;
    let id = rollout_id(id)?;
    let r = rollout(&app, id).await?;
    let next = f
        .fields
        .apply(&r.policy)
        .map_err(|e| DashError::new(StatusCode::BAD_REQUEST, e))?;
    change_policy(&app, &user.name, id, next).await?;
    Ok(Redirect::to(&format!("/ui/rollouts/{id}?done=policy")).into_response())
}
