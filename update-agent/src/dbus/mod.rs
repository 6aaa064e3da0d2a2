//! Our D-Bus interface, `org.moho.Agent1` at `/org/moho/Agent1` on the
//! system bus: [`service`] serves it from the daemon, [`client`] is what
//! `update-agent status|check|reboot|rollback|mark-good` use.

pub mod client;
pub mod service;

/// The bus name (and interface name).
pub const BUS_NAME: &str = "org.moho.Agent1";
/// The object path.
pub const OBJECT_PATH: &str = "/org/moho/Agent1";

/// Connects to the system bus (`DBUS_SYSTEM_BUS_ADDRESS` if set).
pub fn system_bus() -> zbus::Result<zbus::blocking::Connection> {
    zbus::blocking::Connection::system()
}
