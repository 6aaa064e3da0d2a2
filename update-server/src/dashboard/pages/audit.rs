//! The audit log, newest first, paged by entry id: who changed what and
//! when, with the object before and after.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::answer;
use crate::dashboard::error::DashError;
use crate::dashboard::format::utc;
use crate::dashboard::layout::{Nav, live, page as frame};
use crate::dashboard::require_user;
use crate::dashboard::widgets::subject_link;
use crate::state::AppState;

/// Entries per page.
const PAGE: u32 = 50;

/// Query of the audit page.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// Entries older than this id.
    pub before: Option<i64>,
    /// `live` for the refreshed region.
    pub part: Option<String>,
}

fn json(v: Option<&serde_json::Value>) -> String {
    v.map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
        .unwrap_or_else(|| "—".to_owned())
}

/// `GET /ui/audit`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Response, DashError> {
    let live_only = q.part.as_deref() == Some("live");
    let user = require_user(&app, &headers, live_only).await?;
    let now = app.clock.now();
    let entries = app.db.audit_page(q.before, PAGE).await?;
    let older = (entries.len() == PAGE as usize)
        .then(|| entries.last().map(|e| format!("/ui/audit?before={}", e.id)))
        .flatten();
    let region = live(
        now,
        html! {
            table.audit {
                thead { tr { th { "#" } th { "when" } th { "who" } th { "what" } th { "subject" } th { "change" } } }
                tbody {
                    @for e in &entries {
                        tr data-audit=(e.id) data-action=(e.action) data-actor=(e.actor) {
                            td.num { (e.id) } td { (utc(e.at)) } td { (e.actor) }
                            td { code { (e.action) } } td { (subject_link(&e.subject)) }
                            td { details { summary { "before / after" }
                                pre { (json(e.before.as_ref())) } pre { (json(e.after.as_ref())) } } }
                        }
                    }
                }
            }
            div.pager {
                @if q.before.is_some() { a href="/ui/audit" { "← Newest" } }
                @if let Some(o) = &older { a href=(o) { "Older →" } }
            }
        },
    );
    Ok(answer(live_only, region, |region| {
        frame(&user, Nav::Audit, "Audit log", region)
    }))
}
