//! Running as a service: what the server tells systemd over
//! `$NOTIFY_SOCKET` (`READY=1` once the database and the repository are
//! loaded and the listener is bound, `RELOADING=1`, `STOPPING=1`, a status
//! line) and the signals it answers: SIGTERM and SIGINT stop it (requests
//! in flight are answered, background jobs finish their pass), SIGHUP
//! reloads the TLS certificate and key.

use tokio::signal::unix::{Signal as UnixSignal, SignalKind, signal};

/// What an operator (or systemd) asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: drain and exit.
    Stop,
    /// SIGHUP: reload the TLS certificate and key.
    Reload,
}

/// The signal handlers, installed once at start (before `READY=1`, so a
/// signal sent as soon as systemd sees the service started is handled,
/// not the default action that kills the process).
#[derive(Debug)]
pub struct Signals {
    term: UnixSignal,
    int: UnixSignal,
    hup: UnixSignal,
}

impl Signals {
    /// Installs the handlers (needs a tokio runtime).
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next signal.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

/// Startup is complete: the server answers requests.
pub fn ready(status: &str) {
    send(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// A reload (SIGHUP) started; [`reloaded`] ends it.
pub fn reloading() {
    // systemd wants the monotonic time with RELOADING=1 (Type=notify-reload).
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[sd_notify::NotifyState::Reloading, now]),
        Err(_) => send(&[sd_notify::NotifyState::Reloading]),
    }
}

/// A reload finished (successfully or not: the status line says which).
pub fn reloaded(status: &str) {
    send(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// Shutdown started: draining requests and stopping jobs.
pub fn stopping() {
    send(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("draining requests in flight"),
    ]);
}

fn send(state: &[sd_notify::NotifyState<'_>]) {
    // Not under systemd ($NOTIFY_SOCKET unset): sends nothing, no error.
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!("cannot notify the service manager: {e}");
    }
}
