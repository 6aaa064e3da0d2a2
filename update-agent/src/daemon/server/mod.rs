//! The update server as the daemon needs it: check in, report events, and
//! take or give back a FleetLock reboot slot. Behind [`UpdateServer`] and
//! [`RebootLock`] so that tests drive the daemon with [`fake`]; [`http`]
//! speaks the signed JSON protocol of `docs/protocol.md`.

pub mod fake;
pub mod http;

use moho_protocol::node::{CheckIn, CheckInResponse, Event};

/// A request to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Could not be sent or no answer.
    #[error("{url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// The server refused the request.
    #[error("{url}: server answered {status}: {body}")]
    Refused {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Its JSON error, as text.
        body: String,
    },
    /// The answer is not what the protocol says.
    #[error("{url}: malformed answer: {message}")]
    Malformed {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// Signing failed (the counter could not be persisted).
    #[error("signing the request: {0}")]
    Signing(String),
}

/// Check-ins and event reports.
pub trait UpdateServer: Send {
    /// `POST /v1/check-in`.
    fn check_in(&self, req: &CheckIn) -> Result<CheckInResponse, ServerError>;
    /// `POST /v1/events`.
    fn report(&self, events: &[Event]) -> Result<(), ServerError>;
}

/// The answer to `pre-reboot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAnswer {
    /// The node holds a reboot slot.
    Granted,
    /// Every slot is taken; the server's explanation.
    Refused(String),
}

/// FleetLock.
pub trait RebootLock: Send {
    /// `POST /v1/pre-reboot`.
    fn pre_reboot(&self) -> Result<LockAnswer, ServerError>;
    /// `POST /v1/steady-state`.
    fn steady_state(&self) -> Result<(), ServerError>;
}
