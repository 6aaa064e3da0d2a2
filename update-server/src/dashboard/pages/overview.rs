//! The overview: one card per channel with its newest signed release, the
//! fleet's versions (chart), each open rollout's progress against its ramp
//! target, and alerts (paused or auto-paused rollouts, nodes stuck past the
//! update timeout, signed metadata close to expiry). Figures come from the cached fleet summary and the same
//! live rollout state the admin API serves; with a group chosen in the top
//! bar, only that group's nodes and rollouts count.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use jiff::Timestamp;
use maud::{Markup, html};
use moho_protocol::admin::ReleaseView;
use moho_rollout::version::parse_version;
use moho_rollout::{PauseReason, RolloutStatus};

use super::answer;
use crate::cache::LiveRollout;
use crate::dashboard::charts::{Segment, palette, stacked_bar};
use crate::dashboard::error::DashError;
use crate::dashboard::format::{bytes, duration, thousands, utc};
use crate::dashboard::layout::{Nav, Part, live, page as frame};
use crate::dashboard::progress::Progress;
use crate::dashboard::require_user;
use crate::dashboard::scope::Scope;
use crate::dashboard::summary::{FleetSummary, STALE_INTERVALS, summary};
use crate::dashboard::widgets::{alert, status_badge, when};
use crate::state::AppState;

/// Versions drawn separately; the rest are summed as "other".
const TOP_VERSIONS: usize = 6;

struct Channel<'a> {
    name: &'a str,
    nodes: u64,
    stale: u64,
    versions: Vec<(String, u64)>,
    latest: Option<&'a ReleaseView>,
    rollouts: Vec<&'a LiveRollout>,
}

fn channels<'a>(
    names: &'a [String],
    s: &FleetSummary,
    scope: &Scope,
    releases: &'a [ReleaseView],
    open: &'a [LiveRollout],
) -> Vec<Channel<'a>> {
    names
        .iter()
        .map(|name| {
            let mut versions: BTreeMap<String, u64> = BTreeMap::new();
            let (mut nodes, mut stale) = (0, 0);
            for r in s
                .rows
                .iter()
                .filter(|r| &r.channel == name && scope.includes(&r.group))
            {
                nodes += r.nodes;
                stale += r.stale;
                *versions.entry(r.version.clone()).or_default() += r.nodes;
            }
            let mut versions: Vec<(String, u64)> = versions.into_iter().collect();
            versions.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let latest = releases
                .iter()
                .filter(|r| r.present && r.channels.contains(name))
                .max_by(|a, b| {
                    parse_version(&a.version)
                        .ok()
                        .cmp(&parse_version(&b.version).ok())
                });
            Channel {
                name,
                nodes,
                stale,
                versions,
                latest,
                rollouts: open.iter().filter(|l| &l.record.channel == name).collect(),
            }
        })
        .collect()
}

fn versions_chart(c: &Channel<'_>) -> Markup {
    let mut segments: Vec<Segment> = c
        .versions
        .iter()
        .take(TOP_VERSIONS)
        .enumerate()
        .map(|(i, (v, n))| {
            Segment::new(
                &format!("version-{v}"),
                v.clone(),
                *n,
                palette::SERIES[i % palette::SERIES.len()],
            )
        })
        .collect();
    let other: u64 = c.versions.iter().skip(TOP_VERSIONS).map(|v| v.1).sum();
    if other > 0 {
        segments.push(Segment::new(
            "version-other",
            "other versions",
            other,
            palette::WAITING,
        ));
    }
    stacked_bar(&format!("Versions in {}", c.name), &segments, c.nodes, None)
}

fn rollout_block(now: Timestamp, l: &LiveRollout, p: &Progress) -> Markup {
    let r = &l.record;
    let scope = l.index.len() as u64;
    let share = r.policy.share_at(r.state.step);
    let target = share.of(scope);
    html! {
        div.rollout data-rollout=(r.id) {
            h3 {
                a href=(format!("/ui/rollouts/{}", r.id)) { "Rollout #" (r.id) ": " (r.version) }
                " to " (r.group) " · " (r.board) " "
                (status_badge(&r.state))
            }
            p.muted {
                "Step " (r.state.step + 1) " of " (r.policy.steps.len()) " at " (share)
                " since " (when(now, r.state.step_started))
            }
            div.figures {
                div { span.n data-figure="offered" { (thousands(p.offered)) } span.k { "offered" } }
                div { span.n data-figure="in_flight" { (thousands(p.in_flight())) } span.k { "in flight" } }
                div { span.n data-figure="healthy" { (thousands(p.healthy)) } span.k { "healthy" } }
                div { span.n data-figure="failed" { (thousands(p.failed())) } span.k { "failed" } }
                div { span.n data-figure="target" { (thousands(target)) } span.k { "ramp target (" (share) " of " (thousands(scope)) ")" } }
            }
            (p.bar(scope, target))
            @match r.state.status {
                RolloutStatus::Paused { reason: PauseReason::Operator } =>
                    (alert("warn", "Paused by an operator: no new offers until resumed.")),
                RolloutStatus::Paused { reason: PauseReason::FailureRate { failed, finished } } =>
                    (alert("bad", format!("Paused automatically: {failed} of {finished} finished attempts failed."))),
                _ => {}
            }
            @if p.timed_out > 0 {
                (alert("bad", format!("{} node(s) stuck: no final report within the {} update timeout.",
                    thousands(p.timed_out), duration(r.policy.update_timeout))))
            }
        }
    }
}

