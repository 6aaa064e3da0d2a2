//! Telling systemd how the daemon is (`sd_notify`: READY, STATUS,
//! WATCHDOG), behind [`Notify`] so tests run without a notify socket;
//! [`NoNotify`] sends nothing and records what it was told.

use std::sync::{Arc, Mutex};

/// The service manager.
pub trait Notify: Send + Sync {
    /// Startup is complete.
    fn ready(&self);
    /// A one-line status for `systemctl status`.
    fn status(&self, line: &str);
    /// The daemon is alive.
    fn watchdog(&self);
    /// How often systemd expects `watchdog()`, if it does.
    fn watchdog_interval(&self) -> Option<std::time::Duration>;
}

/// `sd_notify` over `$NOTIFY_SOCKET` (a no-op when it is unset).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemdNotify;

impl Notify for SystemdNotify {
    fn ready(&self) {
        send(&[sd_notify::NotifyState::Ready]);
    }
    fn status(&self, line: &str) {
        send(&[sd_notify::NotifyState::Status(line)]);
    }
    fn watchdog(&self) {
        send(&[sd_notify::NotifyState::Watchdog]);
    }
    fn watchdog_interval(&self) -> Option<std::time::Duration> {
        sd_notify::watchdog_enabled()
    }
}

fn send(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// One thing the daemon told the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notified {
    /// `READY=1`.
    Ready,
    /// `STATUS=...`.
    Status(String),
    /// `WATCHDOG=1`.
    Watchdog,
}

/// Sends nothing; records every call (clones share the record).
#[derive(Debug, Default, Clone)]
pub struct NoNotify(Arc<Mutex<Vec<Notified>>>);

impl NoNotify {
    fn push(&self, n: Notified) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(n);
    }

    /// Everything so far, in order.
    pub fn seen(&self) -> Vec<Notified> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many watchdog pings so far.
    pub fn watchdog_pings(&self) -> usize {
        self.seen()
            .iter()
            .filter(|n| **n == Notified::Watchdog)
            .count()
    }

    /// The status lines so far, in order, without repeats.
    pub fn statuses(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for n in self.seen() {
            if let Notified::Status(s) = n
                && out.last() != Some(&s)
            {
                out.push(s);
            }
        }
        out
    }
}

impl Notify for NoNotify {
    fn ready(&self) {
        self.push(Notified::Ready);
    }
    fn status(&self, line: &str) {
        self.push(Notified::Status(line.to_owned()));
    }
    fn watchdog(&self) {
        self.push(Notified::Watchdog);
    }
    fn watchdog_interval(&self) -> Option<std::time::Duration> {
        None
    }
}
