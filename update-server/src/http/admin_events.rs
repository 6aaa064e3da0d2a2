//! Admin API for node events: one node's events, newest first, with
//! paging (`GET /api/v1/nodes/{id}/events`), and the fleet-wide stream
//! (`GET /api/v1/events?after=`), which clients poll with the `last_id` of
//! the previous answer, or follow as server-sent events
//! (`GET /api/v1/events/live`, fed by `crate::live_events`).

use std::convert::Infallible;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use moho_protocol::admin::{
    EventPage, EventStreamQuery, EventView, List, NodeEventQuery, Role, Severity,
};
use moho_protocol::names::{check_channel, check_group, check_node_id};

use crate::error::ApiError;
use crate::http::auth::authorize;
use crate::http::body::bad_query;
use crate::live_events::Delivery;
use crate::state::AppState;
use crate::store::{EventRow, NodeRecord, StreamEvent, StreamFilter};

/// The API view of a stored event; `node` gives the channel and group.
pub fn event_view(e: EventRow, node_id: &str, node: Option<&NodeRecord>) -> EventView {
    EventView {
        id: e.id,
        node_id: node_id.to_owned(),
        at: e.at,
        received_at: e.received_at,
        severity: Severity::of(&e.kind),
        kind: e.kind,
        version: e.version,
        channel: node.map(|n| n.channel.clone()),
        group: node.map(|n| n.group.clone()),
        event: serde_json::from_str(&e.body).unwrap_or(serde_json::Value::Null),
    }
}

/// `GET /api/v1/nodes/{id}/events?limit=&before=`.
pub async fn node_events(
    State(app): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<NodeEventQuery>, QueryRejection>,
) -> Result<Json<List<EventView>>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    let Query(q) = q.map_err(bad_query)?;
    check_node_id(&id).map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    let node = app
        .db
        .node(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_node", format!("unknown node {id:?}")))?;
    let rows = app
        .db
        .node_events(&id, q.before, q.limit.unwrap_or(50).clamp(1, 1000))
        .await?;
    Ok(Json(List {
        items: rows
            .into_iter()
            .map(|e| event_view(e, &id, Some(&node)))
            .collect(),
    }))
}

/// The API view of a stream event.
pub fn stream_view(e: StreamEvent) -> EventView {
    let (channel, group) = e.scope.unzip();
    EventView {
        id: e.event.id,
        node_id: e.node_id,
        at: e.event.at,
        received_at: e.event.received_at,
        severity: Severity::of(&e.event.kind),
        kind: e.event.kind,
        version: e.event.version,
        channel,
        group,
        event: serde_json::from_str(&e.event.body).unwrap_or(serde_json::Value::Null),
    }
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_name", e.to_string())
}

/// The store filter of a stream query, its names checked.
pub fn stream_filter(q: &EventStreamQuery) -> Result<StreamFilter, ApiError> {
    if let Some(c) = &q.channel {
        check_channel(c).map_err(invalid)?;
    }
    if let Some(g) = &q.group {
        check_group(g).map_err(invalid)?;
    }
    if let Some(n) = &q.node {
        check_node_id(n).map_err(invalid)?;
    }
    if let Some(k) = &q.kind
        && (k.is_empty() || k.len() > 64 || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    {
        return Err(ApiError::bad_request(
            "invalid_value",
            format!("invalid event kind {k:?}: use e.g. rollback, installed"),
        ));
    }
    Ok(StreamFilter {
        min_severity: q.severity,
        kind: q.kind.clone(),
        channel: q.channel.clone(),
        group: q.group.clone(),
        node: q.node.clone(),
    })
}

/// `GET /api/v1/events?after=&limit=&severity=&kind=&channel=&group=&node=`.
pub async fn event_stream(
    State(app): State<AppState>,
    h: HeaderMap,
    q: Result<Query<EventStreamQuery>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    authorize(&app, &h, Role::Viewer).await?;
    let Query(q) = q.map_err(bad_query)?;
    let filter = stream_filter(&q)?;
    let page = app
        .db
        .event_stream(q.after, &filter, q.limit.unwrap_or(100).clamp(1, 1000))
        .await?;
    Ok(Json(EventPage {
        items: page.events.into_iter().map(stream_view).collect(),
        last_id: page.last_id,
        truncated: page.truncated,
    }))
}

/// The id to resume after: `after`, else the `Last-Event-ID` an
/// `EventSource` sends when it reconnects.
pub fn resume_after(after: Option<i64>, h: &HeaderMap) -> Option<i64> {
    after.or_else(|| {
        h.get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
    })
}

/// The `missed` notice: `count` events passed a client that read too
/// slowly, or, with `None`, more matched since the id it resumed after
/// than one answer carries (the oldest were left out).
fn missed(count: Option<u64>) -> Event {
    let reason = match count {
        Some(_) => {
            "this client read too slowly: events passed it by (of any kind, before filtering)"
        }
        None => {
            "more events matched since the id resumed after than one answer carries: the oldest are left out"
        }
    };
    Event::default()
        .event("missed")
        .data(serde_json::json!({"missed": count, "reason": reason}).to_string())
}

/// A server-sent event stream of `filter`'s events: when `after` is given,
/// first the stored ones after it (at most `limit`, oldest first; a
/// `missed` notice first if some were left out), then the live ones as
/// the tailer brings them (`event` rendered by `render`, its id the event
/// id), with a `missed` notice whenever the client fell behind the ring.
/// Ends when the server shuts down.
pub async fn live_stream<R>(
    app: &AppState,
    filter: StreamFilter,
    after: Option<i64>,
    limit: u32,
    render: R,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>> + use<R>>, ApiError>
where
    R: Fn(&StreamEvent) -> Event + Send + 'static,
{
    // Subscribed before the store is read: nothing falls in between.
    let mut sub = app.live.subscribe(filter.clone(), after.unwrap_or(0));
    let mut first: Vec<Event> = Vec::new();
    if let Some(after) = after {
        let page = app.db.event_stream(Some(after), &filter, limit).await?;
        sub.skip_to(page.last_id);
        if page.truncated {
            first.push(missed(None));
        }
        first.extend(page.events.iter().rev().map(&render));
    }
    let backlog = futures_util::stream::iter(first.into_iter().map(Ok));
    let live = futures_util::stream::unfold((sub, render), |(mut sub, render)| async move {
        let event = match sub.next().await? {
            Delivery::Event(e) => render(&e),
            Delivery::Missed(n) => missed(Some(n)),
        };
        Some((Ok(event), (sub, render)))
    });
    use futures_util::StreamExt;
    Ok(Sse::new(backlog.chain(live)).keep_alive(KeepAlive::default()))
}

fn api_event(e: &StreamEvent) -> Event {
    let id = e.event.id;
    let view = stream_view(e.clone());
    Event::default()
        .event("event")
        .id(id.to_string())
        .data(serde_json::to_string(&view).unwrap_or_default())
}

/// `GET /api/v1/events/live?after=&limit=&severity=&kind=&channel=&group=&node=`:
/// server-sent events `event` (an [`EventView`] as JSON, its `id` the
/// event id) and `missed` (`{"missed": N}`: N events passed this client by
/// because it read too slowly; `null`: the backlog after `after` was cut).
pub async fn event_stream_live(
    State(app): State<AppState>,
    h: HeaderMap,
    q: Result<Query<EventStreamQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    authorize(&app, &h, Role::Viewer).await?;
    let Query(q) = q.map_err(bad_query)?;
    let filter = stream_filter(&q)?;
    let after = resume_after(q.after, &h);
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(live_stream(&app, filter, after, limit, api_event)
        .await?
        .into_response())
}
