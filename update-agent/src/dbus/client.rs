//! The CLI's side of `org.moho.Agent1`: read the status, call the methods,
//! follow the `StatusChanged` signal.

use zbus::blocking::Connection;

use crate::daemon::status::AgentStatus;

#[zbus::proxy(
    interface = "org.moho.Agent1",
    default_service = "org.moho.Agent1",
    default_path = "/org/moho/Agent1",
    gen_async = false,
    blocking_name = "Agent1Proxy"
)]
pub trait Agent1 {
    fn check(&self) -> zbus::Result<String>;
    fn install(&self) -> zbus::Result<String>;
    fn reboot(&self) -> zbus::Result<String>;
    fn mark_good(&self) -> zbus::Result<String>;
    fn rollback(&self) -> zbus::Result<String>;
    fn cancel(&self) -> zbus::Result<String>;
    #[zbus(signal)]
    fn status_changed(&self, state: String, status_json: String) -> zbus::Result<()>;
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn progress(&self) -> zbus::Result<f64>;
    #[zbus(property)]
    fn booted_slot(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn booted_version(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn staged_version(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn last_check(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn last_error(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn reboot_blocked_by(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn trial_deadline(&self) -> zbus::Result<String>;
}

pub use self::Agent1Proxy as Proxy;

/// A D-Bus call to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No bus, or no daemon on it.
    #[error(
        "cannot reach the update agent daemon on the system bus ({0}); is moho-agent.service running?"
    )]
    Unreachable(zbus::Error),
    /// The daemon refused: not in its current state
    /// (`org.moho.Agent1.Error.NotAllowed`) or not for this caller.
    #[error("{call} refused: {message}")]
    Refused {
        /// The method.
        call: &'static str,
        /// The daemon's message.
        message: String,
    },
    /// The daemon tried and failed.
    #[error("{call}: {message}")]
    Call {
        /// The method.
        call: &'static str,
        /// The daemon's message.
        message: String,
    },
}

fn call_err(call: &'static str) -> impl Fn(zbus::Error) -> ClientError {
    move |e| match e {
        // Nobody owns the name: the daemon is not running.
        zbus::Error::MethodError(ref name, _, _)
            if name.as_str().ends_with(".ServiceUnknown")
                || name.as_str().ends_with(".NameHasNoOwner") =>
        {
            ClientError::Unreachable(e)
        }
        zbus::Error::FDO(ref f)
            if matches!(
                **f,
                zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_)
            ) =>
        {
            ClientError::Unreachable(e)
        }
        zbus::Error::MethodError(ref name, Some(ref m), _)
            if name.as_str().ends_with(".Error.NotAllowed")
                || name.as_str().ends_with(".Error.AccessDenied") =>
        {
            ClientError::Refused {
                call,
                message: m.clone(),
            }
        }
        zbus::Error::MethodError(_, Some(m), _) => ClientError::Call { call, message: m },
        zbus::Error::FDO(f) => ClientError::Call {
            call,
            message: f.to_string(),
        },
        other => ClientError::Unreachable(other),
    }
}

/// Connects to the daemon.
pub fn connect(conn: &Connection) -> Result<Proxy<'_>, ClientError> {
    Proxy::new(conn).map_err(ClientError::Unreachable)
}

/// Reads every property.
pub fn status(p: &Proxy<'_>) -> Result<AgentStatus, ClientError> {
    let e = call_err("reading properties");
    Ok(AgentStatus {
        state: p.state().map_err(&e)?,
        progress: p.progress().map_err(&e)?,
        booted_slot: p.booted_slot().map_err(&e)?,
        booted_version: p.booted_version().map_err(&e)?,
        staged_version: p.staged_version().map_err(&e)?,
        last_check: p.last_check().map_err(&e)?,
        last_error: p.last_error().map_err(&e)?,
        reboot_blocked_by: p.reboot_blocked_by().map_err(&e)?,
        trial_deadline: p.trial_deadline().map_err(&e)?,
    })
}

/// A method by name.
pub fn call(p: &Proxy<'_>, method: Method) -> Result<String, ClientError> {
    match method {
        Method::Check => p.check().map_err(call_err("Check")),
        Method::Install => p.install().map_err(call_err("Install")),
        Method::Reboot => p.reboot().map_err(call_err("Reboot")),
        Method::MarkGood => p.mark_good().map_err(call_err("MarkGood")),
        Method::Rollback => p.rollback().map_err(call_err("Rollback")),
        Method::Cancel => p.cancel().map_err(call_err("Cancel")),
    }
}

/// The methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `Check`.
    Check,
    /// `Install`.
    Install,
    /// `Reboot`.
    Reboot,
    /// `MarkGood`.
    MarkGood,
    /// `Rollback`.
    Rollback,
    /// `Cancel`.
    Cancel,
}

/// Calls `f` with each status the daemon signals, until it returns false.
pub fn follow(p: &Proxy<'_>, mut f: impl FnMut(&AgentStatus) -> bool) -> Result<(), ClientError> {
    let signals = p
        .receive_status_changed()
        .map_err(call_err("subscribing to StatusChanged"))?;
    if !f(&status(p)?) {
        return Ok(());
    }
    for s in signals {
        let args = s.args().map_err(call_err("reading StatusChanged"))?;
        if let Ok(st) = serde_json::from_str::<AgentStatus>(args.status_json())
            && !f(&st)
        {
            break;
        }
    }
    Ok(())
}
