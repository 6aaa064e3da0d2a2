//! The fleet-wide live event stream: every node's events as they arrive
//! (download, install, reboot, healthy, rollback, error, cancel), newest
//! first, filtered by severity, kind, channel and group (the top bar's group
//! scope applies). The page renders the newest rows from the store; the
//! script then follows `?part=live&after=LAST`, server-sent events of the
//! rows that arrive (filtered on the server, fanned out from one database
//! read per tick by `crate::live_events`, so a million nodes reporting cost
//! one query per tick whatever the number of open pages) and puts them on
//! top; a browser that falls behind is told how many events it missed.
//! "Pause" closes the stream and "Resume" reopens it after the last row
//! shown, which first brings what arrived meanwhile. `?part=rows&after=`
//! answers the same rows once (for scripts without `EventSource`).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use moho_protocol::admin::Severity;
use moho_protocol::names::check_channel;
use serde::Deserialize;

use crate::dashboard::error::DashError;
use crate::dashboard::layout::{Nav, page as frame};
use crate::dashboard::require_user;
use crate::dashboard::scope::Scope;
use crate::dashboard::widgets::{node_link, when};
use crate::state::AppState;
use crate::store::{StreamEvent, StreamFilter};

/// Rows on the first page and at most per poll.
pub const ROWS: u32 = 100;

/// Event types offered in the filter (others still show unfiltered).
pub const KINDS: [&str; 10] = [
    "download_started",
    "download_finished",
    "installed",
    "rebooting",
    "booted_new_version",
    "healthy",
    "trial_failed",
    "rollback",
    "cancelled",
    "error",
];

/// Query of the event stream page.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EventsQuery {
    /// Minimum severity: info, warning or error.
    pub severity: Option<String>,
    /// Event type.
    pub kind: Option<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Only events after this id (for `part=rows`).
    pub after: Option<i64>,
    /// `rows` for the rows that arrived after `after`.
    pub part: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn bad(msg: String) -> DashError {
    DashError::new(StatusCode::BAD_REQUEST, msg)
}

impl EventsQuery {
    fn filter(&self, scope: &Scope) -> Result<StreamFilter, DashError> {
        let min_severity = match given(&self.severity) {
            None => None,
            Some(s) => Some(Severity::parse(&s).ok_or_else(|| {
                bad(format!(
                    "unknown severity {s:?}: use info, warning or error"
                ))
            })?),
        };
        let kind = given(&self.kind);
        if let Some(k) = &kind
            && !KINDS.contains(&k.as_str())
        {
            return Err(bad(format!("unknown event kind {k:?}")));
        }
        let channel = given(&self.channel);
        if let Some(c) = &channel {
            check_channel(c).map_err(|e| bad(e.to_string()))?;
        }
        Ok(StreamFilter {
            min_severity,
            kind,
            channel,
            group: scope.group().map(str::to_owned),
            node: None,
        })
    }

    /// The query string of the filters (for the poll URL).
    fn filters_query(&self) -> String {
        let mut q = Vec::new();
        for (k, v) in [
            ("severity", given(&self.severity)),
            ("kind", given(&self.kind)),
            ("channel", given(&self.channel)),
        ] {
            if let Some(v) = v {
                q.push(format!("{k}={v}"));
            }
        }
        q.join("&")
    }
}

