//! Serving `org.moho.Agent1`: properties read from the daemon's
//! [`StatusHandle`], methods sent to the daemon loop as [`Request`]s,
//! mutating methods only for root callers (also enforced by the bus policy
//! in `systemd/`), a `StatusChanged` signal and `PropertiesChanged` on every
//! change. A method returns its answer as text; a refusal is the D-Bus
//! error `org.moho.Agent1.Error.NotAllowed`, a failure `...Error.Failed`,
//! a caller that is not root `...Error.AccessDenied`.

use std::sync::Mutex;
use std::sync::mpsc::Sender;

use futures_channel::oneshot;
use zbus::fdo;
use zbus::message::Header;
use zbus::names::BusName;
use zbus::object_server::SignalEmitter;

use super::{BUS_NAME, OBJECT_PATH};
use crate::daemon::commands::{Command, CommandError, Request};
use crate::daemon::status::{AgentStatus, StatusHandle};

/// The errors of `org.moho.Agent1`'s methods.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.moho.Agent1.Error")]
pub enum AgentError {
    /// A bus error.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// Refused in the daemon's current state (or by the deny list).
    NotAllowed(String),
    /// Tried and failed.
    Failed(String),
    /// The caller is not root.
    AccessDenied(String),
}

impl From<CommandError> for AgentError {
    fn from(e: CommandError) -> Self {
        let m = moho_core::report::render_chain(&e);
        if e.is_refusal() {
            Self::NotAllowed(m)
        } else {
            Self::Failed(m)
        }
    }
}

impl From<fdo::Error> for AgentError {
    fn from(e: fdo::Error) -> Self {
        match e {
            fdo::Error::AccessDenied(m) => Self::AccessDenied(m),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// The object.
pub struct Agent1 {
    status: StatusHandle,
    commands: Mutex<Sender<Request>>,
}

impl std::fmt::Debug for Agent1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent1").finish_non_exhaustive()
    }
}

impl Agent1 {
    async fn call(
        &self,
        command: Command,
        hdr: &Header<'_>,
        conn: &zbus::Connection,
    ) -> Result<String, AgentError> {
        require_root(hdr, conn).await?;
        let (tx, rx) = oneshot::channel();
        self.commands
            .lock()
            .map_err(|_| AgentError::Failed("daemon loop lock poisoned".into()))?
            .send(Request {
                command,
                reply: Some(tx),
            })
            .map_err(|_| AgentError::Failed("the daemon loop has stopped".into()))?;
        match rx.await {
            Ok(Ok(answer)) => Ok(answer.to_string()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(AgentError::Failed("the daemon loop did not answer".into())),
        }
    }
}

async fn require_root(hdr: &Header<'_>, conn: &zbus::Connection) -> fdo::Result<()> {
    let sender = hdr
        .sender()
        .ok_or_else(|| fdo::Error::AccessDenied("caller has no bus name".into()))?;
    let uid = fdo::DBusProxy::new(conn)
        .await?
        .get_connection_unix_user(BusName::Unique(sender.to_owned()))
        .await?;
    if uid == 0 {
        Ok(())
    } else {
        Err(fdo::Error::AccessDenied(format!(
            "uid {uid} may not change the update agent; only root may"
        )))
    }
}

#[zbus::interface(name = "org.moho.Agent1")]
impl Agent1 {
    /// Check in now (and install what is offered).
    async fn check(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<String, AgentError> {
        self.call(Command::Check, &hdr, conn).await
    }

    /// Same as Check.
    async fn install(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<String, AgentError> {
        self.call(Command::Install, &hdr, conn).await
    }

    /// Reboot into the staged update now.
    async fn reboot(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<String, AgentError> {
        self.call(Command::Reboot, &hdr, conn).await
    }

    /// Mark the booted slot good.
    async fn mark_good(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<String, AgentError> {
        self.call(Command::MarkGood, &hdr, conn).await
    }

    /// Boot the other slot next.
    async fn rollback(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<String, AgentError> {
        self.call(Command::Rollback, &hdr, conn).await
    }

    /// Withdraw the staged update (or abandon the trial of one that booted).
    async fn cancel(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<String, AgentError> {
        self.call(Command::Cancel, &hdr, conn).await
    }

    /// Emitted on every change, with the whole status as JSON.
    #[zbus(signal)]
    async fn status_changed(
        emitter: &SignalEmitter<'_>,
        state: &str,
        status_json: &str,
    ) -> zbus::Result<()>;

    #[zbus(property)]
    fn state(&self) -> String {
        self.status.get().state
    }
    #[zbus(property)]
    fn progress(&self) -> f64 {
        self.status.get().progress
    }
    #[zbus(property)]
    fn booted_slot(&self) -> String {
        self.status.get().booted_slot
    }
    #[zbus(property)]
    fn booted_version(&self) -> String {
        self.status.get().booted_version
    }
    #[zbus(property)]
    fn staged_version(&self) -> String {
        self.status.get().staged_version
    }
    #[zbus(property)]
    fn last_check(&self) -> String {
        self.status.get().last_check
    }
    #[zbus(property)]
    fn last_error(&self) -> String {
        self.status.get().last_error
    }
    #[zbus(property)]
    fn reboot_blocked_by(&self) -> String {
        self.status.get().reboot_blocked_by
    }
    #[zbus(property)]
    fn trial_deadline(&self) -> String {
        self.status.get().trial_deadline
    }
}

/// Serves the object on `conn`, takes the bus name, and emits signals on
/// every status change. The connection must stay alive for the service.
pub fn serve(
    conn: &zbus::blocking::Connection,
    status: StatusHandle,
    commands: Sender<Request>,
) -> zbus::Result<()> {
    conn.object_server().at(
        OBJECT_PATH,
        Agent1 {
            status: status.clone(),
            commands: Mutex::new(commands),
        },
    )?;
    conn.request_name(BUS_NAME)?;
    let conn = conn.clone();
    status.listen(Box::new(move |old, new| {
        if let Err(e) = emit(&conn, old, new) {
            tracing::warn!(error = %e, "could not signal a status change on D-Bus");
        }
    }));
    Ok(())
}

fn emit(
    conn: &zbus::blocking::Connection,
    old: &AgentStatus,
    new: &AgentStatus,
) -> zbus::Result<()> {
    let iface = conn.object_server().interface::<_, Agent1>(OBJECT_PATH)?;
    let json = serde_json::to_string(new).unwrap_or_default();
    zbus::block_on(async {
        let e = iface.signal_emitter();
        let obj = iface.get();
        if old.state != new.state {
            obj.state_changed(e).await?;
        }
        if old.progress != new.progress {
            obj.progress_changed(e).await?;
        }
        if old.booted_slot != new.booted_slot {
            obj.booted_slot_changed(e).await?;
        }
        if old.booted_version != new.booted_version {
            obj.booted_version_changed(e).await?;
        }
        if old.staged_version != new.staged_version {
            obj.staged_version_changed(e).await?;
        }
        if old.last_check != new.last_check {
            obj.last_check_changed(e).await?;
        }
        if old.last_error != new.last_error {
            obj.last_error_changed(e).await?;
        }
        if old.reboot_blocked_by != new.reboot_blocked_by {
            obj.reboot_blocked_by_changed(e).await?;
        }
        if old.trial_deadline != new.trial_deadline {
            obj.trial_deadline_changed(e).await?;
        }
        Agent1::status_changed(e, &new.state, &json).await
    })
}
