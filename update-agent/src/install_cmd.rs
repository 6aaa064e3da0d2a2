//! `update-agent install`: runs the install path once against the
//! configured repository, with the disk, booted slot and booted version of
//! this machine (or the ones given on the command line).

use std::path::PathBuf;
use std::time::SystemTime;

use moho_core::slot_table::SlotName;
use moho_disk::{GptSlotDisk, SlotDisk};
use semver::Version;

use crate::booted::detect_booted;
use crate::config::AgentConfig;
use crate::disk_locate::locate_disk;
use crate::fetch::SchemeTransport;
use crate::fetch::http::HttpTransport;
use crate::install::progress::Progress;
use crate::install::stream::RetryPolicy;
use crate::install::{InstallOutcome, InstallRequest, Installer};
use crate::repo_client::RepoClient;
use crate::slots_cmd::SlotsError;
use crate::state::machine::Report;
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
    report: &dyn Fn(&Report),
) -> anyhow::Result<InstallOutcome> {
    let disk_path = locate_disk(args.disk.as_deref().or(config.node.disk.as_deref()), system)?;
    let mut disk = GptSlotDisk::open(&disk_path, true)?;
    let table = disk.read_slots()?;
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
    let ca = config.repository.ca_cert.as_deref();
    let transport = SchemeTransport::new(HttpTransport::new(ca)?);
    let mut installer = Installer {
        board: config.node.board.as_str(),
        channel: config.node.channel.as_str(),
        tries: config.update.tries,
        repo: RepoClient {
            transport: &transport,
            metadata_url: &config.repository.metadata_url,
            targets_url: &config.repository.targets_url,
            shipped_root: &config.repository.root,
            state_dir: &config.state_dir,
        },
        disk: &mut disk,
        booted,
        booted_version,
        state_dir: &config.state_dir,
        progress,
        retry: RetryPolicy {
            attempts: config.update.download_attempts,
            first_backoff: config.update.download_backoff,
        },
        now: SystemTime::now(),
        report,
    };
    Ok(installer.run(&InstallRequest {
        target: args.target.clone(),
        version: args.version.clone(),
    })?)
}

/// The human-readable result.
pub fn render(outcome: &InstallOutcome) -> String {
    match outcome {
        InstallOutcome::NothingToInstall { booted_version } => format!(
            "nothing to install: no release newer than {} for this node",
            booted_version.as_deref().unwrap_or("(unknown)")
        ),
        InstallOutcome::AlreadyStaged { version, slot } => {
            format!("{version} is already installed in slot {slot} and armed; reboot to try it")
        }
        InstallOutcome::Installed(r) => format!(
            "installed {} ({}) into slot {}, armed with {} tries; reboot to try it\n  \
             {} bytes: {} downloaded, {} copied from the booted slot, {} already in place",
            r.version,
            r.target,
            r.slot,
            r.tries,
            r.image_bytes,
            r.downloaded_bytes,
            r.reused_bytes,
            r.resumed_bytes
        ),
    }
}
