//! `update-agent provision`: one boot's provisioning run over the real
//! sources (kernel command line URL, systemd credential, config drive, ESP
//! file, metadata service), the real host name and the real directories.

use std::path::{Path, PathBuf};

use moho_core::layout::ESP_LABEL;
use moho_disk::GptSlotDisk;

use crate::provision::apply::LiveHost;
use crate::provision::local::{ConfigDrive, Credential, EspFile, HttpFetch, KernelCmdline};
use crate::provision::metadata::{HttpMetadata, MetadataService};
use crate::provision::source::Source;
use crate::provision::{Outcome, Paths, provision};
use crate::system::SystemView;

/// What `update-agent provision` was given.
#[derive(Debug, Clone)]
pub struct ProvisionArgs {
    /// The Moho disk (for its ESP), if not discovered.
    pub disk: Option<PathBuf>,
    /// The agent's state directory.
    pub state_dir: PathBuf,
    /// The run directory.
    pub run_dir: PathBuf,
    /// The agent's configuration directories.
    pub config_dirs: Vec<PathBuf>,
    /// The metadata service's base URL (`http://169.254.169.254`).
    pub metadata_url: String,
}

/// Runs it and says what happened.
pub fn run(args: &ProvisionArgs, system: &dyn SystemView) -> anyhow::Result<String> {
    let mount_dir = args.run_dir.join("provision-mnt");
    let esp = esp_device(args.disk.as_deref(), system);
    let fetch = HttpFetch::default();
    let metadata = HttpMetadata::default();
    let mut sources: Vec<Box<dyn Source>> = vec![
        Box::new(KernelCmdline {
            cmdline: system.kernel_cmdline().unwrap_or_default(),
            fetch: &fetch,
        }),
        Box::new(Credential::from_env()),
        Box::new(ConfigDrive {
            mount_dir: mount_dir.clone(),
        }),
        Box::new(EspFile {
            device: esp,
            mount_dir,
        }),
        Box::new(MetadataService {
            base: args.metadata_url.clone(),
            http: &metadata,
        }),
    ];
    let paths = Paths {
        state_dir: args.state_dir.clone(),
        run_dir: args.run_dir.clone(),
        config_dirs: args.config_dirs.clone(),
    };
    let out = provision(&paths, &mut sources, &mut LiveHost)?;
    Ok(match out {
        Outcome::NoDocument => format!(
            "no provision document (looked at: the kernel command line, \
             the systemd credential moho.provision, config drives labelled cidata or config-2, \
             moho/provision.toml on the ESP, the user data of a metadata service at {}): \
             the image's own configuration applies",
            args.metadata_url
        ),
        Outcome::Applied {
            origin,
            newly_accepted,
            written,
        } => format!(
            "provisioned from {origin}{}: {}",
            if newly_accepted {
                format!(" (accepted, stored in {})", args.state_dir.display())
            } else {
                String::new()
            },
            written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The device of the Moho disk's ESP, if there is one the kernel shows.
fn esp_device(disk: Option<&Path>, system: &dyn SystemView) -> Option<PathBuf> {
    let disk = crate::disk_locate::locate_disk(disk, system).ok()?;
    let gpt = GptSlotDisk::open(&disk, false).ok()?;
    let (&number, _) = gpt
        .snapshot()
        .partitions
        .iter()
        .find(|(_, p)| p.name == ESP_LABEL)?;
    crate::grow_state::partition_device(&disk, number).ok()
}
