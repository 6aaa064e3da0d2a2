//! [`Login`] over D-Bus: `org.freedesktop.login1.Manager` on the system bus
//! (or whatever bus `DBUS_SYSTEM_BUS_ADDRESS` names), with zbus's blocking
//! proxies.

use zbus::blocking::Connection;
use zbus::zvariant::{OwnedFd as ZFd, OwnedObjectPath};

use super::{InhibitGuard, Login, LoginError};
use crate::daemon::reboot_gate::Inhibitor;

/// `ListInhibitors` rows: what, who, why, mode, uid, pid.
type InhibitorRow = (String, String, String, String, u32, u32);
/// `ListSessions` rows: id, uid, user, seat, object path.
type SessionRow = (String, u32, String, String, OwnedObjectPath);

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1",
    gen_async = false,
    blocking_name = "ManagerProxy"
)]
trait Manager {
    fn reboot(&self, interactive: bool) -> zbus::Result<()>;
    fn list_inhibitors(&self) -> zbus::Result<Vec<InhibitorRow>>;
    fn list_sessions(&self) -> zbus::Result<Vec<SessionRow>>;
    fn inhibit(&self, what: &str, who: &str, why: &str, mode: &str) -> zbus::Result<ZFd>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Session",
    default_service = "org.freedesktop.login1",
    gen_async = false,
    blocking_name = "SessionProxy"
)]
trait Session {
    #[zbus(property)]
    fn class(&self) -> zbus::Result<String>;
}

/// logind on a bus.
#[derive(Debug, Clone)]
pub struct LogindClient {
    conn: Connection,
}

fn err(call: &'static str) -> impl Fn(zbus::Error) -> LoginError {
    move |e| LoginError {
        call,
        message: e.to_string(),
    }
}

impl LogindClient {
    /// Uses `conn` (normally the system bus).
    pub fn new(conn: Connection) -> Self {
        Self { conn }
    }

    fn manager(&self, call: &'static str) -> Result<ManagerProxy<'_>, LoginError> {
        ManagerProxy::new(&self.conn).map_err(err(call))
    }
}

impl Login for LogindClient {
    fn reboot(&self) -> Result<(), LoginError> {
        self.manager("Reboot")?.reboot(false).map_err(err("Reboot"))
    }

    fn block_inhibitors(&self) -> Result<Vec<Inhibitor>, LoginError> {
        let all = self
            .manager("ListInhibitors")?
            .list_inhibitors()
            .map_err(err("ListInhibitors"))?;
        Ok(all
            .into_iter()
            .filter(|(what, _, _, mode, _, _)| {
                mode == "block" && what.split(':').any(|w| w == "shutdown")
            })
            .map(|(_, who, why, _, _, _)| Inhibitor { who, why })
            .collect())
    }

    fn users(&self) -> Result<Vec<String>, LoginError> {
        let sessions = self
            .manager("ListSessions")?
            .list_sessions()
            .map_err(err("ListSessions"))?;
        let mut users = Vec::new();
        for (_, _, user, _, path) in sessions {
            // Only real logins count: not greeters, not per-user managers.
            let class = SessionProxy::builder(&self.conn)
                .path(path)
                .and_then(|b| b.build())
                .and_then(|p| p.class());
            match class {
                Ok(c) if c != "user" => {}
                _ => users.push(user),
            }
        }
        Ok(users)
    }

    fn delay_shutdown(&self, why: &str) -> Result<InhibitGuard, LoginError> {
        let fd = self
            .manager("Inhibit")?
            .inhibit("shutdown", "moho update-agent", why, "delay")
            .map_err(err("Inhibit"))?;
        Ok(InhibitGuard::new(Some(fd.into())))
    }
}
