//! The audit log, newest first, paged by entry id: who changed what and
//! when, with the object before and after. With a group chosen in the top
//! bar, only the entries that concern it ([`concerns`]): its rollouts,
//! nodes, holds, FleetLock slots and enrolment tokens, and the group
//! itself; server-wide changes (releases, re-signing, admin tokens,
//! channels) are listed under "all groups" only.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;
use moho_protocol::admin::AuditEntry;
use serde::Deserialize;
use serde_json::Value;

use super::answer;
use crate::dashboard::error::DashError;
use crate::dashboard::format::utc;
use crate::dashboard::layout::{Nav, live, page as frame};
use crate::dashboard::require_user;
use crate::dashboard::widgets::subject_link;
use crate::state::AppState;

/// Entries per page.
const PAGE: u32 = 50;

/// Entries read per query while looking for a group's (scoped pages).
const BATCH: u32 = 500;

/// Most entries read for one scoped page; the page then links on from
/// where it stopped.
const SCAN: usize = 10_000;

/// Whether an object of an entry names `group`: its `group` field, or a
/// hold's group target.
fn names_group(v: Option<&Value>, group: &str) -> bool {
    let Some(v) = v else { return false };
    v.get("group").and_then(Value::as_str) == Some(group)
        || (v["target"]["kind"] == "group" && v["target"]["name"].as_str() == Some(group))
}

/// Whether audit entry `e` concerns `group`: the group itself, one of its
/// FleetLock slots, a rollout to it (`rollouts`: rollout id → group), or
/// an object before or after that names it (nodes, holds, enrolment
/// tokens, a rollout's creation).
pub fn concerns(e: &AuditEntry, group: &str, rollouts: &HashMap<i64, String>) -> bool {
    if let Some(id) = e.subject.strip_prefix("rollout/")
        && let Ok(id) = id.parse::<i64>()
        && let Some(g) = rollouts.get(&id)
    {
        return g == group;
    }
    if e.subject.strip_prefix("group/") == Some(group)
        || e.subject
            .strip_prefix("fleetlock/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(g, _)| g == group)
    {
        return true;
    }
    names_group(e.before.as_ref(), group) || names_group(e.after.as_ref(), group)
}

/// Query of the audit page.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// Entries older than this id.
    pub before: Option<i64>,
    /// `live` for the refreshed region.
    pub part: Option<String>,
}

fn json(v: Option<&Value>) -> String {
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
    let (entries, older) = match user.scope.group() {
        None => {
            let entries = app.db.audit_page(q.before, PAGE).await?;
            let older = (entries.len() == PAGE as usize)
                .then(|| entries.last().map(|e| e.id))
                .flatten();
            (entries, older)
        }
        Some(group) => {
            let rollouts: HashMap<i64, String> = app
                .db
                .rollouts()
                .await?
                .into_iter()
                .map(|r| (r.id, r.group))
                .collect();
            let mut found = Vec::new();
            let mut before = q.before;
            let mut scanned = 0;
            let mut more = true;
            while found.len() < PAGE as usize && more && scanned < SCAN {
                let batch = app.db.audit_page(before, BATCH).await?;
                more = batch.len() == BATCH as usize;
                for e in batch {
                    scanned += 1;
                    before = Some(e.id);
                    if concerns(&e, group, &rollouts) {
                        found.push(e);
                        if found.len() == PAGE as usize {
                            break;
                        }
                    }
                }
            }
            let older = (more || found.len() == PAGE as usize)
                .then_some(before)
                .flatten();
            (found, older)
        }
    };
    let older = older.map(|id| format!("/ui/audit?before={id}"));
    let region = live(
        now,
        html! {
            @if let Some(g) = user.scope.group() {
                p.muted { "Changes that concern group " strong { (g) } ": its rollouts, nodes, holds, FleetLock slots and enrolment tokens. \
                    Server-wide changes (releases, re-signing, admin tokens, channels) are listed under all groups." }
            }
            @if entries.is_empty() { p.muted data-empty="audit" { "No entries." } }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(subject: &str, after: Value) -> AuditEntry {
        AuditEntry {
            id: 1,
            at: "2026-03-02T10:00:00Z".parse().unwrap(),
            actor: "alice".into(),
            action: "x".into(),
            subject: subject.into(),
            before: None,
            after: Some(after),
        }
    }

    #[test]
    fn an_entry_concerns_the_group_it_names() {
        let rollouts = HashMap::from([(7, "db".to_owned()), (8, "web".to_owned())]);
        let db = |e: &AuditEntry| concerns(e, "db", &rollouts);
        assert!(db(&entry("rollout/7", serde_json::json!({"step": 1}))));
        assert!(!db(&entry("rollout/8", serde_json::json!({"group": "db"}))));
        assert!(db(&entry("group/db", Value::Null)));
        assert!(!db(&entry("group/dbx", Value::Null)));
        assert!(db(&entry("fleetlock/db/n1", Value::Null)));
        assert!(!db(&entry("fleetlock/web/n1", Value::Null)));
        assert!(db(&entry("node/n1", serde_json::json!({"group": "db"}))));
        assert!(db(&entry(
            "hold/3",
            serde_json::json!({"target": {"kind": "group", "name": "db"}})
        )));
        assert!(!db(&entry(
            "hold/4",
            serde_json::json!({"target": {"kind": "node", "name": "db"}})
        )));
        assert!(db(&entry(
            "enrollment_token/ab",
            serde_json::json!({"group": "db"})
        )));
        assert!(!db(&entry(
            "releases",
            serde_json::json!([{"version": "1.1.0"}])
        )));
    }
}
