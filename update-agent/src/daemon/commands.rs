//! What the D-Bus methods (and tests) ask of the running daemon, and how
//! the answer comes back.

use futures_channel::oneshot;

/// A request to the daemon loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Check in now (and install what the server says).
    Check,
    /// Same as `Check`: the install path runs when an update is offered.
    Install,
    /// Reboot into the staged update now (windows and `off` no longer
    /// hold it back; users, inhibitors and the FleetLock still do).
    Reboot,
    /// Mark the booted slot good.
    MarkGood,
    /// Make the other slot boot next and reboot per the strategy.
    Rollback,
    /// Stop the loop (service stop, tests).
    Stop,
}

/// The answer: a human-readable result, or an error message.
pub type Reply = Result<String, String>;

/// A command with where to send its answer.
#[derive(Debug)]
pub struct Request {
    /// What.
    pub command: Command,
    /// Where the answer goes (`None`: nobody waits).
    pub reply: Option<oneshot::Sender<Reply>>,
}

impl Request {
    /// Answers (a caller that went away is ignored).
    pub fn answer(self, reply: Reply) {
        if let Some(tx) = self.reply {
            let _ = tx.send(reply);
        }
    }
}
