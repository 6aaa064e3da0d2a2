//! What the D-Bus methods (and tests) ask of the running daemon, and the
//! typed answer that comes back: one [`Command`] enum, each variant saying
//! when it is allowed; an [`Answer`] per command; a [`CommandError`] per
//! refusal. The D-Bus layer turns them into a method return or a named
//! D-Bus error; nothing on the client side parses prose.

use std::fmt;

use futures_channel::oneshot;
use moho_core::slot_table::SlotName;

use crate::daemon::server::ServerError;
use crate::service::slots::SlotsError;

/// A request to the daemon loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Check in now (and install what the server says). Allowed at rest,
    /// after an error, with an update staged and on trial (the server may
    /// answer "cancel" or "revert"); an install follows only at rest.
    Check,
    /// Same as `Check`: the install path runs when an update is offered.
    Install,
    /// Reboot into the staged update now (windows and `off` no longer
    /// hold it back; users, inhibitors and the FleetLock still do).
    /// Allowed with an update staged.
    Reboot,
    /// Mark the booted slot good. Always allowed; a no-op on a good slot.
    MarkGood,
    /// Make the other (successful) slot boot next and reboot per the
    /// strategy. Allowed at rest.
    Rollback,
    /// Withdraw the staged update (`cancel_armed`), or abandon the trial
    /// of one that booted. Allowed with an update staged or on trial.
    Cancel,
    /// Stop the loop (service stop, tests). Always allowed.
    Stop,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Check => "Check",
            Self::Install => "Install",
            Self::Reboot => "Reboot",
            Self::MarkGood => "MarkGood",
            Self::Rollback => "Rollback",
            Self::Cancel => "Cancel",
            Self::Stop => "Stop",
        })
    }
}

/// What a check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// An install starts after the answer (follow it with `status`).
    Installing {
        /// What the server offers (`None`: the newest in the repository).
        version: Option<String>,
    },
    /// The offered release is the one already staged.
    AlreadyStaged {
        /// Its version.
        version: String,
    },
    /// Nothing to install now.
    NothingNew {
        /// The server's (or the repository check's) reason.
        reason: String,
    },
    /// The server reverts the booted release; the previous slot boots next.
    Reverting {
        /// The reverted version.
        from_version: String,
        /// The slot that boots next.
        slot: SlotName,
    },
    /// The server cancelled the staged update; its slot is cleared.
    Cancelled {
        /// The cancelled version.
        version: String,
    },
    /// The server withdrew the release on trial; the node reboots into its
    /// fallback.
    TrialAbandoned {
        /// The version on trial.
        version: String,
    },
    /// The server's answer does not apply in this state (an offer while on
    /// trial, a revert of a version not booted): nothing done.
    Ignored {
        /// Why.
        why: String,
    },
}

impl fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Installing { version: Some(v) } => {
                write!(f, "the server offers {v}: installing")
            }
            Self::Installing { version: None } => {
                f.write_str("checked the repository: installing the newest release")
            }
            Self::AlreadyStaged { version } => {
                write!(f, "{version} is already staged; waiting for its reboot")
            }
            Self::NothingNew { reason } => write!(f, "nothing to install: {reason}"),
            Self::Reverting { from_version, slot } => write!(
                f,
                "the server reverts {from_version}: slot {slot} boots next, per the reboot strategy"
            ),
            Self::Cancelled { version } => {
                write!(f, "the server cancelled {version}: its slot is cleared")
            }
            Self::TrialAbandoned { version } => write!(
                f,
                "the server withdrew {version}: its trial is abandoned and the node reboots \
                 into the previous release"
            ),
            Self::Ignored { why } => write!(f, "nothing done: {why}"),
        }
    }
}

/// The answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `Check` / `Install`.
    Checked(CheckOutcome),
    /// `Reboot`: logind was asked.
    RebootStarted,
    /// `Reboot`: asked for, and waiting (the reason).
    RebootWaiting {
        /// What it waits for.
        blocked_by: String,
    },
    /// `MarkGood`: the slot change.
    MarkedGood {
        /// What changed.
        change: String,
    },
    /// `MarkGood`: nothing to do.
    AlreadyGood {
        /// The booted slot.
        slot: SlotName,
    },
    /// `Rollback`: the other slot boots next.
    RollbackArmed {
        /// It.
        slot: SlotName,
    },
    /// `Cancel` of a staged update.
    Cancelled {
        /// Its version.
        version: String,
    },
    /// `Cancel` on trial: the node reboots into its fallback.
    TrialAbandoned {
        /// The version on trial.
        version: String,
    },
    /// `Stop`.
    Stopping,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Checked(o) => write!(f, "{o}"),
            Self::RebootStarted => f.write_str("rebooting into the staged update"),
            Self::RebootWaiting { blocked_by } => {
                write!(f, "reboot requested; waiting: {blocked_by}")
            }
            Self::MarkedGood { change } => f.write_str(change),
            Self::AlreadyGood { slot } => write!(f, "slot {slot} is already marked good"),
            Self::RollbackArmed { slot } => {
                write!(f, "slot {slot} will boot next; reboot per the strategy")
            }
            Self::Cancelled { version } => write!(
                f,
                "{version} cancelled: its slot is cleared and will not boot"
            ),
            Self::TrialAbandoned { version } => write!(
                f,
                "the trial of {version} is abandoned: rebooting into the previous release"
            ),
            Self::Stopping => f.write_str("stopping"),
        }
    }
}

/// Why a command was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Not allowed in the current state.
    #[error("{command} is not allowed in state {state}: {why}")]
    NotNow {
        /// The command.
        command: Command,
        /// The state's name.
        state: &'static str,
        /// What to do instead.
        why: &'static str,
    },
    /// The booted slot is unknown.
    #[error("{disk}: cannot tell which slot is booted; not checking for updates")]
    BootedUnknown {
        /// The disk.
        disk: String,
    },
    /// The booted slot is not marked good: no install before it is.
    #[error("the booted slot is not marked good yet; no update is installed before it is")]
    NotBlessed,
    /// The offered version is on the local deny list.
    #[error(
        "the server offers {version}, which is on the local deny list ({reason}); \
         it is not installed"
    )]
    Denied {
        /// The version.
        version: String,
        /// Why it is denied.
        reason: String,
    },
    /// The update server.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// A slot change.
    #[error(transparent)]
    Slots(#[from] SlotsError),
    /// Anything else (state file, outbox), with its cause chain.
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    /// Whether the command was refused (state, deny list) rather than failed.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::NotNow { .. }
                | Self::NotBlessed
                | Self::Denied { .. }
                | Self::BootedUnknown { .. }
        ) || matches!(self, Self::Slots(SlotsError::Refused { .. }))
    }
}

/// The answer or the refusal.
pub type Reply = Result<Answer, CommandError>;

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