fn card(now: Timestamp, s: &FleetSummary, c: &Channel<'_>) -> Markup {
    html! {
        section.card data-channel=(c.name) {
            h2 { "Channel " (c.name) }
            div.figures {
                div { span.n data-figure="nodes" { (thousands(c.nodes)) } span.k { "nodes" } }
                div { span.n data-figure="stale" { (thousands(c.stale)) } span.k { "not seen for " (STALE_INTERVALS) " check intervals" } }
                div {
                    span.n data-figure="latest" {
                        @if let Some(l) = c.latest { (l.version) } @else { "—" }
                    }
                    span.k {
                        "newest release signed for " (c.name)
                        @if let Some(size) = c.latest.and_then(|l| l.size) { " · " (bytes(size)) }
                    }
                }
            }
            @if c.nodes > 0 { (versions_chart(c)) } @else { p.muted { "No node follows this channel yet." } }
            @if c.rollouts.is_empty() {
                p.muted { "No open rollout." }
            }
            @for l in &c.rollouts {
                @let p = s.progress.get(&l.record.id).copied().unwrap_or_default();
                (rollout_block(now, l, &p))
            }
        }
    }
}

/// The served metadata expires soon: after that, every node refuses it and
/// the fleet stops updating.
fn expiry_alert(now: Timestamp, w: &crate::repository::refresh::ExpiryWarning) -> Markup {
    let at = Timestamp::try_from(w.expires).unwrap_or(now);
    let fix = if w.offline {
        "Re-sign it with its offline key and publish."
    } else {
        "The server re-signs it only with the online keys (--online-keys): \
         see its log, or re-sign it with image-tools repo refresh."
    };
    let text = if w.expired {
        format!(
            "The signed {} metadata expired at {}: nodes refuse it and stop updating. {fix}",
            w.role,
            utc(at)
        )
    } else {
        format!(
            "The signed {} metadata expires at {} (in {}): nodes will refuse it then. {fix}",
            w.role,
            utc(at),
            duration(at.duration_since(now))
        )
    };
    html! { div data-expiring=(w.role) { (alert(if w.expired { "bad" } else { "warn" }, text)) } }
}

/// `GET /ui/`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(part): Query<Part>,
) -> Result<Response, DashError> {
    let user = require_user(&app, &headers, part.is_live()).await?;
    let now = app.clock.now();
    let s = summary(&app).await?;
    let mut names = app.db.channels().await?;
    for r in &s.rows {
        if !names.contains(&r.channel) {
            names.push(r.channel.clone());
        }
    }
    let releases = app.caches.releases(&app.db, &app.config, now).await?;
    let mut open = Vec::new();
    for r in app.db.rollouts().await? {
        if matches!(
            r.state.status,
            RolloutStatus::Active | RolloutStatus::Paused { .. }
        ) && user.scope.includes(&r.group)
            && let Some(l) = app.caches.live(&app.db, &app.config, r.id, now).await?
        {
            open.push(l);
        }
    }
    let cards = channels(&names, &s, &user.scope, &releases, &open);
    let total: u64 = cards.iter().map(|c| c.nodes).sum();
    let alerts = open
        .iter()
        .filter(|l| {
            matches!(l.record.state.status, RolloutStatus::Paused { .. })
                || s.progress
                    .get(&l.record.id)
                    .is_some_and(|p| p.timed_out > 0)
        })
        .count();
    let expiring = app
        .repo_expiry()
        .map(|e| {
            crate::repository::refresh::expiry_warnings(
                &e,
                std::time::SystemTime::from(now),
                app.config.timestamp_margin(),
            )
        })
        .unwrap_or_default();
    let region = live(
        s.at,
        html! {
            @for w in &expiring { (expiry_alert(now, w)) }
            div.figures.top {
                div { span.n data-figure="fleet-nodes" { (thousands(total)) } span.k { "nodes" } }
                div { span.n data-figure="open-rollouts" { (open.len()) } span.k { "open rollouts" } }
                div { span.n data-figure="alerts" { (alerts) } span.k { "rollouts needing attention" } }
            }
            div.cards {
                @for c in &cards { (card(now, &s, c)) }
            }
        },
    );
    Ok(answer(part.is_live(), region, |region| {
        frame(&user, Nav::Overview, "Overview", region)
    }))
}
