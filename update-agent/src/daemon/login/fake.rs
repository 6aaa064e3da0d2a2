//! A [`Login`] that records calls and answers from settable lists, for the
//! daemon's tests.

use std::sync::{Arc, Mutex};

use super::{InhibitGuard, Login, LoginError};
use crate::daemon::reboot_gate::Inhibitor;

/// What the fake answers, and the calls it saw.
#[derive(Debug, Default)]
pub struct FakeLoginState {
    /// Every call, in order (`Reboot`, `Inhibit:<why>`, ...).
    pub calls: Vec<String>,
    /// Users `users()` returns.
    pub users: Vec<String>,
    /// Inhibitors `block_inhibitors()` returns.
    pub inhibitors: Vec<Inhibitor>,
    /// When set, `reboot()` fails with this message.
    pub fail_reboot: Option<String>,
}

/// The fake; clones share state.
#[derive(Debug, Clone, Default)]
pub struct FakeLogin(pub Arc<Mutex<FakeLoginState>>);

impl FakeLogin {
    fn with<T>(&self, f: impl FnOnce(&mut FakeLoginState) -> T) -> T {
        let mut s = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut s)
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.with(|s| s.calls.clone())
    }
}

impl Login for FakeLogin {
    fn reboot(&self) -> Result<(), LoginError> {
        self.with(|s| {
            s.calls.push("Reboot".into());
            match &s.fail_reboot {
                Some(m) => Err(LoginError {
                    call: "Reboot",
                    message: m.clone(),
                }),
                None => Ok(()),
            }
        })
    }

    fn block_inhibitors(&self) -> Result<Vec<Inhibitor>, LoginError> {
        Ok(self.with(|s| s.inhibitors.clone()))
    }

    fn users(&self) -> Result<Vec<String>, LoginError> {
        Ok(self.with(|s| s.users.clone()))
    }

    fn delay_shutdown(&self, why: &str) -> Result<InhibitGuard, LoginError> {
        self.with(|s| s.calls.push(format!("Inhibit:{why}")));
        Ok(InhibitGuard::new(None))
    }
}
