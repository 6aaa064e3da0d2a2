//! The admin API as the commands see it: [`Transport`] sends one request
//! (the real [`HttpTransport`] over HTTPS with the bearer token, or the
//! recording [`FakeTransport`] in unit tests), and [`Api`] turns answers
//! into typed values or a [`CliError`] carrying the server's error code.

use std::cell::RefCell;
use std::collections::VecDeque;

use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::CliError;
use crate::settings::Settings;

/// HTTP methods the admin API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One request: a path under `/api/v1` (with its query) and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path under `/api/v1`, e.g. `/nodes?group=db`.
    pub path: String,
    /// JSON body.
    pub body: Option<serde_json::Value>,
}

/// An answer: status and body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

/// Sends requests to the admin API.
pub trait Transport {
    /// Sends `req`; only a failure to get any answer is an error here.
    fn send(&self, req: &Request) -> Result<Response, CliError>;
}

/// The real transport: blocking HTTPS (or loopback HTTP) with the token.
#[derive(Debug)]
pub struct HttpTransport {
    client: reqwest::blocking::Client,
    base: Url,
    token: String,
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

impl HttpTransport {
    /// A client for `settings` (reads the CA file, if any).
    pub fn new(settings: &Settings) -> Result<Self, CliError> {
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("moho-admin/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_cert {
            let pem = std::fs::read(path).map_err(|source| CliError::File {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                CliError::Usage(format!(
                    "CA file {}: not PEM certificates: {}",
                    path.display(),
                    chain(&e)
                ))
            })?;
            if certs.is_empty() {
                return Err(CliError::Usage(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| CliError::Usage(format!("cannot set up HTTPS: {}", chain(&e))))?;
        Ok(Self {
            client,
            base: settings.server.clone(),
            token: settings.token.clone(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base.as_str().trim_end_matches('/'))
    }
}

impl Transport for HttpTransport {
    fn send(&self, req: &Request) -> Result<Response, CliError> {
        let url = self.url(&req.path);
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut r = self
            .client
            .request(method, &url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = &req.body {
            r = r.json(b);
        }
        let unreachable = |e: reqwest::Error| CliError::Unreachable {
            url: url.clone(),
            message: chain(&e),
        };
        let resp = r.send().map_err(unreachable)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().map_err(unreachable)?.to_vec();
        Ok(Response { status, body })
    }
}

/// A transport that answers from a queue and records what was sent.
#[derive(Debug, Default)]
pub struct FakeTransport {
    replies: RefCell<VecDeque<Response>>,
    sent: RefCell<Vec<Request>>,
}

impl FakeTransport {
    /// Queues an answer.
    pub fn reply(&self, status: u16, body: serde_json::Value) {
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.replies
            .borrow_mut()
            .push_back(Response { status, body });
    }

    /// What was sent so far.
    pub fn sent(&self) -> Vec<Request> {
        self.sent.borrow().clone()
    }
}

impl Transport for FakeTransport {
    fn send(&self, req: &Request) -> Result<Response, CliError> {
        self.sent.borrow_mut().push(req.clone());
        self.replies
            .borrow_mut()
            .pop_front()
            .ok_or_else(|| CliError::Unreachable {
                url: req.path.clone(),
                message: "no answer queued in the fake".into(),
            })
    }
}

/// Percent-encodes one path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?k=v&...` with the given pairs (those with a value).
pub fn with_query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// Typed calls on a transport.
#[derive(Clone, Copy)]
pub struct Api<'a> {
    t: &'a dyn Transport,
}

impl std::fmt::Debug for Api<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Api")
    }
}

impl<'a> Api<'a> {
    /// Calls through `t`.
    pub fn new(t: &'a dyn Transport) -> Self {
        Self { t }
    }

    /// Sends and returns the body of a 2xx answer, or the server's error.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Vec<u8>, CliError> {
        let req = Request {
            method,
            path: path.to_owned(),
            body,
        };
        let resp = self.t.send(&req)?;
        if (200..300).contains(&resp.status) {
            return Ok(resp.body);
        }
        match serde_json::from_slice::<moho_protocol::ApiError>(&resp.body) {
            Ok(doc) => Err(CliError::Api {
                method: method.as_str().to_owned(),
                path: path.to_owned(),
                status: resp.status,
                code: doc.error.code,
                message: doc.error.message,
            }),
            Err(_) => Err(CliError::Api {
                method: method.as_str().to_owned(),
                path: path.to_owned(),
                status: resp.status,
                code: format!("http_{}", resp.status),
                message: String::from_utf8_lossy(&resp.body)
                    .chars()
                    .take(200)
                    .collect(),
            }),
        }
    }

    fn parse<T: DeserializeOwned>(method: Method, path: &str, body: &[u8]) -> Result<T, CliError> {
        serde_json::from_slice(body).map_err(|e| CliError::BadAnswer {
            method: method.as_str().to_owned(),
            path: path.to_owned(),
            status: 200,
            message: e.to_string(),
        })
    }

    /// GET, typed answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let body = self.call(Method::Get, path, None)?;
        Self::parse(Method::Get, path, &body)
    }

    /// A request with a JSON body, typed answer.
    pub fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, CliError> {
        let json = serde_json::to_value(body).map_err(|e| CliError::Usage(e.to_string()))?;
        let answer = self.call(method, path, Some(json))?;
        Self::parse(method, path, &answer)
    }

    /// DELETE, typed answer.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let body = self.call(Method::Delete, path, None)?;
        Self::parse(Method::Delete, path, &body)
    }

    /// A request with no body and no answer body (204).
    pub fn call_empty(&self, method: Method, path: &str) -> Result<(), CliError> {
        self.call(method, path, None).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_servers_code_and_queries_are_encoded() {
        let fake = FakeTransport::default();
        fake.reply(
            404,
            serde_json::json!({"error": {"code": "unknown_node", "message": "unknown node \"x\""}}),
        );
        let api = Api::new(&fake);
        let err = api.get::<serde_json::Value>("/nodes/x").err();
        let Some(CliError::Api { status, code, .. }) = err else {
            panic!("{err:?}");
        };
        assert_eq!((status, code.as_str()), (404, "unknown_node"));
        fake.reply(502, serde_json::json!("bad gateway"));
        let err = api.get::<serde_json::Value>("/x").err();
        assert!(
            matches!(&err, Some(CliError::Api { code, .. }) if code == "http_502"),
            "{err:?}"
        );
        assert_eq!(
            with_query(
                "/audit",
                &[("actor", Some("bob@x y".into())), ("limit", None)]
            ),
            "/audit?actor=bob%40x%20y"
        );
        assert_eq!(fake.sent().len(), 2);
    }
}
