//! Releases synced from the signed repository, and Flatcar releases
//! registered through the API (their payloads are signed by Flatcar's key,
//! outside Moho's TUF chain, which the page says): version, board, kind,
//! the channels each is signed for, its size, and the rollouts of it.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;
use moho_protocol::admin::ReleaseKind;

use super::answer;
use crate::dashboard::error::DashError;
use crate::dashboard::format::bytes;
use crate::dashboard::layout::{Nav, Part, live, page as frame};
use crate::dashboard::require_user;
use crate::dashboard::widgets::status_badge;
use crate::state::AppState;

/// `GET /ui/releases`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(part): Query<Part>,
) -> Result<Response, DashError> {
    let user = require_user(&app, &headers, part.is_live()).await?;
    let now = app.clock.now();
    let mut releases = app.db.releases().await?;
    releases.sort_by(|a, b| {
        let v = |s: &str| moho_rollout::version::parse_version(s).ok();
        (a.board.as_str(), v(&b.version)).cmp(&(b.board.as_str(), v(&a.version)))
    });
    let rollouts = app.db.rollouts().await?;
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
                                @for ro in rollouts.iter().filter(|x| x.version == r.version && x.board == r.board) {
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
        frame(&user, Nav::Releases, "Releases", region)
    }))
}
