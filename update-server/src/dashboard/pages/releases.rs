//! Releases synced from the signed repository: version, board, the channels
//! each is signed for, its image size, and the rollouts of it.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;

use super::answer;
use crate::app::AppState;
use crate::dashboard::error::DashError;
use crate::dashboard::format::bytes;
use crate::dashboard::layout::{Nav, Part, live, page as frame};
use crate::dashboard::require_user;
use crate::dashboard::widgets::status_badge;

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
                    th { "version" } th { "board" } th { "signed for" } th.num { "size" }
                    th { "applies from" } th { "in repository" } th { "rollouts" }
                } }
                tbody {
                    @for r in &releases {
                        tr data-release=(r.version) {
                            td { strong { (r.version) } } td { (r.board) }
                            td { @for c in &r.channels { span.badge { (c) } } }
                            td.num { @if let Some(s) = r.size { (bytes(s)) } @else { "—" } }
                            td { (r.min_version.as_deref().unwrap_or("any version")) }
                            td { @if r.present { "yes" } @else { "no (withdrawn)" } }
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
        },
    );
    Ok(answer(part.is_live(), region, |region| {
        frame(&user, Nav::Releases, "Releases", region)
    }))
}
