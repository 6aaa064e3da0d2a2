//! An [`UpdateServer`] and [`RebootLock`] that record what they were sent
//! and answer from a script, for the daemon's tests.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use moho_protocol::node::{CheckIn, CheckInResponse, Event, NodeAction, WaitCode};

use super::{LockAnswer, RebootLock, ServerError, UpdateServer};

/// The fake's state.
#[derive(Debug, Default)]
pub struct FakeServerState {
    /// Check-ins received.
    pub check_ins: Vec<CheckIn>,
    /// Events received, in order.
    pub events: Vec<Event>,
    /// Answers to give, first first; when empty: wait 600 s, up to date.
    pub answers: VecDeque<NodeAction>,
    /// FleetLock calls (`pre-reboot`, `steady-state`).
    pub lock_calls: Vec<&'static str>,
    /// Whether `pre-reboot` is refused.
    pub lock_busy: bool,
    /// Whether event reports fail (server down).
    pub reports_fail: bool,
}

/// The fake; clones share state.
#[derive(Debug, Clone, Default)]
pub struct FakeServer(pub Arc<Mutex<FakeServerState>>);

impl FakeServer {
    /// Runs `f` on the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut FakeServerState) -> T) -> T {
        let mut s = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut s)
    }

    /// Event type names received so far.
    pub fn event_types(&self) -> Vec<&'static str> {
        self.with(|s| s.events.iter().map(|e| e.kind.type_name()).collect())
    }
}

impl UpdateServer for FakeServer {
    fn check_in(&self, req: &CheckIn) -> Result<CheckInResponse, ServerError> {
        self.with(|s| {
            s.check_ins.push(req.clone());
            let action = s.answers.pop_front().unwrap_or(NodeAction::Wait {
                retry_after_secs: 600,
                code: WaitCode::UpToDate,
                reason: "up to date".into(),
            });
            Ok(CheckInResponse {
                action,
                repository_url: "https://fake.invalid/repo".into(),
            })
        })
    }

    fn report(&self, events: &[Event]) -> Result<(), ServerError> {
        self.with(|s| {
            if s.reports_fail {
                return Err(ServerError::Transport {
                    url: "https://fake.invalid/v1/events".into(),
                    message: "connection refused".into(),
                });
            }
            s.events.extend_from_slice(events);
            Ok(())
        })
    }
}

impl RebootLock for FakeServer {
    fn pre_reboot(&self) -> Result<LockAnswer, ServerError> {
        self.with(|s| {
            s.lock_calls.push("pre-reboot");
            Ok(if s.lock_busy {
                LockAnswer::Refused("all 1 slots of group default are held".into())
            } else {
                LockAnswer::Granted
            })
        })
    }

    fn steady_state(&self) -> Result<(), ServerError> {
        self.with(|s| {
            s.lock_calls.push("steady-state");
            Ok(())
        })
    }
}
