//! Serving `org.moho.Agent1`: properties read from the daemon's
//! [`StatusHandle`], methods sent to the daemon loop as [`Request`]s,
//! mutating methods only for root callers (also enforced by the bus policy
//! in `systemd/`), a `StatusChanged` signal and `PropertiesChanged` on every
//! change.

use std::sync::Mutex;
use std::sync::mpsc::Sender;

use futures_channel::oneshot;
use zbus::fdo;
use zbus::message::Header;
use zbus::names::BusName;
use zbus::object_server::SignalEmitter;

use super::{BUS_NAME, OBJECT_PATH};
use crate::daemon::commands::{Command, Request};
use crate::daemon::status::{AgentStatus, StatusHandle};

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
    ) -> fdo::Result<String> {
        require_root(hdr, conn).await?;
        let (tx, rx) = oneshot::channel();
        self.commands
            .lock()
            .map_err(|_| fdo::Error::Failed("daemon loop lock poisoned".into()))?
            .send(Request {
                command,
                reply: Some(tx),
            })
            .map_err(|_| fdo::Error::Failed("the daemon loop has stopped".into()))?;
        match rx.await {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(m)) => Err(fdo::Error::Failed(m)),
            Err(_) => Err(fdo::Error::Failed("the daemon loop did not answer".into())),
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
    ) -> fdo::Result<String> {
        self.call(Command::Check, &hdr, conn).await
    }

    /// Same as Check.
    async fn install(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> fdo::Result<String> {
        self.call(Command::Install, &hdr, conn).await
    }

    /// Reboot into the staged update now.
    async fn reboot(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> fdo::Result<String> {
        self.call(Command::Reboot, &hdr, conn).await
    }

    /// Mark the booted slot good.
    async fn mark_good(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> fdo::Result<String> {
        self.call(Command::MarkGood, &hdr, conn).await
    }

    /// Boot the other slot next.
    async fn rollback(
        &self,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> fdo::Result<String> {
        self.call(Command::Rollback, &hdr, conn).await
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
        Agent1::status_changed(e, &new.state, &json).await
    })
}