fn detail(e: &StreamEvent) -> String {
    let body: serde_json::Value = serde_json::from_str(&e.event.body).unwrap_or_default();
    let s = |k: &str| {
        body.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    match e.event.kind.as_str() {
        "error" => format!("{}: {}", s("code"), s("message")),
        "rollback" => format!(
            "{} failed, back on {}",
            s("failed_version"),
            s("booted_version")
        ),
        "trial_failed" => s("detail"),
        _ => String::new(),
    }
}

/// One row of the stream.
fn row(now: jiff::Timestamp, e: &StreamEvent) -> Markup {
    let sev = Severity::of(&e.event.kind);
    let (channel, group) = e
        .scope
        .clone()
        .unwrap_or_else(|| ("-".to_owned(), "-".to_owned()));
    html! {
        tr.(format!("sev-{}", sev.as_str())) data-event=(e.event.id) data-kind=(e.event.kind)
            data-severity=(sev.as_str()) data-node=(e.node_id) {
            td { (when(now, e.event.received_at)) }
            td { span.badge.(format!("sev-{}", sev.as_str())) { (sev.as_str()) } }
            td { (node_link(&e.node_id)) @if let Some(h) = &e.hostname { br; span.muted { (h) } } }
            td { (channel) } td { (group) }
            td.mono { (e.event.kind) }
            td.mono { (e.event.version.as_deref().unwrap_or("")) }
            td { (detail(e)) }
        }
    }
}

fn select(name: &str, label: &str, current: Option<&str>, options: &[(&str, &str)]) -> Markup {
    html! {
        label { (label) " "
            select name=(name) {
                option value="" { "all" }
                @for (value, text) in options {
                    option value=(value) selected[current == Some(*value)] { (text) }
                }
            }
        }
    }
}

/// `GET /ui/events`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Response, DashError> {
    let rows_only = q.part.as_deref() == Some("rows");
    let live = q.part.as_deref() == Some("live");
    let user = require_user(&app, &headers, rows_only || live).await?;
    let filter = q.filter(&user.scope)?;
    let now = app.clock.now();
    if live {
        let clock = app.clock.clone();
        let after = crate::http::admin_events::resume_after(q.after, &headers);
        let stream = crate::http::admin_events::live_stream(&app, filter, after, ROWS, move |e| {
            axum::response::sse::Event::default()
                .event("row")
                .id(e.event.id.to_string())
                .data(row(clock.now(), e).into_string())
        })
        .await
        .map_err(DashError::from)?;
        return Ok(stream.into_response());
    }
    let page = app
        .db
        .event_stream(if rows_only { q.after } else { None }, &filter, ROWS)
        .await?;
    let rows = html! {
        tbody data-last=(page.last_id) data-truncated=(page.truncated) {
            @for e in &page.events { (row(now, e)) }
        }
    };
    if rows_only {
        return Ok(rows.into_response());
    }
    let channels: Vec<String> = app.db.channels().await?;
    let channel_options: Vec<(&str, &str)> =
        channels.iter().map(|c| (c.as_str(), c.as_str())).collect();
    let kind_options: Vec<(&str, &str)> = KINDS.iter().map(|k| (*k, *k)).collect();
    let poll = format!("/ui/events?part=live&{}", q.filters_query());
    let body = html! {
        form.filters method="get" action="/ui/events" {
            (select("severity", "severity at least", given(&q.severity).as_deref(),
                &[("warning", "warning"), ("error", "error")]))
            (select("kind", "kind", given(&q.kind).as_deref(), &kind_options))
            (select("channel", "channel", given(&q.channel).as_deref(), &channel_options))
            button type="submit" { "Filter" }
            @if let Some(g) = user.scope.group() { span.muted { " · group " strong { (g) } " (top bar)" } }
        }
        div.stream-controls {
            button #stream-toggle type="button" data-state="live" { "Pause" }
            " "
            span #stream-status role="status" { "Live: new events appear at the top." }
        }
        p #stream-missed .alert role="status" hidden { }
        table #events data-stream=(poll) data-after=(page.last_id) {
            thead { tr {
                th { "received" } th { "severity" } th { "node" } th { "channel" } th { "group" }
                th { "event" } th { "version" } th { "detail" }
            } }
            (rows)
        }
        @if page.events.is_empty() { p #no-events .muted { "No matching event yet." } }
        @if page.truncated { p.muted { "Older events are not shown here; see a node's page for its history." } }
    };
    Ok(frame(&user, Nav::Events, "Live events", body).into_response())
}
