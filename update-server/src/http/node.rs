//! The node protocol endpoints: `POST /v1/check-in` and `POST /v1/events`,
//! both signed by the node's ed25519 key (see `moho_protocol::signing`).
//! Every check happens before anything is stored. A known node's check-in
//! that reports what is stored is accepted from the hot state in memory
//! and written behind (`store/hot.rs`, `store/batch.rs`); a report is
//! answered once stored.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use moho_protocol::names::{
    check_board, check_channel, check_group, check_hostname, check_node_id, check_version,
};
use moho_protocol::node::{
    AgentState, CheckIn, CheckInResponse, EventReport, MAX_EVENTS_PER_REPORT,
};
use moho_protocol::signing::{RequestSignature, verify_request};

use crate::enrollment::{self, Admission};
use crate::error::ApiError;
use crate::http::body::{parse_json, read_limited};
use crate::http::limits::{Limited, Source};
use crate::offer;
use crate::state::AppState;
use crate::store::Admission as Memory;
use crate::store::hot::{canonical_key, key_text};
use crate::store::{
    EnrollmentUse, EventWrite, NodeRecord, NodeUpsert, Phase, Registration, ReportWrite, StoreError,
};

use moho_protocol::node::{CHECK_IN_PATH, EVENTS_PATH};

fn signature(headers: &HeaderMap) -> Result<RequestSignature, ApiError> {
    RequestSignature::from_headers(|name| headers.get(name).and_then(|v| v.to_str().ok()))
        .map_err(|e| ApiError::unauthorized("bad_signature", e.to_string()))
}

fn bad_name(e: moho_protocol::names::NameError) -> ApiError {
    ApiError::bad_request("invalid_name", e.to_string())
}

/// A name refused, blaming `field`.
fn bad_field(field: &'static str) -> impl Fn(moho_protocol::names::NameError) -> ApiError {
    move |e| bad_name(e).field(field)
}

/// A reported version refused, blaming `field`.
fn bad_version(field: &'static str) -> impl Fn(moho_protocol::names::NameError) -> ApiError {
    move |e| ApiError::bad_request("invalid_version", e.to_string()).field(field)
}

/// Everything a check-in names that ends up stored (and in `/metrics`
/// labels): checked before anything is written.
fn check_check_in(req: &CheckIn) -> Result<(), ApiError> {
    check_channel(&req.channel).map_err(bad_field("channel"))?;
    check_group(&req.group).map_err(bad_field("group"))?;
    check_board(&req.board).map_err(bad_field("board"))?;
    if let Some(h) = &req.hostname {
        check_hostname(h).map_err(bad_field("hostname"))?;
    }
    check_version("booted.version", &req.booted.version).map_err(bad_version("booted.version"))?;
    if let Some(v) = &req.fallback_version {
        check_version("fallback_version", v).map_err(bad_version("fallback_version"))?;
    }
    if let Some(v) = &req.staged_version {
        check_version("staged_version", v).map_err(bad_version("staged_version"))?;
    }
    Ok(())
}

