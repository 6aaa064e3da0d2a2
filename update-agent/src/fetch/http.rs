//! HTTPS (and plain HTTP, for loopback tests) with reqwest and rustls.
//! Ranges are requested with `Range: bytes=a-b` and must come back as 206
//! whose `Content-Range` names exactly those bytes ([`check_partial`]).
//! Nothing hangs: connecting, the response headers and every read of the
//! body are bounded by the read timeout, and the body is a [`StallGuard`]
//! that breaks off a transfer slower than the minimum rate.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use url::Url;

use super::guard::{StallGuard, StallPolicy};
use super::{Body, FetchError, Transport};

/// The HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    /// The CA file could not be read.
    #[error("{}: {source}", path.display())]
    ReadCa {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file is not PEM certificates.
    #[error("{}: not a PEM certificate: {message}", path.display())]
    BadCa {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// reqwest refused the configuration.
    #[error("building the HTTP client: {0}")]
    Client(String),
}

/// How long a download may wait and how slow it may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadLimits {
    /// The longest wait for the response headers or for the next bytes.
    pub read_timeout: Duration,
    /// The slowest acceptable transfer.
    pub stall: StallPolicy,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        Self {
            read_timeout: Duration::from_secs(30),
            stall: StallPolicy::default(),
        }
    }
}

/// A blocking HTTP client.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Client,
    limits: DownloadLimits,
}

impl HttpTransport {
    /// A client trusting the system roots plus, if given, the PEM
    /// certificates in `extra_ca`, within `limits`.
    pub fn new(extra_ca: Option<&Path>, limits: DownloadLimits) -> Result<Self, HttpSetupError> {
        Ok(Self {
            // reqwest's blocking timeout bounds the wait for the headers and
            // each read of the body: a read timeout, not a deadline.
            client: client_builder(extra_ca)?
                .connect_timeout(limits.read_timeout.min(Duration::from_secs(15)))
                .timeout(limits.read_timeout)
                .build()
                .map_err(|e| HttpSetupError::Client(moho_core::report::render_chain(&e)))?,
            limits,
        })
    }

    fn guard(&self, url: &Url, body: impl std::io::Read + Send + 'static) -> Body {
        let body = TimedBody {
            inner: body,
            url: url.clone(),
            timeout: self.limits.read_timeout,
        };
        Box::new(StallGuard::new(body, url.clone(), self.limits.stall))
    }
}

/// A response body whose read timeout says so: reqwest reports a read that
/// waited too long as "error decoding response body", with the timeout
/// only deep in its source chain.
struct TimedBody<R> {
    inner: R,
    url: Url,
    timeout: Duration,
}

impl<R: std::io::Read> std::io::Read for TimedBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let timed_out = e.kind() == std::io::ErrorKind::TimedOut
                || e.get_ref()
                    .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
                    .is_some_and(reqwest::Error::is_timeout);
            if timed_out {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "{}: timed out: no data for {} (update.read_timeout)",
                        self.url,
                        humantime::format_duration(self.timeout)
                    ),
                )
            } else {
                e
            }
        })
    }
}

