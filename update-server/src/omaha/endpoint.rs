//! `POST /v1/update/` (and `/v1/update`, the path update_engine's `SERVER=`
//! usually names on Nebraska): one Omaha request in three steps.
//!
//! 1. Check: the body (bounded), the XML, every value, the tracks against
//!    the server's channels and groups, and that no machine id belongs to a
//!    Moho node — all before anything is written; a refusal is a 4xx and
//!    stores nothing.
//! 2. Write, per app: the node, its events and its attempt change
//!    ([`super::plan`]), in one transaction.
//! 3. Answer each update check from the same rollout decision as Moho
//!    nodes get; a Flatcar node is offered only Flatcar releases. Omaha
//!    cannot switch a node's partitions, so a revert answers `noupdate`
//!    (the rollout stops offering) and is logged.

use std::collections::HashSet;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use moho_protocol::Event;
use moho_protocol::admin::{NodeKind, ReleaseKind};
use moho_rollout::offer::Offer;
use serde::Deserialize;

use super::answer::{AppAnswer, CheckAnswer, response};
use super::plan::{AttemptChange, Before, plan};
use super::request::{AppCheck, AppEntry, check_request};
use super::wire::{parse_request, write_response};
use crate::enrollment::{self, Admission};
use crate::error::ApiError;
use crate::http::body::read_limited;
use crate::offer;
use crate::state::AppState;
use crate::store::{AttemptWrite, FlatcarNode, FlatcarWrite, NodeRecord};

/// The URL query an Omaha `SERVER=` may carry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OmahaQuery {
    /// The enrollment token, when the server requires one.
    pub token: Option<String>,
}

/// `POST /v1/update/`.
pub async fn update(
    State(app): State<AppState>,
    Query(query): Query<OmahaQuery>,
    body: Body,
) -> Response {
    match handle(&app, &query, body).await {
        Ok(xml) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            xml,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// One checked app and what is known about its node.
struct Ready<'a> {
    app: &'a AppCheck,
    node: Option<NodeRecord>,
    in_flight: Option<String>,
}

async fn handle(app: &AppState, query: &OmahaQuery, body: Body) -> Result<String, ApiError> {
    let Some(cfg) = &app.config.omaha else {
        return Err(ApiError::not_found(
            "omaha_disabled",
            "this server does not answer Omaha: start update-server with --omaha",
        ));
    };
    if let Some(token) = &app.config.enrollment_token
        && query.token.as_deref() != Some(token.as_str())
    {
        return Err(ApiError::forbidden(
            "enrollment_required",
            "this server requires its enrollment token: SERVER=https://HOST/v1/update/?token=TOKEN",
        ));
    }
    let bytes = read_limited(body, app.config.max_node_body).await?;
    let req = parse_request(&bytes)
        .map_err(|e| ApiError::bad_request("malformed_request", e.to_string()))?;
    let entries = check_request(&req, &cfg.app_ids)
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    let now = app.clock.now();

    // 1. Everything checked and read before the first write.
    let names = app.caches.names(&app.db, &app.config, now).await?;
    let mut seen = HashSet::new();
    let mut ready: Vec<Option<Ready<'_>>> = Vec::with_capacity(entries.len());
    for entry in &entries {
        let AppEntry::Known(a) = entry else {
            ready.push(None);
            continue;
        };
        if !seen.insert(a.machine_id.clone()) {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!(
                    "machine id {:?} appears in two <app> elements",
                    a.machine_id
                ),
            ));
        }
        if !names.channels.contains(&a.track.channel) || !names.groups.contains(&a.track.group) {
            ready.push(None);
            continue;
        }
        let node = app.db.node(&a.machine_id).await?;
        if node.as_ref().is_some_and(|n| n.kind == NodeKind::Moho) {
            return Err(moho_node(&a.machine_id));
        }
        let in_flight = match &node {
            Some(_) => app.db.in_flight_version(&a.machine_id).await?,
            None => None,
        };
        ready.push(Some(Ready {
            app: a,
            node,
            in_flight,
        }));
    }

    // A machine id not registered yet needs what a first check-in needs:
    // open registration, the server-wide token, or an enrolment token of
    // its track's group (one use each).
    for r in ready.iter().flatten().filter(|r| r.node.is_none()) {
        let track = &r.app.track;
        let admission = enrollment::admit(
            &app.db,
            app.config.open_registration,
            app.config.enrollment_token.as_deref(),
            query.token.as_deref(),
            &track.channel,
            &track.group,
            now,
        )
        .await?
        .map_err(|e| ApiError::forbidden(e.code(), e.message()))?;
        if let Admission::Token { token, hash } = admission
            && !app
                .db
                .take_enrollment_use(&r.app.machine_id, &token, &hash, now)
                .await?
        {
            let again = app.db.enrollment_token(&hash).await?.unwrap_or(*token);
            let why = enrollment::judge(&again, &track.channel, &track.group, now)
                .err()
                .unwrap_or(enrollment::Refusal::UsedUp(again));
            return Err(ApiError::forbidden(why.code(), why.message()));
        }
    }

    // 2. and 3. Per app: write what it reported, then answer its check.
    let mut answered = Vec::with_capacity(entries.len());
    for (entry, r) in entries.iter().zip(&ready) {
        answered.push(match (entry, r) {
            (AppEntry::Unknown { app_id_sent }, _) => Answered::UnknownApp(app_id_sent),
            (AppEntry::Known(a), None) => Answered::UnknownTrack(&a.app_id_sent),
            (AppEntry::Known(a), Some(r)) => {
                let node = record(app, r, now).await?;
                let offer = if a.update_check {
                    offered_version(app, &node, now).await?
                } else {
                    None
                };
                Answered::Served(a, offer.map(|v| (v, node.board)))
            }
        });
    }
    let releases = app.caches.releases(&app.db, &app.config, now).await?;
    let apps: Vec<AppAnswer<'_>> = answered
        .iter()
        .map(|ans| match ans {
            Answered::UnknownApp(id) => AppAnswer::UnknownApp { app_id: id },
            Answered::UnknownTrack(id) => AppAnswer::UnknownTrack { app_id: id },
            Answered::Served(a, offer) => AppAnswer::Served {
                app_id: &a.app_id_sent,
                ping: a.ping,
                events: a.events.len(),
                check: a.update_check.then(|| {
                    offer
                        .as_ref()
                        .and_then(|(version, board)| {
                            releases.iter().find(|x| {
                                x.kind == ReleaseKind::Flatcar
                                    && &x.version == version
                                    && &x.board == board
                            })
                        })
                        .and_then(|x| {
                            x.flatcar.as_ref().map(|payloads| CheckAnswer::Update {
                                version: &x.version,
                                payloads,
                            })
                        })
                        .unwrap_or(CheckAnswer::NoUpdate)
                }),
            },
        })
        .collect();
    let doc = response(&apps, now).map_err(|e| {
        tracing::error!("omaha answer: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_release",
            e.to_string(),
        )
    })?;
    write_response(&doc).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding_failed",
            e.to_string(),
        )
    })
}

