//! Install progress as the daemon shows it: the `Progress` property, the
//! state names of the install phases, and watchdog pings while chunks are
//! written (a long install is progress, not a hang).

use std::sync::{Arc, Mutex};

use super::notify::Notify;
use super::status::StatusHandle;
use crate::install::progress::Progress;

/// Install progress into the status (and the watchdog's view of liveness).
pub struct DaemonProgress {
    /// systemd.
    pub notify: Arc<dyn Notify>,
    /// Where progress is shown.
    pub status: StatusHandle,
    /// Image length.
    pub total: Mutex<u64>,
    /// Bytes in place.
    pub done: Mutex<u64>,
}

impl std::fmt::Debug for DaemonProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonProgress").finish_non_exhaustive()
    }
}

impl DaemonProgress {
    /// Progress into `status`, pinging `notify`'s watchdog.
    pub fn new(notify: Arc<dyn Notify>, status: StatusHandle) -> Self {
        Self {
            notify,
            status,
            total: Mutex::new(0),
            done: Mutex::new(0),
        }
    }

    fn set(&self, done: u64) {
        let total = self.total.lock().map(|t| *t).unwrap_or(0);
        #[allow(clippy::cast_precision_loss)]
        let p = if total == 0 {
            0.0
        } else {
            (done as f64 / total as f64).min(1.0)
        };
        // Publish in whole percents so D-Bus is not flooded.
        let p = (p * 100.0).floor() / 100.0;
        self.status.update(|s| s.progress = p);
    }
}

impl Progress for DaemonProgress {
    fn start(&self, total: u64, already: u64) {
        if let Ok(mut t) = self.total.lock() {
            *t = total;
        }
        if let Ok(mut d) = self.done.lock() {
            *d = already;
        }
        self.status
            .update(|s| "downloading".clone_into(&mut s.state));
        self.set(already);
    }
    fn advance(&self, bytes: u64, _downloaded: bool) {
        // A long install is progress, not a hang.
        self.notify.watchdog();
        let done = match self.done.lock() {
            Ok(mut d) => {
                *d += bytes;
                *d
            }
            Err(_) => return,
        };
        self.set(done);
    }
    fn phase(&self, name: &str) {
        let state = match name {
            "verifying" => "verifying",
            "arming" => "finalizing",
            _ => return,
        };
        self.status.update(|s| state.clone_into(&mut s.state));
    }
    fn finish(&self) {
        self.set(self.total.lock().map(|t| *t).unwrap_or(0));
    }
    fn retrying(&self, _chunk: u64, _attempt: u32, _error: &str) {
        // Bounded retries of a stalled transfer are progress too: the
        // service manager must not kill the daemon while they run.
        self.notify.watchdog();
    }
}