/// A client builder trusting the system roots plus, if given, the PEM
/// certificates in `extra_ca` (shared with the update server client).
pub fn client_builder(
    extra_ca: Option<&Path>,
) -> Result<reqwest::blocking::ClientBuilder, HttpSetupError> {
    let mut builder = Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .user_agent(concat!("moho-update-agent/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = extra_ca {
        let pem = std::fs::read(path).map_err(|source| HttpSetupError::ReadCa {
            path: path.to_owned(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| HttpSetupError::BadCa {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(HttpSetupError::BadCa {
                path: path.to_owned(),
                message: "no certificate found".into(),
            });
        }
        builder = builder.tls_certs_merge(certs);
    }
    Ok(builder)
}

/// Refuses a `206` answer to a request for `asked` whose `Content-Range`
/// (or `Content-Length`) names other bytes, before its body is read.
pub fn check_partial(
    url: &Url,
    asked: &Range<u64>,
    headers: &reqwest::header::HeaderMap,
) -> Result<(), FetchError> {
    let header = |name| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)"))
    };
    let length = header(reqwest::header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    moho_release::check_partial_content(
        header(reqwest::header::CONTENT_RANGE),
        length,
        asked.clone(),
    )
    .map_err(|source| FetchError::BadPartialContent {
        url: url.clone(),
        source,
    })
}

impl Transport for HttpTransport {
    fn get(&self, url: &Url, range: Option<Range<u64>>) -> Result<Option<Body>, FetchError> {
        let mut req = self.client.get(url.clone());
        if let Some(r) = &range {
            if r.is_empty() {
                return Ok(Some(Box::new(std::io::empty())));
            }
            req = req.header(
                reqwest::header::RANGE,
                format!("bytes={}-{}", r.start, r.end - 1),
            );
        }
        let resp = req.send().map_err(|e| FetchError::Transport {
            url: url.clone(),
            message: moho_core::report::render_chain(&e),
        })?;
        if resp.status() == StatusCode::PARTIAL_CONTENT
            && let Some(r) = &range
        {
            check_partial(url, r, resp.headers())?;
        }
        match (resp.status(), &range) {
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (StatusCode::PARTIAL_CONTENT, Some(_)) | (StatusCode::OK, None) => {
                Ok(Some(self.guard(url, resp)))
            }
            (StatusCode::OK, Some(r)) if r.start == 0 => {
                Ok(Some(self.guard(url, std::io::Read::take(resp, r.end))))
            }
            (StatusCode::OK, Some(r)) => Err(FetchError::RangeIgnored {
                url: url.clone(),
                start: r.start,
                end: r.end,
            }),
            (status, _) => Err(FetchError::Status {
                url: url.clone(),
                status: status.as_u16(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Instant;

    use super::*;

    /// A server that answers one request with `head`, then sends `body` one
    /// byte every `gap` (or, with `None`, holds the connection open silently).
    fn stalling_server(head: &'static str, body: &'static [u8], gap: Option<Duration>) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut req = [0u8; 4096];
            let _ = conn.read(&mut req);
            let _ = conn.write_all(head.as_bytes());
            match gap {
                None => std::thread::sleep(Duration::from_secs(30)),
                Some(gap) => {
                    for b in body {
                        if conn.write_all(std::slice::from_ref(b)).is_err() {
                            return;
                        }
                        std::thread::sleep(gap);
                    }
                }
            }
        });
        format!("http://127.0.0.1:{port}/metadata/timestamp.json")
            .parse()
            .unwrap()
    }

    fn limits() -> DownloadLimits {
        DownloadLimits {
            read_timeout: Duration::from_secs(1),
            stall: StallPolicy {
                min_bytes_per_sec: 64,
                window: Duration::from_secs(2),
            },
        }
    }

    #[test]
    fn headers_then_nothing_ends_with_a_read_timeout() {
        let url = stalling_server("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"", None);
        let t = HttpTransport::new(None, limits()).unwrap();
        let started = Instant::now();
        let mut body = t.get(&url, None).unwrap().unwrap();
        let mut out = Vec::new();
        let err = body.read_to_end(&mut out).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
        assert!(out.is_empty());
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert_eq!(
            err.to_string(),
            format!("{url}: timed out: no data for 1s (update.read_timeout)")
        );
    }

    #[test]
    fn a_response_that_never_comes_ends_with_a_timeout_naming_the_url() {
        let url = stalling_server("", b"", None);
        let t = HttpTransport::new(None, limits()).unwrap();
        let started = Instant::now();
        let err = t.get(&url, None).err().unwrap().to_string();
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
        assert!(err.contains("127.0.0.1"), "{err}");
    }

    #[test]
    fn a_206_for_other_bytes_is_refused_before_its_body_and_the_right_one_is_read() {
        // Asked for bytes 10-13; a server (or a cache in between) answers
        // with the file's first four bytes instead.
        let lying = stalling_server(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/100\r\nContent-Length: 4\r\n\r\n",
            b"abcd",
            Some(Duration::ZERO),
        );
        let t = HttpTransport::new(None, limits()).unwrap();
        let err = t.get(&lying, Some(10..14)).err().unwrap();
        assert!(matches!(err, FetchError::BadPartialContent { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(lying.as_str()) && msg.contains("10-13"),
            "{msg}"
        );

        let honest = stalling_server(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-13/100\r\nContent-Length: 4\r\n\r\n",
            b"klmn",
            Some(Duration::ZERO),
        );
        let mut body = t.get(&honest, Some(10..14)).unwrap().unwrap();
        let mut out = Vec::new();
        body.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"klmn");
    }

    #[test]
    fn one_byte_a_second_is_broken_off_as_a_stall() {
        let body: &'static [u8] = &[b'{'; 200];
        let url = stalling_server(
            "HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n",
            body,
            Some(Duration::from_millis(500)),
        );
        let t = HttpTransport::new(None, limits()).unwrap();
        let started = Instant::now();
        let mut b = t.get(&url, None).unwrap().unwrap();
        let mut out = Vec::new();
        let err = b.read_to_end(&mut out).unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
        assert!(
            err.contains("timestamp.json: stalled")
                && err.contains("below the minimum of 64 bytes/s"),
            "{err}"
        );
    }
}
