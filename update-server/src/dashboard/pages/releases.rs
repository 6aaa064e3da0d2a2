//! Releases synced from the signed repository, and Flatcar releases
//! registered through the API (their payloads are signed by Flatcar's key,
//! outside Moho's TUF chain, which the page says): version, board, kind,
//! the channels each is signed for, its size, and the rollouts of it; for
//! admins, the form that creates a rollout (see [`crate::dashboard::changes`]).

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use moho_protocol::admin::{ReleaseKind, ReleaseView};
use moho_rollout::policy::RolloutPolicy;
use serde::Deserialize;

use super::answer;
use crate::dashboard::changes::ChangeKind;
use crate::dashboard::error::DashError;
use crate::dashboard::format::bytes;
use crate::dashboard::layout::{Nav, Part, live, page as frame};
use crate::dashboard::policy_form::PolicyFields;
use crate::dashboard::require_user;
use crate::dashboard::session::User;
use crate::dashboard::widgets::status_badge;
use crate::state::AppState;

/// `?release=board/version`: the release the rollout form starts with.
#[derive(Debug, Default, Deserialize)]
pub struct ReleasesQuery {
    /// `board/version`.
    pub release: Option<String>,
}

/// The "create a rollout" form (admins only; outside the live region, so
/// the refresh never clears what is typed).
fn rollout_form(
    user: &User,
    releases: &[ReleaseView],
    channels: &[String],
    chosen: Option<&str>,
) -> Markup {
    let offerable: Vec<&ReleaseView> = releases
        .iter()
        .filter(|r| r.present || r.kind == ReleaseKind::Flatcar)
        .collect();
    let group = user.scope.group().unwrap_or("default");
    html! {
        section.card #new-rollout {
            h2 { "Create a rollout" }
            @if offerable.is_empty() { p.muted { "No release to roll out." } } @else {
                form.edit data-change="rollout" method="get" action=(ChangeKind::Rollout.confirm_path()) {
                    label { "Release"
                        select name="release" required {
                            @for r in &offerable {
                                @let value = format!("{}/{}", r.board, r.version);
                                option value=(value) selected[chosen == Some(value.as_str())] {
                                    (r.version) " · " (r.board) " · signed for " (r.channels.join(", "))
                                }
                            }
                        }
                    }
                    label { "Channel"
                        select name="channel" required { @for c in channels { option value=(c) { (c) } } }
                    }
                    label { "Group"
                        select name="group" required {
                            @for g in &user.scope.groups { option value=(g) selected[g == group] { (g) } }
                        }
                    }
                    (PolicyFields::of(&RolloutPolicy::immediate()).inputs())
                    label { "Pause by itself above this failure % (empty: never)"
                        input type="number" min="0" max="100" step="any" name="auto_pause_percent" placeholder="10";
                    }
                    label { "…once this many attempts finished"
                        input type="number" min="1" name="auto_pause_min_sample" placeholder="20";
                    }
                    label { "Start updates only in these windows (\u{201c};\u{201d} between them; empty: any time)"
                        input type="text" name="windows" maxlength="1024"
                            placeholder="mon-fri 02:00 3h Europe/Berlin; sat,sun 00:00 1d UTC";
                    }
                    label { "Next step only when this % of the step's nodes are healthy (empty: no gate)"
                        input type="number" min="0" max="100" step="any" name="health_gate_percent" placeholder="90";
                    }
                    label { "An attempt that takes longer counts as failed (empty: 2h)"
                        input type="text" name="update_timeout" maxlength="32" placeholder="2h";
                    }
                    div { button type="submit" { "Review…" } }
                }
            }
        }
    }
}

/// `GET /ui/releases`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(part): Query<Part>,
    Query(q): Query<ReleasesQuery>,
) -> Result<Response, DashError> {
    let user = require_user(&app, &headers, part.is_live()).await?;
    let now = app.clock.now();
    let mut releases = app.db.releases().await?;
    releases.sort_by(|a, b| {
        let v = |s: &str| moho_rollout::version::parse_version(s).ok();
        (a.board.as_str(), v(&b.version)).cmp(&(b.board.as_str(), v(&a.version)))
    });
    let rollouts = app.db.rollouts().await?;
    let form = if user.is_admin() {
        let channels = app.db.channels().await?;
        rollout_form(&user, &releases, &channels, q.release.as_deref())
    } else {
        html! {}
    };
    let region = live(
        now,
        html! {
            table.releases {
                thead { tr {
                    th { "version" } th { "board" } th { "kind" } th { "signed for" } th.num { "size" }
                    th { "applies from" } th { "in repository" } th { "rollouts" }
                } }
                tbody {
                    @for r in &releases {
                        tr data-release=(r.version) {
                            td { strong { (r.version) } } td { (r.board) }
                            td data-kind=(r.kind.as_str()) { @match r.kind {
                                ReleaseKind::Moho => { "Moho image" br; span.muted { "TUF-signed" } }
                                ReleaseKind::Flatcar => { "Flatcar payload" br;
                                    span.muted title="update_engine checks the payload against the Flatcar key in the node's image; Moho's TUF repository does not cover it" {
                                        "signed by Flatcar's key, outside Moho's TUF chain" } }
                            } }
                            td { @for c in &r.channels { span.badge { (c) } } }
                            td.num { @if let Some(s) = r.size { (bytes(s)) } @else { "—" } }
                            td { (r.min_version.as_deref().unwrap_or("any version")) }
                            td { @if r.kind == ReleaseKind::Flatcar { span.muted { "registered (" a href=(r.flatcar.as_ref().map(|f| f.url.clone()).unwrap_or_default()) { "payloads" } ")" } }
                                 @else if r.present { "yes" } @else { "no (withdrawn)" } }
                            td {
                                @if user.is_admin() && (r.present || r.kind == ReleaseKind::Flatcar) {
                                    a.button data-roll-out=(r.version)
                                        href=(format!("/ui/releases?release={}/{}#new-rollout", r.board, r.version)) { "Roll out…" } br;
                                }
                                @for ro in rollouts.iter().filter(|x| x.version == r.version && x.board == r.board && user.scope.includes(&x.group)) {
                                    a href=(format!("/ui/rollouts/{}", ro.id)) { "#" (ro.id) " " (ro.channel) "/" (ro.group) }
                                    " " (status_badge(&ro.state)) br;
                                }
                            }
                        }
                    }
                }
            }
            @if releases.is_empty() { p.muted { "No release synced from the signed repository yet." } }
            @if releases.iter().any(|r| r.kind == ReleaseKind::Flatcar) {
                p.muted data-note="flatcar" { "Flatcar releases are offered only to Flatcar nodes over Omaha. Their payloads are signed by Flatcar's release key, which update_engine checks against the key in the node's image; Moho's TUF repository does not cover them." }
            }
        },
    );
    Ok(answer(part.is_live(), region, |region| {
        frame(&user, Nav::Releases, "Releases", html! { (region) (form) })
    }))
}