fn repository_url(app: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &app.config.repo_url {
        return url.clone();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if app.config.tls { "https" } else { "http" };
    format!("{scheme}://{host}/repo")
}

/// A first check-in that may not register its node: 403 with the reason.
fn refused(r: enrollment::Refusal) -> ApiError {
    ApiError::forbidden(r.code(), r.message())
}

/// A node pinned to `pin` by its enrolment token names another scope: it
/// moves only through the gate a new node would pass there (a live token
/// for it, the server-wide token, open registration), audited as
/// `node.move`; else refused, nothing stored.
async fn readmit(
    app: &AppState,
    req: &CheckIn,
    pin: &crate::store::Pin,
    now: jiff::Timestamp,
) -> Result<(), ApiError> {
    let refuse = |why: String| {
        ApiError::forbidden(
            "enrolled_elsewhere",
            format!(
                "node {:?} was enrolled in group {:?}{} and the check-in names channel {:?}, group {:?}: \
                 moving it needs what registering a new node there needs ({why}); \
                 or set its group back, or delete the node so that it registers again",
                req.node_id,
                pin.group,
                pin.channel
                    .as_ref()
                    .map(|c| format!(" in channel {c:?}"))
                    .unwrap_or_default(),
                req.channel,
                req.group,
            ),
        )
    };
    let admission = enrollment::admit(
        &app.db,
        app.config.open_registration,
        app.config.enrollment_token.as_deref(),
        req.enrollment_token.as_deref(),
        &req.channel,
        &req.group,
        now,
    )
    .await?
    .map_err(|r| refuse(r.message()))?;
    let moved = match &admission {
        Admission::Free => {
            let actor = if req.enrollment_token.is_some() {
                "enrollment:server-token"
            } else {
                "enrollment:open"
            };
            app.db
                .move_enrolled_node(&req.node_id, pin, None, actor, now)
                .await?
        }
        Admission::Token { token, hash } => {
            app.db
                .move_enrolled_node(
                    &req.node_id,
                    pin,
                    Some((token, hash)),
                    &format!("enrollment:{}", token.name),
                    now,
                )
                .await?
        }
    };
    if !moved {
        return Err(refuse(
            "the enrollment token stopped being live meanwhile".to_owned(),
        ));
    }
    Ok(())
}

fn replayed(counter: u64, node: &str) -> ApiError {
    ApiError::conflict(
        "replayed_request",
        format!("counter {counter} is not above the last one accepted from node {node:?}"),
    )
}

/// `POST /v1/check-in`.
pub async fn check_in(
    State(app): State<AppState>,
    source: Source,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CheckInResponse>, ApiError> {
    let sig = signature(&headers)?;
    let bytes = read_limited(body, app.config.max_node_body).await?;
    let req: CheckIn = parse_json(&bytes)?;
    check_node_id(&req.node_id).map_err(bad_field("node_id"))?;
    if sig.node_id != req.node_id {
        return Err(ApiError::bad_request(
            "node_id_mismatch",
            format!(
                "header names node {:?} but the body names {:?}",
                sig.node_id, req.node_id
            ),
        ));
    }
    let key = app
        .keys
        .decode(&req.public_key)
        .map_err(|e| ApiError::bad_request("bad_public_key", e.to_string()))?;
    verify_request(&key, "POST", CHECK_IN_PATH, &sig, &bytes)
        .map_err(|e| ApiError::unauthorized("bad_signature", e.to_string()))?;
    check_check_in(&req)?;
    let now = app.clock.now();
    let names = app.caches.names(&app.db, &app.config, now).await?;
    if !names.channels.contains(&req.channel) {
        return Err(ApiError::unprocessable(
            "unknown_channel",
            format!("unknown channel {:?}", req.channel),
        ));
    }
    if !names.groups.contains(&req.group) {
        return Err(ApiError::unprocessable(
            "unknown_group",
            format!("unknown group {:?}", req.group),
        ));
    }
    let upsert = NodeUpsert {
        id: &req.node_id,
        public_key: &req.public_key,
        channel: &req.channel,
        group: &req.group,
        board: &req.board,
        version: &req.booted.version,
        slot: match req.booted.slot {
            moho_protocol::node::Slot::A => "a",
            moho_protocol::node::Slot::B => "b",
        },
        state: req.state.as_str(),
        hostname: req.hostname.as_deref().unwrap_or_default(),
        fallback_version: req.fallback_version.as_deref(),
    };
    // Common case first: a node held in memory that reports what is stored,
    // with a fresh counter, is accepted at once and written behind. Else a
    // known node with its key and a fresh counter is one conditional
    // UPDATE; only when it changes nothing do we look why.
    let facts = app.hot.facts(&upsert);
    let mut pending = None;
    match app
        .hot
        .admit_check_in(&req.node_id, sig.counter, facts, key.as_bytes(), now)
    {
        Memory::Replayed => return Err(replayed(sig.counter, &req.node_id)),
        Memory::Accepted => {
            pending = Some(
                app.check_ins
                    .check_in_behind(&upsert, sig.counter, now)
                    .await?,
            );
        }
        Memory::Confirm => {
            // Another replica may have taken this counter: only the row's
            // compare-and-set accepts it (same facts: no re-admission).
            if !app.check_ins.check_in(&upsert, sig.counter, now).await? {
                app.hot.forget(&req.node_id);
                not_stored(&app, &source, &req, &upsert, sig.counter, now).await?;
            }
        }
        Memory::Ask => {
            check_in_through(&app, &source, &req, &upsert, sig.counter, now).await?;
            if let Some(raw) = canonical_key(&req.public_key) {
                app.hot.remember(&req.node_id, sig.counter, facts, raw, now);
            }
        }
    }
    app.metrics.check_ins.inc();
    let node = NodeRecord {
        id: req.node_id.clone(),
        public_key: req.public_key.clone(),
        counter: sig.counter,
        channel: req.channel.clone(),
        group: req.group.clone(),
        board: req.board.clone(),
        version: req.booted.version.clone(),
        slot: upsert.slot.to_owned(),
        state: upsert.state.to_owned(),
        last_seen: now,
        registered_at: now,
        hostname: upsert.hostname.to_owned(),
        fallback_version: req.fallback_version.clone(),
        kind: moho_protocol::admin::NodeKind::Moho,
        omaha: None,
    };
    let staged = match req.state {
        AgentState::Staged | AgentState::Trial => req.staged_version.as_deref(),
        _ => None,
    };
    let action = offer::node_action(offer::for_node(&app, &node, staged, pending, now).await?);
    Ok(Json(CheckInResponse {
        action,
        repository_url: repository_url(&app, &headers),
    }))
}

/// A check-in the hot state cannot decide, written through: one
/// conditional UPDATE, and when it changes nothing, why (another key, a
/// replay, or a first check-in that registers under the enrolment rules).
/// A node pinned by its enrolment token that names another scope is
/// re-admitted first ([`readmit`]).
async fn check_in_through(
    app: &AppState,
    source: &Source,
    req: &CheckIn,
    upsert: &NodeUpsert<'_>,
    counter: u64,
    now: jiff::Timestamp,
) -> Result<(), ApiError> {
    if let Some(stored) = app.db.enrolled_node(&req.node_id).await?
        && let Some(pin) = &stored.pin
        && !pin.holds(&req.channel, &req.group)
        // Another key or a replay: refused below, as any check-in.
        && stored.public_key == req.public_key
        && counter > stored.counter
    {
        readmit(app, req, pin, now).await?;
    }
    if app.check_ins.check_in(upsert, counter, now).await? {
        return Ok(());
    }
    not_stored(app, source, req, upsert, counter, now).await
}

/// A check-in whose conditional UPDATE changed nothing: why (another key,
/// a replay), or a first check-in that registers under the enrolment rules.
async fn not_stored(
    app: &AppState,
    source: &Source,
    req: &CheckIn,
    upsert: &NodeUpsert<'_>,
    counter: u64,
    now: jiff::Timestamp,
) -> Result<(), ApiError> {
    match app.db.node(&req.node_id).await? {
        Some(n) if n.public_key != req.public_key => {
            return Err(ApiError::forbidden(
                "key_mismatch",
                format!(
                    "node {:?} is registered with another public key",
                    req.node_id
                ),
            ));
        }
        Some(_) => return Err(replayed(counter, &req.node_id)),
        None => {
            app.limits
                .check(Limited::Registration, source.0)
                .map_err(|t| ApiError::too_many("registrations", t))?;
            let admission = enrollment::admit(
                &app.db,
                app.config.open_registration,
                app.config.enrollment_token.as_deref(),
                req.enrollment_token.as_deref(),
                &req.channel,
                &req.group,
                now,
            )
            .await?
            .map_err(refused)?;
            let created = match admission {
                Admission::Free => {
                    app.db.register_node(upsert, counter, now).await? == Registration::Created
                }
                Admission::Token { token, hash } => {
                    enrollment::enroll(&app.db, upsert, counter, &token, &hash, now)
                        .await?
                        .map_err(refused)?
                        == EnrollmentUse::Created
                }
            };
            if created {
                app.metrics.registrations.inc();
            } else if !app.db.check_in_node(upsert, counter, now).await? {
                // Registered meanwhile by a concurrent request.
                return Err(replayed(counter, &req.node_id));
            }
        }
    }
    Ok(())
}

/// `POST /v1/events`.
pub async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let sig = signature(&headers)?;
    let bytes = read_limited(body, app.config.max_node_body).await?;
    let report: EventReport = parse_json(&bytes)?;
    if sig.node_id != report.node_id {
        return Err(ApiError::bad_request(
            "node_id_mismatch",
            format!(
                "header names node {:?} but the body names {:?}",
                sig.node_id, report.node_id
            ),
        ));
    }
    if report.events.len() > MAX_EVENTS_PER_REPORT {
        return Err(ApiError::bad_request(
            "too_many_events",
            format!(
                "{} events in one report; at most {MAX_EVENTS_PER_REPORT}",
                report.events.len()
            ),
        ));
    }
    for (i, e) in report.events.iter().enumerate() {
        if let Some(v) = e.kind.version() {
            check_version("event version", v).map_err(|err| {
                ApiError::bad_request("invalid_version", format!("event {i}: {err}"))
                    .field("events[].version")
            })?;
        }
    }
    // The key from the hot state if this replica holds the node, else from
    // its row (and then the node is held from now on).
    let (key_str, from_row) = match app.hot.key(&report.node_id, sig.counter) {
        Some((_, false)) => return Err(replayed(sig.counter, &report.node_id)),
        Some((raw, true)) => (key_text(&raw), None),
        None => {
            let node = app.db.node(&report.node_id).await?.ok_or_else(|| {
                ApiError::unauthorized(
                    "unknown_node",
                    format!("node {:?} has never checked in", report.node_id),
                )
            })?;
            (node.public_key.clone(), Some(node))
        }
    };
    let key = app
        .keys
        .decode(&key_str)
        .map_err(|e| ApiError::bad_request("bad_public_key", e.to_string()))?;
    verify_request(&key, "POST", EVENTS_PATH, &sig, &bytes)
        .map_err(|e| ApiError::unauthorized("bad_signature", e.to_string()))?;
    if from_row.is_none() && app.hot.admit_request(&report.node_id, sig.counter) == Memory::Replayed
    {
        return Err(replayed(sig.counter, &report.node_id));
    }
    let now = app.clock.now();
    let write = report_write(&report, key_str, sig.counter, now)?;
    // Stored (counter, events, attempt phases in one transaction) before
    // the answer: a report is what moves a rollout on.
    if !app.check_ins.report(write).await? {
        app.hot.forget(&report.node_id);
        return Err(replayed(sig.counter, &report.node_id));
    }
    if let Some(node) = from_row
        && let Some(raw) = canonical_key(&node.public_key)
    {
        let facts = app.hot.facts(&node.upsert());
        app.hot
            .remember(&node.id, sig.counter, facts, raw, node.last_seen);
    }
    for e in &report.events {
        app.metrics
            .events
            .get_or_create(&vec![("type".to_owned(), e.kind.type_name().to_owned())])
            .inc();
    }
    Ok(Json(serde_json::json!({"accepted": report.events.len()})))
}

/// What a verified report writes: its events, and the attempt changes they
/// make. Progress events only move the attempt's phase (one write per
/// report, for the latest of them); final events end the attempt.
fn report_write(
    report: &EventReport,
    public_key: String,
    counter: u64,
    now: jiff::Timestamp,
) -> Result<ReportWrite, StoreError> {
    let mut events = Vec::with_capacity(report.events.len());
    let mut finishes = Vec::new();
    let mut progress: Option<(&str, Phase)> = None;
    for e in &report.events {
        events.push(EventWrite {
            at: e.at,
            kind: e.kind.type_name(),
            version: e.kind.version().map(str::to_owned),
            body: serde_json::to_string(e).map_err(|source| StoreError::Corrupt {
                what: "event",
                source,
            })?,
        });
        let (Some(version), Some((phase, end))) = (e.kind.version(), Phase::of_event(&e.kind))
        else {
            continue;
        };
        match end {
            Some(status) => {
                if progress.is_some_and(|(v, _)| v == version) {
                    progress = None;
                }
                finishes.push((version.to_owned(), status, phase));
            }
            None => progress = Some((version, phase)),
        }
    }
    Ok(ReportWrite {
        node_id: report.node_id.clone(),
        public_key,
        counter,
        events,
        finishes,
        progress: progress.map(|(v, p)| (v.to_owned(), p)),
        now,
    })
}
