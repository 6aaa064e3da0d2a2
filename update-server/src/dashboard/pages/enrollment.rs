//! Enrolment tokens: what lets a new node register in a group. Every token
//! with its group, channel, uses, expiry and whether it still works (never
//! its secret: the server keeps only a hash); for admins, the form that
//! creates one and a link per live token that revokes it (each through a
//! confirmation, see [`crate::dashboard::changes`]; the new secret is shown
//! once, on the page that answers the confirmed form). With a group chosen
//! in the top bar, only that group's tokens are listed.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use maud::{Markup, html};
use moho_protocol::admin::EnrollmentTokenView;
use moho_protocol::secret::NamedSecret;

use super::groups::Done;
use crate::dashboard::changes::ChangeKind;
use crate::dashboard::error::DashError;
use crate::dashboard::layout::{Nav, page as frame};
use crate::dashboard::require_user;
use crate::dashboard::session::User;
use crate::dashboard::widgets::{alert, when};
use crate::state::AppState;

/// Whether a token still registers nodes, and if not why: `live`,
/// `revoked`, `expired` or `used up`.
pub fn standing(t: &EnrollmentTokenView, now: Timestamp) -> &'static str {
    t.standing(now).word()
}

fn form(user: &User) -> Markup {
    let group = user.scope.group().unwrap_or_default();
    html! {
        section.card #new-enrollment-token {
            h2 { "New enrolment token" }
            form.edit data-change="enrollment-token" method="get" action=(ChangeKind::Enroll.confirm_path()) {
                label { "Name" input type="text" name="name" required maxlength="63" placeholder="rack-12"; }
                label { "Group its nodes land in"
                    input type="text" name="group" required maxlength="63" value=(group) list="enroll-groups";
                }
                datalist #enroll-groups { @for g in &user.scope.groups { option value=(g) {} } }
                label { "Channel its nodes must name (empty: any)" input type="text" name="channel" maxlength="63" placeholder="stable"; }
                label { "Works for (e.g. 7d; empty: no expiry)" input type="text" name="expires_in" value="7d" maxlength="32"; }
                label { "Nodes it may register (empty: no limit)" input type="number" min="1" name="max_uses"; }
                div { button type="submit" { "Review…" } }
            }
        }
    }
}

/// `GET /ui/enrollment`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(done): Query<Done>,
) -> Result<Response, DashError> {
    let user = require_user(&app, &headers, false).await?;
    let now = app.clock.now();
    let mut tokens: Vec<_> = app
        .db
        .enrollment_tokens(true, now)
        .await?
        .into_iter()
        .filter(|t| user.scope.includes(&t.group))
        .collect();
    // Live ones first, newest first within each.
    tokens.sort_by_key(|t| (standing(t, now) != "live", std::cmp::Reverse(t.created_at)));
    let body = html! {
        @if let Some(d) = &done.done { (alert("ok", format!("Done: {d}."))) }
        @if !app.config.open_registration {
            p.muted { "Registration is closed: a new node needs a live enrolment token for its group." }
        } @else {
            p.muted { "Registration is open (--open-registration): nodes also register without a token." }
        }
        section.card #enrollment-tokens {
            h2 { "Enrolment tokens" }
            @if tokens.is_empty() { p.muted { "None yet." } } @else {
                table.tokens {
                    thead { tr { th { "name" } th { "group" } th { "channel" } th.num { "nodes" } th { "expires" } th { "state" } th { "created" } @if user.is_admin() { th {} } } }
                    tbody { @for t in &tokens {
                        @let state = standing(t, now);
                        tr data-enrollment-token=(t.id) data-state=(state) {
                            td { strong { (t.name) } } td { (t.group) }
                            td { @if let Some(c) = &t.channel { (c) } @else { span.muted { "any" } } }
                            td.num { (t.uses) @if let Some(m) = t.max_uses { " / " (m) } }
                            td { @if let Some(at) = t.expires_at { (when(now, at)) } @else { span.muted { "never" } } }
                            td { span.badge.(if state == "live" { "ok" } else { "muted" }) { (state) } }
                            td { (when(now, t.created_at)) }
                            @if user.is_admin() {
                                td { @if t.revoked_at.is_none() {
                                    a.button data-revoke=(t.id)
                                        href=(format!("{}?token={}", ChangeKind::RevokeEnroll.confirm_path(), t.id)) { "Revoke…" }
                                } }
                            }
                        }
                    } }
                }
            }
        }
        @if user.is_admin() { (form(&user)) }
        @else { p.muted { "Your token has the viewer role: creating and revoking enrolment tokens needs an admin token." } }
    };
    Ok(frame(&user, Nav::Enrollment, "Enrolment tokens", body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_live_until_revoked_expired_or_used_up() {
        let now: Timestamp = "2026-03-02T10:00:00Z".parse().unwrap();
        let t = EnrollmentTokenView {
            id: "0123456789abcdef".into(),
            name: "rack".into(),
            group: "db".into(),
            channel: None,
            created_at: now,
            expires_at: Some(now + jiff::SignedDuration::from_hours(1)),
            max_uses: Some(2),
            uses: 1,
            revoked_at: None,
            last_used_at: None,
        };
        assert_eq!(standing(&t, now), "live");
        assert_eq!(
            standing(
                &EnrollmentTokenView {
                    uses: 2,
                    ..t.clone()
                },
                now
            ),
            "used up"
        );
        assert_eq!(
            standing(&t, now + jiff::SignedDuration::from_hours(2)),
            "expired"
        );
        assert_eq!(
            standing(
                &EnrollmentTokenView {
                    revoked_at: Some(now),
                    ..t.clone()
                },
                now
            ),
            "revoked"
        );
    }
}
