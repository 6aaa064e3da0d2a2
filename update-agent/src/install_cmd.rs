//! `update-agent install`: a CLI adapter over the install service. It finds
//! and opens this machine's disk (or the one given), builds the repository
//! transport from the configuration, owns the agent state for the run
//! ([`StateKeeper`]), and hands each step of the install to it.

use std::path::PathBuf;
use std::time::SystemTime;

use moho_core::slot_table::SlotName;
use semver::Version;

use crate::booted::detect_booted;
use crate::config::AgentConfig;
use crate::daemon::clock::{Clock, SystemClock};
use crate::disk_locate::locate_disk;
use crate::install::progress::Progress;
use crate::install::stream::RetryPolicy;
use crate::install::{InstallError, InstallRequest};
use crate::repo_client::RepoClient;
use crate::service::disk::NodeDisk;
use crate::service::install::{self as install_service, InstallOutcome, InstallService};
use crate::service::slots::SlotsError;
use crate::state::assess::{BootFinding, assess};
use crate::state::machine::Action;
use crate::state::{Event, StateKeeper};
use crate::system::SystemView;

/// `update-agent install` arguments, resolved.
#[derive(Debug, Clone)]
pub struct InstallArgs {
    /// `--disk`.
    pub disk: Option<PathBuf>,
    /// `--target`.
    pub target: Option<String>,
    /// `--version`.
    pub version: Option<Version>,
}

/// Runs one install.
pub fn run(
    config: &AgentConfig,
    args: &InstallArgs,
    system: &dyn SystemView,
    booted_override: Option<SlotName>,
    progress: &dyn Progress,
) -> anyhow::Result<InstallOutcome> {
    let disk_path = locate_disk(args.disk.as_deref().or(config.node.disk.as_deref()), system)?;
    let mut disk = NodeDisk::open(&disk_path, true)?;
    let table = disk.table().read_slots()?;
    let booted = detect_booted(system, booted_override, &table, &disk_path)
        .map_err(|source| SlotsError::Booted {
            disk: disk_path.display().to_string(),
            source,
        })?
        .map(|b| b.slot)
        .ok_or_else(|| SlotsError::BootedUnknown {
            disk: disk_path.display().to_string(),
            needed_for: "install",
        })?;
    let booted_version = crate::os_release::booted_version(&config.node.os_release)?;
    let transport = crate::fetch::repository_transport(config)?;
    let mut keeper = StateKeeper::load(&config.state_dir)?;
    let now = SystemClock.now();
    // What the boots since the last run did to a staged update (booted it,
    // fell back from it), as the daemon finds at its start: without this a
    // release staged by an earlier `install` and booted since would still
    // look staged, and be "cancelled" from the slot now running.
    let version_text = booted_version.as_ref().map(Version::to_string);
    if let BootFinding::Events(events) =
        assess(keeper.state(), booted, &table, version_text.as_deref(), now)
    {
        for e in events {
            log_reports(keeper.apply(e)?);
        }
    }
    let state = keeper.state().clone();
    let mut svc = InstallService {
        board: config.node.board.as_str(),
        channel: config.node.channel.as_str(),
        tries: config.update.tries,
        repo: RepoClient::new(
            &transport,
            &config.repository.metadata_url,
            &config.repository.targets_url,
            &config.repository.root,
            &config.state_dir,
        ),
        disk: &mut disk,
        booted,
        booted_version,
        state_dir: &config.state_dir,
        progress,
        retry: RetryPolicy {
            attempts: config.update.download_attempts,
            first_backoff: config.update.download_backoff,
        },
        now: SystemTime::from(now),
    };
    let mut owner = |e: Event| -> Result<(), InstallError> {
        log_reports(keeper.apply(e)?);
        Ok(())
    };
    Ok(install_service::run(
        &mut svc,
        &InstallRequest {
            target: args.target.clone(),
            version: args.version.clone(),
        },
        &state,
        &mut owner,
    )?)
}

/// Logs the reports among `actions`: without the daemon nobody sends them.
fn log_reports(actions: Vec<Action>) {
    for a in actions {
        if let Action::Report(r) = a {
            tracing::info!(report = ?r, "install step");
        }
    }
}
