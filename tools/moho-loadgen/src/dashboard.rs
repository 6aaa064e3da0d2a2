//! Measures dashboard pages of a running server: logs in through the login
//! form like a browser (double-submit cookie, then the session cookie),
//! requests each page a number of times one after the other, and reports
//! the server's own time (`Server-Timing: app;dur=`) and the client's
//! wall time, first request apart (it may fill caches).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reqwest::redirect::Policy;

/// Why a measurement could not run.
#[derive(Debug, thiserror::Error)]
pub enum DashBenchError {
    /// The HTTP request failed.
    #[error("request to {url} failed: {source}")]
    Http {
        /// URL.
        url: String,
        /// Cause.
        source: reqwest::Error,
    },
    /// The server answered something unexpected.
    #[error("{url}: {problem}")]
    Answer {
        /// URL.
        url: String,
        /// What was wrong.
        problem: String,
    },
}

/// Figures of one page.
#[derive(Debug, Clone)]
pub struct PageReport {
    /// Path measured.
    pub path: String,
    /// Bytes of the page.
    pub bytes: usize,
    /// First request: server ms, wall ms.
    pub first: (f64, f64),
    /// Later requests, server ms: p50, p90, p99, max.
    pub server_ms: [f64; 4],
    /// Later requests, wall ms: p50, p90, p99, max.
    pub wall_ms: [f64; 4],
    /// Requests after the first.
    pub requests: u64,
}

impl std::fmt::Display for PageReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [s50, s90, s99, smax] = self.server_ms;
        let [w50, w90, w99, wmax] = self.wall_ms;
        write!(
            f,
            "{}: {} bytes; first request {:.1} ms server / {:.1} ms wall; next {}: server p50 {s50:.1} p90 {s90:.1} p99 {s99:.1} max {smax:.1} ms; wall p50 {w50:.1} p90 {w90:.1} p99 {w99:.1} max {wmax:.1} ms",
            self.path, self.bytes, self.first.0, self.first.1, self.requests
        )
    }
}

fn http_err(url: &str) -> impl Fn(reqwest::Error) -> DashBenchError + '_ {
    move |source| DashBenchError::Http {
        url: url.to_owned(),
        source,
    }
}

fn answer(url: &str, problem: impl Into<String>) -> DashBenchError {
    DashBenchError::Answer {
        url: url.to_owned(),
        problem: problem.into(),
    }
}

fn cookie_value(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Logs in with `token`; returns the session cookie value.
pub async fn log_in(
    http: &reqwest::Client,
    server: &str,
    token: &str,
) -> Result<String, DashBenchError> {
    let url = format!("{server}/ui/login");
    let form = http.get(&url).send().await.map_err(http_err(&url))?;
    let login = cookie_value(&form, "moho_login").ok_or_else(|| answer(&url, "no login cookie"))?;
    let body = format!("token={}&csrf={login}", token.trim());
    let resp = http
        .post(&url)
        .header(reqwest::header::COOKIE, format!("moho_login={login}"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(http_err(&url))?;
    cookie_value(&resp, "moho_session")
        .ok_or_else(|| answer(&url, format!("login refused: {}", resp.status())))
}

fn server_ms(resp: &reqwest::Response) -> Option<f64> {
    resp.headers()
        .get("server-timing")?
        .to_str()
        .ok()?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("dur="))?
        .parse()
        .ok()
}

/// Requests `path` `requests + 1` times with the session.
pub async fn measure(
    http: &reqwest::Client,
    server: &str,
    session: &str,
    path: &str,
    requests: u64,
) -> Result<PageReport, DashBenchError> {
    let url = format!("{server}{path}");
    let new_hist = || Histogram::<u64>::new_with_bounds(1, 600_000_000, 3);
    let (mut server_h, mut wall_h) = (
        new_hist().map_err(|e| answer(&url, e.to_string()))?,
        new_hist().map_err(|e| answer(&url, e.to_string()))?,
    );
    let mut first = (0.0, 0.0);
    let mut bytes = 0;
    for i in 0..=requests {
        let started = Instant::now();
        let resp = http
            .get(&url)
            .header(reqwest::header::COOKIE, format!("moho_session={session}"))
            .send()
            .await
            .map_err(http_err(&url))?;
        if !resp.status().is_success() {
            return Err(answer(&url, format!("status {}", resp.status())));
        }
        let server = server_ms(&resp).ok_or_else(|| answer(&url, "no Server-Timing header"))?;
        bytes = resp.bytes().await.map_err(http_err(&url))?.len();
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        if i == 0 {
            first = (server, wall);
        } else {
            // Microseconds; display figures only.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let us = |ms: f64| (ms * 1000.0).max(1.0) as u64;
            let _ = server_h.record(us(server));
            let _ = wall_h.record(us(wall));
        }
    }
    // Display figures only.
    #[allow(clippy::cast_precision_loss)]
    let q = |h: &Histogram<u64>| {
        [0.5, 0.9, 0.99]
            .map(|p| h.value_at_quantile(p) as f64 / 1000.0)
            .into_iter()
            .chain([h.max() as f64 / 1000.0])
            .collect::<Vec<_>>()
    };
    let (s, w) = (q(&server_h), q(&wall_h));
    Ok(PageReport {
        path: path.to_owned(),
        bytes,
        first,
        server_ms: [s[0], s[1], s[2], s[3]],
        wall_ms: [w[0], w[1], w[2], w[3]],
        requests,
    })
}

/// A client for [`measure`]: no redirects followed, generous timeout.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
}
