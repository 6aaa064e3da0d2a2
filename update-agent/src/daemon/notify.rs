//! Telling systemd how the daemon is (`sd_notify`: READY, STATUS,
//! WATCHDOG), behind [`Notify`] so tests run without a notify socket.

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

/// Does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNotify;

impl Notify for NoNotify {
    fn ready(&self) {}
    fn status(&self, _: &str) {}
    fn watchdog(&self) {}
    fn watchdog_interval(&self) -> Option<std::time::Duration> {
        None
    }
}
