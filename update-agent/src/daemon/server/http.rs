//! [`UpdateServer`] and [`RebootLock`] over HTTPS with reqwest: JSON bodies
//! signed with the node's key (`moho_protocol::signing`) and, for
//! FleetLock, the `fleet-lock-protocol: true` header.

use std::sync::Arc;
use std::time::Duration;

use moho_protocol::fleetlock::{
    ClientParams, FleetLockError, FleetLockRequest, PRE_REBOOT_PATH, PROTOCOL_HEADER,
    STEADY_STATE_PATH,
};
use moho_protocol::node::{
    CHECK_IN_PATH, CheckIn, CheckInResponse, EVENTS_PATH, Event, EventReport,
};
use reqwest::blocking::Client;
use url::Url;

use super::{LockAnswer, RebootLock, ServerError, UpdateServer};
use crate::daemon::clock::Clock;
use crate::node_identity::NodeIdentity;

/// A signed JSON client for one base URL.
#[derive(Debug, Clone)]
pub struct SignedClient {
    client: Client,
    base: Url,
    identity: Arc<NodeIdentity>,
    clock: Arc<dyn Clock>,
}

impl SignedClient {
    /// A client for `base` (a directory URL) with a 60 s timeout; request
    /// counters come from `clock`.
    pub fn new(
        base: Url,
        extra_ca: Option<&std::path::Path>,
        identity: Arc<NodeIdentity>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, crate::fetch::http::HttpSetupError> {
        let client = crate::fetch::http::client_builder(extra_ca)?
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| {
                crate::fetch::http::HttpSetupError::Client(moho_core::report::render_chain(&e))
            })?;
        Ok(Self {
            client,
            base,
            identity,
            clock,
        })
    }

    /// POSTs `body` to `path` (absolute, e.g. `/v1/check-in`, resolved
    /// against the base URL's directory), signed; returns status and body.
    fn post(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        fleetlock: bool,
    ) -> Result<(u16, Vec<u8>, String), ServerError> {
        let url =
            self.base
                .join(path.trim_start_matches('/'))
                .map_err(|e| ServerError::Transport {
                    url: format!("{}{path}", self.base),
                    message: e.to_string(),
                })?;
        let shown = url.to_string();
        let bytes = serde_json::to_vec(body).map_err(|e| ServerError::Malformed {
            url: shown.clone(),
            message: e.to_string(),
        })?;
        let now_ms = u64::try_from(self.clock.now().as_millisecond()).unwrap_or(0);
        let sig = self
            .identity
            .sign("POST", url.path(), &bytes, now_ms)
            .map_err(|e| ServerError::Signing(e.to_string()))?;
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (k, v) in sig.headers() {
            req = req.header(k, v);
        }
        if fleetlock {
            req = req.header(PROTOCOL_HEADER, "true");
        }
        let resp = req.body(bytes).send().map_err(|e| ServerError::Transport {
            url: shown.clone(),
            message: moho_core::report::render_chain(&e),
        })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().map_err(|e| ServerError::Transport {
            url: shown.clone(),
            message: moho_core::report::render_chain(&e),
        })?;
        Ok((status, body.to_vec(), shown))
    }
}

fn refused(url: String, status: u16, body: &[u8]) -> ServerError {
    ServerError::Refused {
        url,
        status,
        body: String::from_utf8_lossy(body).chars().take(500).collect(),
    }
}

/// The Moho update server.
#[derive(Debug, Clone)]
pub struct HttpUpdateServer(pub SignedClient);

impl UpdateServer for HttpUpdateServer {
    fn check_in(&self, req: &CheckIn) -> Result<CheckInResponse, ServerError> {
        let (status, body, url) = self.0.post(CHECK_IN_PATH, req, false)?;
        if status != 200 {
            return Err(refused(url, status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| ServerError::Malformed {
            url,
            message: e.to_string(),
        })
    }

    fn report(&self, events: &[Event]) -> Result<(), ServerError> {
        let report = EventReport {
            node_id: self.0.identity.id.clone(),
            events: events.to_vec(),
        };
        let (status, body, url) = self.0.post(EVENTS_PATH, &report, false)?;
        if status == 200 {
            Ok(())
        } else {
            Err(refused(url, status, &body))
        }
    }
}

/// A FleetLock server (ours or any other).
#[derive(Debug, Clone)]
pub struct HttpRebootLock {
    /// The client (signing is harmless for servers that ignore it).
    pub client: SignedClient,
    /// The lock group.
    pub group: String,
}

impl HttpRebootLock {
    fn body(&self) -> FleetLockRequest {
        FleetLockRequest {
            client_params: ClientParams {
                id: self.client.identity.id.clone(),
                group: self.group.clone(),
            },
        }
    }
}

impl RebootLock for HttpRebootLock {
    fn pre_reboot(&self) -> Result<LockAnswer, ServerError> {
        let (status, body, url) = self.client.post(PRE_REBOOT_PATH, &self.body(), true)?;
        match status {
            200 => Ok(LockAnswer::Granted),
            409 => Ok(LockAnswer::Refused(
                serde_json::from_slice::<FleetLockError>(&body)
                    .map(|e| e.value)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned()),
            )),
            _ => Err(refused(url, status, &body)),
        }
    }

    fn steady_state(&self) -> Result<(), ServerError> {
        let (status, body, url) = self.client.post(STEADY_STATE_PATH, &self.body(), true)?;
        if status == 200 {
            Ok(())
        } else {
            Err(refused(url, status, &body))
        }
    }
}
