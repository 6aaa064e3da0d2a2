//! The EC2-style instance metadata service, the last provisioning source
//! (DESIGN §8): the document is the instance's user data at
//! `http://169.254.169.254/latest/user-data`, as EC2 and the clouds that
//! copy its metadata API (OpenStack, and others) serve it.
//!
//! The IMDSv2 session token is asked for first (`PUT /latest/api/token`);
//! a service that answers the PUT with an HTTP error (a v1-only service,
//! 403/404/405) is asked without a token (IMDSv1). No answer at all to the
//! PUT (no route, refused, timed out) means there is no metadata service:
//! that is the normal case on bare metal and under most hypervisors, so it
//! is `Ok(None)` after short attempts bounded by [`Limits`] (retried for a few
//! seconds while the link may still be coming up), never a long wait. Once
//! the service has answered, a failure is an error (the service is there;
//! its document could not be read). A 404 for the
//! user data is a service without user data: `Ok(None)`.
//!
//! HTTP goes through the [`MetadataHttp`] seam; [`HttpMetadata`] is the
//! real one (reqwest, no proxy, short timeouts).

use std::time::Duration;

use super::local::MAX_DOCUMENT;
use super::source::{Found, Source, SourceError, SourceName};

/// Where EC2-style clouds serve instance metadata.
pub const DEFAULT_BASE: &str = "http://169.254.169.254";

/// The token's lifetime asked for, in seconds (one provisioning run needs
/// seconds; EC2 allows 1 to 21600).
pub const TOKEN_TTL_SECONDS: u32 = 300;

/// What a request got back, when the service answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body (at most [`MAX_DOCUMENT`] + 1 bytes are read).
    pub body: Vec<u8>,
}

/// A request that got no HTTP answer (no route, refused, timed out, cut).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoAnswer(pub String);

/// The two requests the source makes (the seam for tests).
pub trait MetadataHttp {
    /// `PUT url` with `X-aws-ec2-metadata-token-ttl-seconds: ttl`.
    fn put_token(&self, url: &str, ttl_seconds: u32) -> Result<Answer, NoAnswer>;
    /// `GET url`, with `X-aws-ec2-metadata-token: token` if given.
    fn get(&self, url: &str, token: Option<&str>) -> Result<Answer, NoAnswer>;
}

/// How long the real client waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connecting (a machine with a route but no service waits this long).
    pub connect: Duration,
    /// A whole request, connecting included.
    pub request: Duration,
    /// How long the token PUT is retried, once a second, while it gets no
    /// answer at all (no route yet, refused, timed out, reset): the link or
    /// relay that carries it may come up just after `network-online.target`
    /// (which one link reaching suffices for). A machine without a service
    /// gives up after this, so a boot without any provision document waits
    /// at most this plus one request.
    pub retry: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(5),
            retry: Duration::from_secs(10),
        }
    }
}

