//! A private D-Bus for daemon tests: a real `dbus-daemon` with its own
//! configuration in a temporary directory (the test's "system bus"), and a
//! fake logind served on it that records `Reboot` and `Inhibit` calls and
//! reports the sessions and inhibitors a test sets.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use zbus::zvariant::{OwnedFd, OwnedObjectPath};

/// A running `dbus-daemon`; killed on drop.
#[derive(Debug)]
pub struct TestBus {
    child: Child,
    /// Its address (what `DBUS_SYSTEM_BUS_ADDRESS` gets).
    pub address: String,
}

impl TestBus {
    /// Starts a bus listening on a socket in `dir`.
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let conf = dir.join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                dir.join("bus.sock").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting dbus-daemon (Debian package dbus-daemon)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(!line.trim().is_empty(), "dbus-daemon printed no address");
        Self {
            child,
            address: line.trim().to_owned(),
        }
    }

    /// A new connection to this bus.
    pub fn connect(&self) -> zbus::blocking::Connection {
        zbus::blocking::connection::Builder::address(self.address.as_str())
            .unwrap()
            .build()
            .unwrap()
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the fake logind saw and answers.
#[derive(Debug, Default)]
pub struct LogindState {
    /// Calls in order: `Reboot(false)`, `Inhibit(shutdown, delay, <why>)`.
    pub calls: Vec<String>,
    /// `ListInhibitors` answer: (what, who, why, mode).
    pub inhibitors: Vec<(String, String, String, String)>,
    /// Users with sessions.
    pub users: Vec<String>,
}

/// The fake `org.freedesktop.login1.Manager`.
#[derive(Debug, Clone, Default)]
pub struct FakeLogind(pub Arc<Mutex<LogindState>>);

impl FakeLogind {
    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().calls.clone()
    }

    /// Serves it on `bus` as `org.freedesktop.login1`; keep the returned
    /// connection alive.
    pub fn serve(&self, bus: &TestBus) -> zbus::blocking::Connection {
        let conn = bus.connect();
        conn.object_server()
            .at("/org/freedesktop/login1", self.clone())
            .unwrap();
        conn.request_name("org.freedesktop.login1").unwrap();
        conn
    }
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl FakeLogind {
    fn reboot(&self, interactive: bool) {
        self.0
            .lock()
            .unwrap()
            .calls
            .push(format!("Reboot({interactive})"));
    }

    fn list_inhibitors(&self) -> Vec<(String, String, String, String, u32, u32)> {
        self.0
            .lock()
            .unwrap()
            .inhibitors
            .iter()
            .map(|(a, b, c, d)| (a.clone(), b.clone(), c.clone(), d.clone(), 0, 1))
            .collect()
    }

    fn list_sessions(&self) -> Vec<(String, u32, String, String, OwnedObjectPath)> {
        self.0
            .lock()
            .unwrap()
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                (
                    i.to_string(),
                    1000,
                    u.clone(),
                    "seat0".to_owned(),
                    OwnedObjectPath::try_from(format!("/org/freedesktop/login1/session/_{i}"))
                        .unwrap(),
                )
            })
            .collect()
    }

    fn inhibit(&self, what: &str, _who: &str, why: &str, mode: &str) -> OwnedFd {
        self.0
            .lock()
            .unwrap()
            .calls
            .push(format!("Inhibit({what}, {mode}, {why})"));
        let f = std::fs::File::open("/dev/null").unwrap();
        OwnedFd::from(std::os::fd::OwnedFd::from(f))
    }
}
