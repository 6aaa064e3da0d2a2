//! Drives a running server with signed check-ins from the simulated fleet:
//! `concurrency` workers, each owning the nodes `i ≡ w (mod concurrency)` so
//! a node's counter only ever rises, for a fixed duration; about one request
//! in `report_every` is an event report instead. Measures every request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use moho_protocol::node::{AgentState, BootedImage, CheckIn, Event, EventKind, EventReport, Slot};
use moho_protocol::signing::{encode_public_key, next_counter, sign_request};

use crate::fleet::{node_id, node_key};

/// What to run.
#[derive(Debug, Clone)]
pub struct DriveConfig {
    /// Server base URL.
    pub server: String,
    /// Registered simulated nodes (`0..nodes`).
    pub nodes: u64,
    /// Concurrent workers.
    pub concurrency: u64,
    /// How long.
    pub duration: Duration,
    /// One request in this many is an event report (0: none).
    pub report_every: u64,
    /// Channel the nodes follow.
    pub channel: String,
    /// Group.
    pub group: String,
    /// Baseline: unsigned `GET /healthz` instead of check-ins (the HTTP
    /// stack's own ceiling on the same machine).
    pub baseline: bool,
    /// PEM of a CA to trust for an `https://` server.
    pub ca_pem: Option<Vec<u8>>,
}

/// The figures.
#[derive(Debug, Clone)]
pub struct DriveReport {
    /// Successful check-ins.
    pub check_ins: u64,
    /// Successful event reports.
    pub reports: u64,
    /// Failed requests.
    pub errors: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Check-in latency percentiles, microseconds: p50, p90, p99, p99.9, max.
    pub check_in_us: [u64; 5],
}

impl std::fmt::Display for DriveReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let rate = self.check_ins as f64 / secs;
        let ms = |us: u64| us as f64 / 1000.0;
        write!(
            f,
            "check-ins: {} in {secs:.1}s = {rate:.0}/s; reports: {}; errors: {}\n\
             check-in latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            self.check_ins,
            self.reports,
            self.errors,
            ms(self.check_in_us[0]),
            ms(self.check_in_us[1]),
            ms(self.check_in_us[2]),
            ms(self.check_in_us[3]),
            ms(self.check_in_us[4]),
        )
    }
}

fn unix_millis() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0)
}

/// A latency histogram from 1 µs to 60 s with 3 significant digits.
#[allow(clippy::expect_used)] // constant bounds that hdrhistogram accepts
fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

struct Worker {
    hist: Histogram<u64>,
    check_ins: u64,
    reports: u64,
    errors: u64,
}

async fn worker(
    cfg: Arc<DriveConfig>,
    client: reqwest::Client,
    w: u64,
    deadline: Instant,
) -> Worker {
    let mut out = Worker {
        hist: new_hist(),
        check_ins: 0,
        reports: 0,
        errors: 0,
    };
    let mine = cfg.nodes.div_ceil(cfg.concurrency).max(1);
    let mut counter = 0u64;
    // A cheap permutation of this worker's nodes.
    let mut k = (w * 2_654_435_761) % mine;
    let mut n = 0u64;
    while Instant::now() < deadline {
        k = (k + 40_503) % mine;
        let i = (k * cfg.concurrency + w) % cfg.nodes;
        if cfg.baseline {
            let start = Instant::now();
            let ok = match client.get(format!("{}/healthz", cfg.server)).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            if ok {
                out.check_ins += 1;
                let _ = out.hist.record(us.max(1));
            } else {
                out.errors += 1;
            }
            continue;
        }
        let id = node_id(i);
        let key = node_key(i);
        counter = next_counter(counter, unix_millis());
        n += 1;
        let report = cfg.report_every > 0 && n.is_multiple_of(cfg.report_every);
        let (path, body) = if report {
            let events = vec![Event {
                at: jiff::Timestamp::now(),
                kind: EventKind::DownloadStarted {
                    version: "1.1.0".into(),
                },
            }];
            (
                "/v1/events",
                serde_json::to_vec(&EventReport {
                    node_id: id.clone(),
                    events,
                })
                .unwrap_or_default(),
            )
        } else {
            let body = CheckIn {
                node_id: id.clone(),
                public_key: encode_public_key(&key.verifying_key()),
                channel: cfg.channel.clone(),
                group: cfg.group.clone(),
                board: "amd64-generic".into(),
                booted: BootedImage {
                    version: "1.0.0".into(),
                    slot: Slot::A,
                },
                fallback_version: None,
                state: AgentState::Idle,
                staged_version: None,
                hostname: Some(id.clone()),
                enrollment_token: None,
            };
            (
                "/v1/check-in",
                serde_json::to_vec(&body).unwrap_or_default(),
            )
        };
        let sig = sign_request(&key, "POST", path, &id, counter, &body);
        let mut req = client
            .post(format!("{}{path}", cfg.server))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in sig.headers() {
            req = req.header(name, value);
        }
        let start = Instant::now();
        let ok = match req.send().await {
            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        match (ok, report) {
            (false, _) => out.errors += 1,
            (true, true) => out.reports += 1,
            (true, false) => {
                out.check_ins += 1;
                let _ = out.hist.record(us.max(1));
            }
        }
    }
    out
}

/// Runs the load and returns the figures; fails only on a `ca_pem` that is
/// no certificate.
pub async fn drive(cfg: DriveConfig) -> Result<DriveReport, reqwest::Error> {
    let cfg = Arc::new(cfg);
    let mut builder = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::try_from(cfg.concurrency).unwrap_or(64));
    if let Some(pem) = &cfg.ca_pem {
        builder = builder.tls_certs_merge([reqwest::Certificate::from_pem(pem)?]);
    }
    let client = builder.build()?;
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let tasks: Vec<_> = (0..cfg.concurrency)
        .map(|w| tokio::spawn(worker(cfg.clone(), client.clone(), w, deadline)))
        .collect();
    let mut hist = new_hist();
    let (mut check_ins, mut reports, mut errors) = (0, 0, 0);
    for t in tasks {
        if let Ok(w) = t.await {
            let _ = hist.add(&w.hist);
            check_ins += w.check_ins;
            reports += w.reports;
            errors += w.errors;
        }
    }
    Ok(DriveReport {
        check_ins,
        reports,
        errors,
        elapsed: start.elapsed(),
        check_in_us: [
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.9),
            hist.value_at_quantile(0.99),
            hist.value_at_quantile(0.999),
            hist.max(),
        ],
    })
}