/// How an app was answered, before the XML is built: a served app with the
/// version and board it is offered, if any.
enum Answered<'a> {
    UnknownApp(&'a str),
    UnknownTrack(&'a str),
    Served(&'a AppCheck, Option<(String, String)>),
}

/// The version the rollouts offer `node` now, if any. Every wait is
/// `noupdate`; so is a revert, which Omaha cannot carry out.
async fn offered_version(
    app: &AppState,
    node: &NodeRecord,
    now: Timestamp,
) -> Result<Option<String>, ApiError> {
    Ok(match offer::for_node(app, node, None, None, now).await? {
        Offer::Install { version, .. } => Some(version),
        Offer::Revert { from_version, .. } => {
            tracing::warn!(
                node = %node.id,
                "the rollout of {from_version} was reverted, but Omaha cannot switch a Flatcar node's partitions: answering noupdate"
            );
            None
        }
        Offer::Cancel { version, .. } => {
            tracing::warn!(
                node = %node.id,
                "{version} was withdrawn, but Omaha cannot clear a Flatcar node's staged partition: answering noupdate"
            );
            None
        }
        Offer::Wait { .. } => None,
    })
}

fn moho_node(id: &str) -> ApiError {
    ApiError::forbidden(
        "moho_node",
        format!(
            "machine id {id:?} is registered by a Moho agent (signed reports): an Omaha request may not speak for it"
        ),
    )
}

/// Writes what one app reported; returns the node as the decision sees it.
async fn record(app: &AppState, r: &Ready<'_>, now: Timestamp) -> Result<NodeRecord, ApiError> {
    let a = r.app;
    let before = Before {
        state: r.node.as_ref().map(|n| n.state.as_str()),
        version: r.node.as_ref().map(|n| n.version.as_str()),
        fallback_version: r.node.as_ref().and_then(|n| n.fallback_version.as_deref()),
        in_flight: r.in_flight.as_deref(),
    };
    let p = plan(a, &before);
    let events: Vec<Event> = p
        .events
        .iter()
        .map(|kind| Event {
            at: now,
            kind: kind.clone(),
        })
        .collect();
    let attempt = p.attempt.as_ref().map(|c| match c {
        AttemptChange::Advance { version, phase } => AttemptWrite::Advance {
            version,
            phase: *phase,
        },
        AttemptChange::Finish {
            version,
            status,
            phase,
        } => AttemptWrite::Finish {
            version,
            status: *status,
            phase: *phase,
        },
    });
    let row = FlatcarNode {
        id: &a.machine_id,
        channel: &a.track.channel,
        group: &a.track.group,
        board: &a.board,
        version: &a.version,
        state: p.state.as_str(),
        hostname: &a.hostname,
        fallback_version: p.fallback_version.as_deref(),
        client: &a.client,
    };
    if app.db.record_flatcar(&row, &events, attempt, now).await? == FlatcarWrite::MohoNode {
        return Err(moho_node(&a.machine_id));
    }
    for e in &events {
        app.metrics
            .events
            .get_or_create(&vec![("type".to_owned(), e.kind.type_name().to_owned())])
            .inc();
    }
    Ok(NodeRecord {
        id: a.machine_id.clone(),
        public_key: String::new(),
        counter: 0,
        channel: a.track.channel.clone(),
        group: a.track.group.clone(),
        board: a.board.clone(),
        version: a.version.clone(),
        slot: String::new(),
        state: p.state.as_str().to_owned(),
        last_seen: now,
        registered_at: r.node.as_ref().map_or(now, |n| n.registered_at),
        hostname: a.hostname.clone(),
        fallback_version: p.fallback_version.clone(),
        kind: NodeKind::Flatcar,
        omaha: Some(a.client.clone()),
    })
}
