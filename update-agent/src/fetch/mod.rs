//! Getting bytes from the repository: the narrow [`Transport`] trait (one
//! GET, optionally of a byte range), its HTTPS and `file://`
//! implementations (HTTPS bounded by a read timeout and a minimum rate,
//! [`guard`]), a recording fake with fault injection, and the adapter that
//! lets the TUF client fetch metadata through any transport.

pub mod fake;
pub mod file;
pub mod guard;
pub mod http;
pub mod metadata;
#[cfg(test)]
mod partial_content_tests;

use std::io::Read;
use std::ops::Range;

use url::Url;

/// A fetch that failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server answered with an unexpected status.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// What was fetched.
        url: Url,
        /// The status code.
        status: u16,
    },
    /// A range was asked for and the whole file came back.
    #[error("{url}: server ignored the byte range {start}-{end} (no 206 Partial Content)")]
    RangeIgnored {
        /// What was fetched.
        url: Url,
        /// Range start.
        start: u64,
        /// Range end (exclusive).
        end: u64,
    },
    /// A `206` answer for other bytes than those asked for: refused on its
    /// headers, before a byte of the body is read or hashed.
    #[error("{url}: {source}")]
    BadPartialContent {
        /// What was fetched.
        url: Url,
        /// What was wrong.
        source: moho_release::ContentRangeError,
    },
    /// The connection or the request failed.
    #[error("{url}: {message}")]
    Transport {
        /// What was fetched.
        url: Url,
        /// Why (the whole cause chain).
        message: String,
    },
    /// A local file could not be read.
    #[error("{url}: {source}")]
    Io {
        /// What was fetched.
        url: Url,
        /// Why.
        source: std::io::Error,
    },
    /// The URL scheme is not supported.
    #[error("{0}: unsupported URL scheme (use https, http or file)")]
    Scheme(Url),
}

/// A response body.
pub type Body = Box<dyn Read + Send>;

/// One GET at a time, optionally of a byte range.
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// The body of `url` (bytes `range` of it, if given), or `Ok(None)` if
    /// there is no such file.
    fn get(&self, url: &Url, range: Option<Range<u64>>) -> Result<Option<Body>, FetchError>;
}

/// Dispatches on the URL scheme: `file://` locally, everything else over HTTP(S).
#[derive(Debug)]
pub struct SchemeTransport {
    http: http::HttpTransport,
}

impl SchemeTransport {
    /// Wraps an HTTP transport.
    pub fn new(http: http::HttpTransport) -> Self {
        Self { http }
    }
}

impl Transport for SchemeTransport {
    fn get(&self, url: &Url, range: Option<Range<u64>>) -> Result<Option<Body>, FetchError> {
        match url.scheme() {
            "file" => file::FileTransport.get(url, range),
            "https" | "http" => self.http.get(url, range),
            _ => Err(FetchError::Scheme(url.clone())),
        }
    }
}

/// The repository transport the configuration describes: `file://`
/// locally, HTTP(S) with the repository's CA and the `[update]` download
/// limits.
pub fn repository_transport(
    config: &crate::config::AgentConfig,
) -> Result<SchemeTransport, http::HttpSetupError> {
    let limits = http::DownloadLimits {
        read_timeout: config.update.read_timeout,
        stall: guard::StallPolicy {
            min_bytes_per_sec: config.update.min_bytes_per_sec,
            window: config.update.stall_window,
        },
    };
    Ok(SchemeTransport::new(http::HttpTransport::new(
        config.repository.ca_cert.as_deref(),
        limits,
    )?))
}
