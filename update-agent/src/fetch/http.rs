//! HTTPS (and plain HTTP, for loopback tests) with reqwest and rustls.
//! Ranges are requested with `Range: bytes=a-b` and must come back as 206.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use url::Url;

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

/// A blocking HTTP client.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: Client,
}

impl HttpTransport {
    /// A client trusting the system roots plus, if given, the PEM
    /// certificates in `extra_ca`.
    pub fn new(extra_ca: Option<&Path>) -> Result<Self, HttpSetupError> {
        Ok(Self {
            client: client_builder(extra_ca)?
                .timeout(None::<Duration>)
                .build()
                .map_err(|e| HttpSetupError::Client(moho_core::report::render_chain(&e)))?,
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
        match (resp.status(), &range) {
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (StatusCode::PARTIAL_CONTENT, Some(_)) | (StatusCode::OK, None) => {
                Ok(Some(Box::new(resp)))
            }
            (StatusCode::OK, Some(r)) if r.start == 0 => {
                Ok(Some(Box::new(std::io::Read::take(resp, r.end))))
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
