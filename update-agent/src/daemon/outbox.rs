//! Events waiting to reach the update server, kept in the state directory
//! (`outbox.json`, written atomically) so that a report survives a server
//! outage and the reboot it announces. Oldest first; bounded, dropping the
//! oldest when full.

use std::path::{Path, PathBuf};

use moho_protocol::node::{Event, MAX_EVENTS_PER_REPORT};

use super::server::UpdateServer;
use crate::atomic_file::{AtomicFileError, read_optional, write_atomic};

/// Most events kept while the server is unreachable.
pub const MAX_PENDING: usize = 1000;

/// The outbox could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// I/O.
    #[error(transparent)]
    Io(#[from] AtomicFileError),
    /// Not an outbox.
    #[error("{}: corrupt event outbox: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Pending events.
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    pending: Vec<Event>,
}

impl Outbox {
    /// Loads `outbox.json` from `state_dir` (empty if absent).
    pub fn load(state_dir: &Path) -> Result<Self, OutboxError> {
        let path = state_dir.join("outbox.json");
        let pending = match read_optional(&path)? {
            None => Vec::new(),
            Some(b) => serde_json::from_slice(&b).map_err(|e| OutboxError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?,
        };
        Ok(Self { path, pending })
    }

    /// Events not yet delivered.
    pub fn pending(&self) -> &[Event] {
        &self.pending
    }

    /// Queues `event` and saves.
    pub fn push(&mut self, event: Event) -> Result<(), OutboxError> {
        self.pending.push(event);
        if self.pending.len() > MAX_PENDING {
            let extra = self.pending.len() - MAX_PENDING;
            self.pending.drain(..extra);
        }
        self.save()
    }

    /// Sends what is pending, in reports of at most 100 events; stops at the
    /// first failure (what was sent is dropped from the outbox).
    pub fn flush(&mut self, server: &dyn UpdateServer) -> Result<usize, FlushError> {
        let mut sent = 0;
        while !self.pending.is_empty() {
            let n = self.pending.len().min(MAX_EVENTS_PER_REPORT);
            if let Err(e) = server.report(&self.pending[..n]) {
                self.save()?;
                return Err(FlushError::Server(e));
            }
            self.pending.drain(..n);
            sent += n;
        }
        self.save()?;
        Ok(sent)
    }

    fn save(&self) -> Result<(), OutboxError> {
        let bytes = serde_json::to_vec(&self.pending).map_err(|e| OutboxError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&self.path, &bytes)?;
        Ok(())
    }
}

/// Flushing failed.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// The server did not take the report.
    #[error("reporting events: {0}")]
    Server(#[from] super::server::ServerError),
    /// The outbox file.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::server::fake::FakeServer;
    use moho_protocol::node::EventKind;

    fn ev(v: &str) -> Event {
        Event {
            at: "2026-11-22T10:00:00Z".parse().unwrap(),
            kind: EventKind::Installed { version: v.into() },
        }
    }

    #[test]
    fn events_survive_an_outage_and_a_restart_and_are_sent_once() {
        let dir = tempfile::tempdir().unwrap();
        let server = FakeServer::default();
        server.with(|s| s.reports_fail = true);
        let mut o = Outbox::load(dir.path()).unwrap();
        o.push(ev("1.1.0")).unwrap();
        assert!(o.flush(&server).is_err());
        let mut o = Outbox::load(dir.path()).unwrap();
        assert_eq!(o.pending().len(), 1);
        server.with(|s| s.reports_fail = false);
        assert_eq!(o.flush(&server).unwrap(), 1);
        assert_eq!(o.flush(&server).unwrap(), 0);
        assert_eq!(server.event_types(), ["installed"]);
        assert!(Outbox::load(dir.path()).unwrap().pending().is_empty());
    }
}
