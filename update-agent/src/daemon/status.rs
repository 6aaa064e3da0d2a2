//! What the daemon shows the world: the properties of `org.moho.Agent1`
//! (and of `update-agent status --json`), kept in one shared value that the
//! daemon updates and the D-Bus service reads.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The daemon's status. Strings are empty when a value is unknown or unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// State name (`idle`, `downloading`, `updated-need-reboot`, ...).
    pub state: String,
    /// Progress of the current install, 0.0–1.0.
    pub progress: f64,
    /// `A` or `B`.
    pub booted_slot: String,
    /// Version of the booted slot.
    pub booted_version: String,
    /// Version staged in the other slot, if any.
    pub staged_version: String,
    /// Time of the last check (RFC 3339).
    pub last_check: String,
    /// The last error, with its cause chain.
    pub last_error: String,
    /// Why a staged reboot is waiting (empty when it is not).
    pub reboot_blocked_by: String,
    /// On trial: when the trial fails if `boot-complete.target` is not
    /// reached by then (RFC 3339; empty when not on trial).
    #[serde(default)]
    pub trial_deadline: String,
}

/// Called with the old and new status after every change.
pub type StatusListener = Box<dyn Fn(&AgentStatus, &AgentStatus) + Send + Sync>;

/// The shared status and who to tell when it changes.
#[derive(Clone, Default)]
pub struct StatusHandle {
    inner: Arc<Mutex<AgentStatus>>,
    listeners: Arc<Mutex<Vec<StatusListener>>>,
}

impl std::fmt::Debug for StatusHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StatusHandle").field(&self.get()).finish()
    }
}

impl StatusHandle {
    /// A copy of the current status.
    pub fn get(&self) -> AgentStatus {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Changes the status and tells the listeners if anything changed.
    pub fn update(&self, f: impl FnOnce(&mut AgentStatus)) {
        let (old, new) = {
            let mut s = self
                .inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let old = s.clone();
            f(&mut s);
            (old, s.clone())
        };
        if old != new {
            for l in self
                .listeners
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
            {
                l(&old, &new);
            }
        }
    }

    /// Registers a listener.
    pub fn listen(&self, l: StatusListener) {
        self.listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(l);
    }
}
