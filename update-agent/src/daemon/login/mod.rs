//! logind as the daemon needs it (DESIGN §7): reboot, who blocks a reboot,
//! who is logged in, and a delay inhibitor held while a slot is written.
//! Behind [`Login`] so that the daemon can be driven by [`fake::FakeLogin`];
//! [`dbus::LogindClient`] talks to `org.freedesktop.login1` with zbus.

pub mod dbus;
pub mod fake;

use std::os::fd::OwnedFd;

use crate::daemon::reboot_gate::Inhibitor;

/// A logind call failed.
#[derive(Debug, thiserror::Error)]
#[error("logind {call}: {message}")]
pub struct LoginError {
    /// The method.
    pub call: &'static str,
    /// What went wrong.
    pub message: String,
}

/// A held inhibitor lock; released when dropped.
#[derive(Debug)]
pub struct InhibitGuard {
    _fd: Option<OwnedFd>,
}

impl InhibitGuard {
    /// Wraps the file descriptor logind handed out (`None` for fakes).
    pub fn new(fd: Option<OwnedFd>) -> Self {
        Self { _fd: fd }
    }
}

/// What the daemon asks logind.
pub trait Login: Send {
    /// `Reboot(false)`.
    fn reboot(&self) -> Result<(), LoginError>;
    /// Block-mode inhibitors on `shutdown`.
    fn block_inhibitors(&self) -> Result<Vec<Inhibitor>, LoginError>;
    /// Users with a session of class `user`.
    fn users(&self) -> Result<Vec<String>, LoginError>;
    /// Takes a delay inhibitor on `shutdown` for `why`.
    fn delay_shutdown(&self, why: &str) -> Result<InhibitGuard, LoginError>;
}
