//! [`BootHealth`] from systemd over D-Bus (`org.freedesktop.systemd1` on
//! the system bus): `boot-complete.target`'s `ActiveState` and the units in
//! its `Requires`, `Requisite` and `BindsTo` (health checks are installed
//! with `RequiredBy=boot-complete.target`), with each service's `Result`,
//! `StatusText` and exit status.

use zbus::blocking::Connection;
use zbus::zvariant::OwnedObjectPath;

use super::{BOOT_COMPLETE, BootHealth, HealthError, HealthReport, UnitHealth};

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_async = false,
    blocking_name = "ManagerProxy"
)]
trait Manager {
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1",
    gen_async = false,
    blocking_name = "UnitProxy"
)]
trait Unit {
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn requires(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property)]
    fn requisite(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property)]
    fn binds_to(&self) -> zbus::Result<Vec<String>>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1",
    gen_async = false,
    blocking_name = "ServiceProxy"
)]
trait Service {
    #[zbus(property)]
    fn result(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn status_text(&self) -> zbus::Result<String>;
    #[zbus(property, name = "ExecMainStatus")]
    fn exec_main_status(&self) -> zbus::Result<i32>;
}

/// systemd on a bus.
#[derive(Debug, Clone)]
pub struct SystemdHealth {
    conn: Connection,
}

impl SystemdHealth {
    /// Uses `conn` (normally the system bus).
    pub fn new(conn: Connection) -> Self {
        Self { conn }
    }

    fn unit_path(&self, name: &str) -> Result<OwnedObjectPath, HealthError> {
        ManagerProxy::new(&self.conn)
            .and_then(|m| m.load_unit(name))
            .map_err(err(format!("LoadUnit({name})")))
    }

    fn unit(&self, name: &str) -> Result<(UnitProxy<'_>, OwnedObjectPath), HealthError> {
        let path = self.unit_path(name)?;
        let proxy = UnitProxy::builder(&self.conn)
            .path(path.clone())
            .and_then(|b| b.build())
            .map_err(err(name.to_owned()))?;
        Ok((proxy, path))
    }

    fn describe(&self, name: &str) -> Result<UnitHealth, HealthError> {
        let (unit, path) = self.unit(name)?;
        let e = err(format!("{name} properties"));
        let mut h = UnitHealth {
            name: name.to_owned(),
            active_state: unit.active_state().map_err(&e)?,
            sub_state: unit.sub_state().map_err(&e)?,
            result: None,
            status_text: None,
            exit_status: None,
        };
        if name.ends_with(".service")
            && let Ok(service) = ServiceProxy::builder(&self.conn)
                .path(path)
                .and_then(|b| b.build())
        {
            h.result = service.result().ok();
            h.status_text = service.status_text().ok().filter(|t| !t.is_empty());
            h.exit_status = service.exec_main_status().ok();
        }
        Ok(h)
    }
}

fn err(call: String) -> impl Fn(zbus::Error) -> HealthError {
    move |e| HealthError {
        call: call.clone(),
        message: e.to_string(),
    }
}

impl BootHealth for SystemdHealth {
    fn boot_health(&self) -> Result<HealthReport, HealthError> {
        let (target, _) = self.unit(BOOT_COMPLETE)?;
        let e = err(format!("{BOOT_COMPLETE} properties"));
        let complete = target.active_state().map_err(&e)? == "active";
        let mut names = target.requires().map_err(&e)?;
        names.extend(target.requisite().unwrap_or_default());
        names.extend(target.binds_to().unwrap_or_default());
        names.sort();
        names.dedup();
        let units = names
            .iter()
            .map(|n| self.describe(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HealthReport { complete, units })
    }
}
