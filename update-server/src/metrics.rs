//! Prometheus metrics at `/metrics` (OpenMetrics text): request latency per
//! route, check-ins, registrations, offers and node events as counters, and,
//! computed at scrape time from the database, nodes per channel/version/state
//! and each rollout's progress, when the served metadata expires and how
//! long before that the server re-signs it, whether
//! this replica runs the background jobs, and its live event stream's
//! subscribers, events handed out and events slow subscribers missed.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

type Labels = Vec<(String, String)>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The process-wide metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Accepted check-ins.
    pub check_ins: Counter,
    /// New nodes.
    pub registrations: Counter,
    /// Install answers given.
    pub offers: Counter,
    /// Node events by type.
    pub events: Family<Labels, Counter>,
    /// Request latency by route and status.
    pub latency: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("moho");
        let check_ins = Counter::default();
        let registrations = Counter::default();
        let offers = Counter::default();
        let events = Family::<Labels, Counter>::default();
        let latency =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("check_ins", "Accepted node check-ins", check_ins.clone());
        registry.register(
            "node_registrations",
            "Nodes registered on first check-in",
            registrations.clone(),
        );
        registry.register(
            "update_offers",
            "Install answers given to nodes",
            offers.clone(),
        );
        registry.register(
            "node_events",
            "Node events received, by type",
            events.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Request latency by route and status",
            latency.clone(),
        );
        Self {
            registry,
            check_ins,
            registrations,
            offers,
            events,
            latency,
        }
    }
}

/// Middleware: times every request under its route pattern.
pub async fn track(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let labels = vec![
        ("route".to_owned(), route),
        ("method".to_owned(), method),
        ("status".to_owned(), resp.status().as_u16().to_string()),
    ];
    app.metrics
        .latency
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// `GET /metrics`.
pub async fn render(State(app): State<AppState>) -> Response {
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &app.metrics.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    // Fleet gauges, read from the database at scrape time.
    let mut fleet = Registry::with_prefix("moho");
    let nodes = Family::<Labels, Gauge>::default();
    let rollout = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    fleet.register(
        "nodes",
        "Registered nodes by channel, version and state",
        nodes.clone(),
    );
    fleet.register(
        "rollout",
        "Rollout progress: offered, in_flight, healthy, failed nodes, ramp percent, auto_paused (1 when the failure rate paused it)",
        rollout.clone(),
    );
    let expiry = Family::<Labels, Gauge>::default();
    fleet.register(
        "repository_metadata_expiry_timestamp_seconds",
        "Unix time at which the served signed metadata of each role expires (nodes refuse it after)",
        expiry.clone(),
    );
    let margin = Family::<Labels, Gauge>::default();
    fleet.register(
        "repository_metadata_resign_margin_seconds",
        "How long before expiry the server re-signs each online role when it holds the online keys (timestamp: 12 h or half of --timestamp-expiry; snapshot: 2 days); the shipped alert fires when less than half of it is left",
        margin.clone(),
    );
    for (role, d) in [
        ("timestamp", app.config.timestamp_margin()),
        ("snapshot", crate::repository::refresh::SNAPSHOT_MARGIN),
    ] {
        margin
            .get_or_create(&vec![("role".to_owned(), role.to_owned())])
            .set(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    }
    let leader = Gauge::<i64>::default();
    fleet.register(
        "jobs_leader",
        "1 when this replica holds the lease and runs the background jobs (rollout ticks, re-signing, retention), else 0",
        leader.clone(),
    );
    leader.set(i64::from(app.is_leader()));
    let subscribers = Gauge::<i64>::default();
    fleet.register(
        "live_event_subscribers",
        "Open live event streams (dashboard pages, API clients) on this replica",
        subscribers.clone(),
    );
    subscribers.set(i64::try_from(app.live.subscribers()).unwrap_or(i64::MAX));
    let published = Counter::<u64>::default();
    fleet.register(
        "live_events_published",
        "Events this replica's live stream handed to its subscribers",
        published.clone(),
    );
    published.inc_by(app.live.published());
    let missed = Counter::<u64>::default();
    fleet.register(
        "live_events_missed",
        "Events that passed a slow live-stream subscriber by (it was told how many), summed over subscribers",
        missed.clone(),
    );
    missed.inc_by(app.live.missed());
    if let Some(e) = app.repo_expiry() {
        for (role, at) in [
            ("root", e.root),
            ("targets", e.targets),
            ("snapshot", e.snapshot),
            ("timestamp", e.timestamp),
        ] {
            let secs = at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            expiry
                .get_or_create(&vec![("role".to_owned(), role.to_owned())])
                .set(secs);
        }
    }
    if let Ok(counts) = app.db.node_counts().await {
        for (channel, version, state, n) in counts {
            nodes
                .get_or_create(&vec![
                    ("channel".into(), channel),
                    ("version".into(), version),
                    ("state".into(), state),
                ])
                .set(n);
        }
    }
    let now = app.clock.now();
    if let Ok(list) = app.db.rollouts().await {
        for r in list {
            let Ok(Some(l)) = app.caches.live(&app.db, &app.config, r.id, now).await else {
                continue;
            };
            let base = |what: &str| {
                vec![
                    ("rollout".to_owned(), r.id.to_string()),
                    ("version".to_owned(), r.version.clone()),
                    ("channel".to_owned(), r.channel.clone()),
                    ("group".to_owned(), r.group.clone()),
                    ("value".to_owned(), what.to_owned()),
                ]
            };
            #[allow(clippy::cast_precision_loss)]
            for (what, v) in [
                ("offered", l.stats.offered as f64),
                ("in_flight", l.stats.in_flight as f64),
                ("healthy", l.stats.healthy as f64),
                ("unsigned_succeeded", l.stats.unsigned_succeeded as f64),
                ("failed", l.stats.failed as f64),
                (
                    "percent",
                    l.record.policy.share_at(l.record.state.step).percent(),
                ),
                (
                    "auto_paused",
                    f64::from(u8::from(matches!(
                        l.record.state.status,
                        moho_rollout::RolloutStatus::Paused {
                            reason: moho_rollout::PauseReason::FailureRate { .. }
                        }
                    ))),
                ),
            ] {
                rollout.get_or_create(&base(what)).set(v);
            }
        }
    }
    let mut fleet_text = String::new();
    if encode(&mut fleet_text, &fleet).is_ok() {
        // Both documents end with "# EOF"; keep one at the very end.
        out = out.trim_end().trim_end_matches("# EOF").to_owned();
        out.push_str(&fleet_text);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
