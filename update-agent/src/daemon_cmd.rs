//! `update-agent daemon`: builds the real [`Runtime`] (the disk opened
//! once, the repository transport, the system bus with logind and systemd,
//! the update server over HTTPS, FleetLock, sd_notify, the wall clock),
//! serves `org.moho.Agent1`, and runs the loop until SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use anyhow::Context as _;
use moho_core::slot_table::SlotName;

use crate::config::AgentConfig;
use crate::config::types::RebootStrategy;
use crate::daemon::clock::{Clock, SystemClock};
use crate::daemon::commands::{Command, Request};
use crate::daemon::health::systemd::SystemdHealth;
use crate::daemon::login::dbus::LogindClient;
use crate::daemon::notify::SystemdNotify;
use crate::daemon::runner::{Daemon, Runtime, Systems};
use crate::daemon::server::http::{HttpRebootLock, HttpUpdateServer, SignedClient};
use crate::daemon::server::{RebootLock, UpdateServer};
use crate::daemon::status::StatusHandle;
use crate::node_identity::NodeIdentity;
use crate::service::disk::NodeDisk;
use crate::system::LiveSystem;

/// Everything `run` needs besides the config.
#[derive(Debug, Clone)]
pub struct DaemonArgs {
    /// `--disk`.
    pub disk: Option<std::path::PathBuf>,
    /// `--booted`.
    pub booted: Option<SlotName>,
}

/// Builds the real runtime for `config` with `clock` and `bus`.
pub fn runtime(
    config: &AgentConfig,
    args: &DaemonArgs,
    clock: Arc<dyn Clock>,
    bus: &zbus::blocking::Connection,
) -> anyhow::Result<Runtime> {
    let disk = crate::disk_locate::locate_disk(
        args.disk.as_deref().or(config.node.disk.as_deref()),
        &LiveSystem,
    )?;
    let identity = Arc::new(NodeIdentity::load(
        &config.state_dir,
        config.node.id.as_deref(),
        Path::new("/etc/machine-id"),
    )?);
    let server: Option<Box<dyn UpdateServer>> = match &config.server {
        Some(s) => Some(Box::new(HttpUpdateServer(SignedClient::new(
            s.url.clone(),
            s.ca_cert.as_deref(),
            Arc::clone(&identity),
            Arc::clone(&clock),
        )?))),
        None => None,
    };
    let lock: Option<Box<dyn RebootLock>> = match &config.reboot.strategy {
        RebootStrategy::FleetLock { url, group } => {
            let ca = config.server.as_ref().and_then(|s| s.ca_cert.as_deref());
            Some(Box::new(HttpRebootLock {
                client: SignedClient::new(
                    url.clone(),
                    ca,
                    Arc::clone(&identity),
                    Arc::clone(&clock),
                )?,
                group: group.to_string(),
            }))
        }
        _ => None,
    };
    let disk = NodeDisk::open(&disk, true)
        .with_context(|| format!("opening {} for the daemon", disk.display()))?;
    Ok(Runtime {
        disk,
        systems: Systems {
            clock,
            transport: Arc::new(crate::fetch::repository_transport(config)?),
            login: Box::new(LogindClient::new(bus.clone())),
            health: Box::new(SystemdHealth::new(bus.clone())),
            server,
            lock,
            notify: Arc::new(SystemdNotify),
            system: Box::new(LiveSystem),
            booted_override: args.booted,
            node_id: identity.id.clone(),
            public_key: identity.public_key(),
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| moho_protocol::names::check_hostname(h).is_ok()),
        },
    })
}

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(config: AgentConfig, args: &DaemonArgs) -> anyhow::Result<()> {
    let bus = crate::dbus::system_bus().context("connecting to the system bus")?;
    let rt = runtime(&config, args, Arc::new(SystemClock), &bus)?;
    let status = StatusHandle::default();
    let (tx, rx) = mpsc::channel();
    crate::dbus::service::serve(&bus, status.clone(), tx.clone())
        .context("serving org.moho.Agent1 on the system bus")?;
    stop_on_signal(tx)?;
    tracing::info!(disk = %rt.disk.path().display(), node = %rt.systems.node_id, "update agent started");
    Daemon::new(config, rt, status, rx)?.run()?;
    tracing::info!("update agent stopped");
    Ok(())
}

/// SIGTERM and SIGINT become a `Stop` command.
fn stop_on_signal(tx: mpsc::Sender<Request>) -> anyhow::Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    // Blocked here (and in every thread started from now on), taken by the
    // waiting thread below.
    set.thread_block().context("blocking SIGTERM/SIGINT")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(sig) = set.wait() {
                tracing::info!(signal = ?sig, "stopping");
                let _ = tx.send(Request {
                    command: Command::Stop,
                    reply: None,
                });
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}