/// Whether `e` failed for want of a route (no address on the network, no
/// link up yet), as opposed to a timeout or a refusal.
fn no_route(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// The real client: reqwest, plain HTTP to a link-local address, no proxy
/// from the environment, bounded by [`Limits`].
#[derive(Debug, Clone, Default)]
pub struct HttpMetadata {
    /// The timeouts.
    pub limits: Limits,
}

impl HttpMetadata {
    fn client(&self) -> Result<reqwest::blocking::Client, NoAnswer> {
        reqwest::blocking::Client::builder()
            .no_proxy()
            .connect_timeout(self.limits.connect)
            .timeout(self.limits.request)
            .user_agent(concat!("moho-update-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NoAnswer(format!("building the HTTP client: {e}")))
    }

    fn answer(resp: reqwest::blocking::Response) -> Result<Answer, NoAnswer> {
        use std::io::Read;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        resp.take(MAX_DOCUMENT + 1)
            .read_to_end(&mut body)
            .map_err(|e| NoAnswer(format!("reading the body: {e}")))?;
        Ok(Answer { status, body })
    }
}

impl MetadataHttp for HttpMetadata {
    fn put_token(&self, url: &str, ttl_seconds: u32) -> Result<Answer, NoAnswer> {
        let client = self.client()?;
        let until = std::time::Instant::now() + self.limits.retry;
        loop {
            match client
                .put(url)
                .header("X-aws-ec2-metadata-token-ttl-seconds", ttl_seconds)
                .send()
            {
                Ok(resp) => return Self::answer(resp),
                Err(e) if std::time::Instant::now() < until => {
                    let why = if no_route(&e) {
                        "no route to"
                    } else {
                        "no answer from"
                    };
                    tracing::debug!(url, "{why} the metadata service yet: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(NoAnswer(moho_core::report::render_chain(&e))),
            }
        }
    }

    fn get(&self, url: &str, token: Option<&str>) -> Result<Answer, NoAnswer> {
        let mut req = self.client()?.get(url);
        if let Some(t) = token {
            req = req.header("X-aws-ec2-metadata-token", t);
        }
        let resp = req
            .send()
            .map_err(|e| NoAnswer(moho_core::report::render_chain(&e)))?;
        Self::answer(resp)
    }
}

/// The metadata service's user data as a provisioning source.
pub struct MetadataService<'h> {
    /// `http://169.254.169.254` in clouds; a loopback server in tests.
    pub base: String,
    /// How requests are made.
    pub http: &'h dyn MetadataHttp,
}

impl std::fmt::Debug for MetadataService<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataService")
            .field("base", &self.base)
            .finish()
    }
}

impl Source for MetadataService<'_> {
    fn kind(&self) -> &'static str {
        "metadata service"
    }

    fn probe(&mut self) -> Result<Option<Found>, SourceError> {
        let base = self.base.trim_end_matches('/');
        let token_url = format!("{base}/latest/api/token");
        let data_url = format!("{base}/latest/user-data");
        let origin = SourceName::MetadataService(data_url.clone());
        let read = |detail: String| SourceError::Read {
            origin: origin.clone(),
            detail,
        };
        let token = match self.http.put_token(&token_url, TOKEN_TTL_SECONDS) {
            Err(NoAnswer(why)) => {
                tracing::debug!(url = token_url, "no metadata service: {why}");
                return Ok(None);
            }
            Ok(a) if a.status == 200 => {
                let t = String::from_utf8(a.body)
                    .map_err(|_| read(format!("PUT {token_url}: the token is not text")))?;
                let t = t.trim().to_owned();
                if t.is_empty() || t.len() > 4096 || t.bytes().any(|b| b.is_ascii_control()) {
                    return Err(read(format!(
                        "PUT {token_url}: answered 200 without a usable token"
                    )));
                }
                Some(t)
            }
            Ok(a) => {
                tracing::info!(
                    url = token_url,
                    status = a.status,
                    "no IMDSv2 session token: asking without one (IMDSv1)"
                );
                None
            }
        };
        let version = if token.is_some() { "IMDSv2" } else { "IMDSv1" };
        let a = self
            .http
            .get(&data_url, token.as_deref())
            .map_err(|NoAnswer(why)| read(format!("GET ({version}): {why}")))?;
        match a.status {
            200 if a.body.len() as u64 > MAX_DOCUMENT => {
                Err(read(format!("larger than {MAX_DOCUMENT} bytes")))
            }
            200 => Ok(Some(Found {
                origin,
                bytes: a.body,
            })),
            404 => {
                tracing::info!(url = data_url, "the metadata service has no user data");
                Ok(None)
            }
            s => Err(read(format!("GET ({version}) answered HTTP {s}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Answers from a script; records every request.
    struct Fake {
        put: Result<Answer, NoAnswer>,
        get: Result<Answer, NoAnswer>,
        calls: RefCell<Vec<String>>,
    }

    fn ok(status: u16, body: &str) -> Result<Answer, NoAnswer> {
        Ok(Answer {
            status,
            body: body.as_bytes().to_vec(),
        })
    }

    impl MetadataHttp for Fake {
        fn put_token(&self, url: &str, ttl: u32) -> Result<Answer, NoAnswer> {
            self.calls.borrow_mut().push(format!("PUT {url} ttl={ttl}"));
            self.put.clone()
        }
        fn get(&self, url: &str, token: Option<&str>) -> Result<Answer, NoAnswer> {
            self.calls
                .borrow_mut()
                .push(format!("GET {url} token={}", token.unwrap_or("-")));
            self.get.clone()
        }
    }

    fn probe(
        put: Result<Answer, NoAnswer>,
        get: Result<Answer, NoAnswer>,
    ) -> (Result<Option<Found>, SourceError>, Vec<String>) {
        let fake = Fake {
            put,
            get,
            calls: RefCell::default(),
        };
        let mut src = MetadataService {
            base: "http://169.254.169.254/".into(),
            http: &fake,
        };
        let r = src.probe();
        (r, fake.calls.into_inner())
    }

    const DATA: &str = "http://169.254.169.254/latest/user-data";

    #[test]
    fn the_user_data_is_read_with_an_imdsv2_token_when_the_service_gives_one() {
        let (r, calls) = probe(ok(200, "tok-123\n"), ok(200, "version = 1\n"));
        let found = r.unwrap().unwrap();
        assert_eq!(found.origin, SourceName::MetadataService(DATA.into()));
        assert_eq!(found.bytes, b"version = 1\n");
        assert_eq!(
            calls,
            [
                format!("PUT http://169.254.169.254/latest/api/token ttl={TOKEN_TTL_SECONDS}"),
                format!("GET {DATA} token=tok-123"),
            ]
        );
    }

    #[test]
    fn a_service_that_refuses_the_token_put_is_asked_without_one() {
        for status in [403, 404, 405] {
            let (r, calls) = probe(ok(status, ""), ok(200, "version = 1\n"));
            assert_eq!(r.unwrap().unwrap().bytes, b"version = 1\n");
            assert_eq!(calls[1], format!("GET {DATA} token=-"));
        }
    }

    #[test]
    fn no_answer_to_the_token_put_means_no_service_and_nothing_else_is_asked() {
        let (r, calls) = probe(
            Err(NoAnswer("connect: network is unreachable".into())),
            ok(200, "version = 1\n"),
        );
        assert_eq!(r, Ok(None));
        assert_eq!(calls.len(), 1, "{calls:?}");
    }

    #[test]
    fn a_service_without_user_data_is_no_document() {
        let (r, _) = probe(ok(200, "tok"), ok(404, "not found"));
        assert_eq!(r, Ok(None));
    }

    #[test]
    fn a_service_that_answered_and_then_fails_is_an_error_naming_the_url() {
        for (put, get, needle) in [
            (
                ok(200, "tok"),
                ok(401, ""),
                "GET (IMDSv2) answered HTTP 401",
            ),
            (ok(405, ""), ok(500, ""), "GET (IMDSv1) answered HTTP 500"),
            (
                ok(200, "tok"),
                Err(NoAnswer("operation timed out".into())),
                "GET (IMDSv2): operation timed out",
            ),
            (
                ok(200, ""),
                ok(200, "version = 1"),
                "without a usable token",
            ),
        ] {
            let (r, _) = probe(put, get);
            let e = r.unwrap_err().to_string();
            assert!(
                e.contains(needle) && e.contains(&format!("metadata service {DATA}")),
                "{e}"
            );
        }
        let big = "x".repeat(1024 * 1024 + 1);
        let (r, _) = probe(ok(200, "tok"), ok(200, &big));
        assert!(r.unwrap_err().to_string().contains("larger than"));
    }

    /// A tiny metadata service on loopback: IMDSv2 (token required) or
    /// v1-only (PUT refused with 405).
    fn serve(v2: bool, requests: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..requests {
                let (c, _) = listener.accept().unwrap();
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    headers.push(h.trim().to_ascii_lowercase());
                }
                let has = |p: &str| headers.iter().any(|h| h.starts_with(p));
                let req = line
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                let (status, body) = match req.as_str() {
                    "PUT /latest/api/token"
                        if v2 && has("x-aws-ec2-metadata-token-ttl-seconds: 300") =>
                    {
                        ("200 OK", "T0KEN")
                    }
                    "PUT /latest/api/token" => ("405 Method Not Allowed", ""),
                    "GET /latest/user-data" if !v2 || has("x-aws-ec2-metadata-token: t0ken") => {
                        ("200 OK", "version = 1\nhostname = \"m1\"\n")
                    }
                    "GET /latest/user-data" => ("401 Unauthorized", ""),
                    _ => ("404 Not Found", ""),
                };
                seen.push(format!("{req} {}", status.split(' ').next().unwrap()));
                let mut c = c;
                write!(
                    c,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
            seen
        });
        (base, handle)
    }

    #[test]
    fn the_real_client_reads_user_data_from_a_loopback_service_v2_and_v1() {
        for v2 in [true, false] {
            let (base, server) = serve(v2, 2);
            let http = HttpMetadata::default();
            let mut src = MetadataService {
                base: base.clone(),
                http: &http,
            };
            let found = src.probe().unwrap().unwrap();
            assert_eq!(found.bytes, b"version = 1\nhostname = \"m1\"\n");
            let want_put = if v2 { "200" } else { "405" };
            assert_eq!(
                server.join().unwrap(),
                [
                    format!("PUT /latest/api/token {want_put}"),
                    "GET /latest/user-data 200".to_owned()
                ]
            );
        }
    }

    #[test]
    fn the_real_client_finds_no_service_where_nothing_listens() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let http = HttpMetadata {
            limits: Limits {
                retry: Duration::from_millis(1500),
                ..Limits::default()
            },
        };
        let mut src = MetadataService {
            base: format!("http://127.0.0.1:{port}"),
            http: &http,
        };
        assert_eq!(src.probe(), Ok(None));
    }
}
