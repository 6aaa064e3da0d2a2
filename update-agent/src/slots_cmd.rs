//! `update-agent slots ...` and the local half of `mark-good`: CLI adapters
//! over [`crate::service::slots::SlotService`]. They find and open the disk,
//! call the service and print its answer; the rules live in the service.

use std::path::{Path, PathBuf};

use moho_core::selection::BootReason;
use moho_core::slot_table::SlotName;
use moho_core::transitions::FieldChange;
use moho_disk::{GptSlotDisk, SlotDisk};

use crate::cli::{SlotsArgs, SlotsCommand};
use crate::disk_locate::locate_disk;
use crate::service::slots::SlotService;
use crate::system::SystemView;

/// `update-agent slots [--disk PATH] [--json] [COMMAND]`.
pub fn run(
    booted: Option<SlotName>,
    args: SlotsArgs,
    system: &dyn SystemView,
) -> anyhow::Result<()> {
    let path = locate_disk(args.disk.as_deref(), system)?;
    let writable = args
        .command
        .as_ref()
        .is_some_and(|c| !matches!(c, SlotsCommand::Next));
    let mut disk = GptSlotDisk::open(&path, writable)?;
    let health = disk.health();
    if health.needs_repair() {
        eprintln!(
            "update-agent: warning: {}: GPT {health}; the next write repairs it",
            path.display()
        );
    }
    let mut svc = SlotService {
        disk: &mut disk,
        system,
        booted_override: booted,
    };
    match args.command {
        None => {
            let view = svc.show()?;
            if args.json {
                moho_cli::outln!("{}", serde_json::to_string_pretty(&view)?)?;
            } else {
                moho_cli::outln!("{view}")?;
            }
        }
        Some(SlotsCommand::Next) => moho_cli::outln!("{}", svc.next_boot()?)?,
        Some(SlotsCommand::Boot) => {
            let out = svc.boot()?;
            if out.reason == BootReason::FallbackLastGood {
                eprintln!(
                    "update-agent: WARNING: no slot is eligible; falling back to slot {}, \
                     the last one that booted successfully",
                    out.slot
                );
            }
            moho_cli::outln!("{}", out.slot)?;
        }
        Some(SlotsCommand::MarkGood { slot }) => moho_cli::outln!("{}", svc.mark_good(slot)?)?,
        Some(SlotsCommand::Rollback) => moho_cli::outln!("{}", svc.rollback()?)?,
        Some(SlotsCommand::Set {
            slot,
            priority,
            tries,
            successful,
            force,
        }) => {
            let change = FieldChange {
                priority,
                tries,
                successful,
            };
            moho_cli::outln!("{}", svc.set(slot, change, force)?)?;
        }
    }
    Ok(())
}

/// The disk for `mark-good`: `--disk`, else `node.disk` of the
/// configuration, else discovered.
pub fn mark_good_disk(
    disk: Option<&Path>,
    config_dirs: &[PathBuf],
    system: &dyn SystemView,
) -> anyhow::Result<PathBuf> {
    let dirs = crate::config::dirs_or_default(config_dirs);
    let configured = crate::config::load(&dirs)
        .ok()
        .and_then(|(c, _)| c.node.disk);
    Ok(locate_disk(disk.or(configured.as_deref()), system)?)
}

/// "slot X is already marked good" when the booted slot is good, else `None`.
pub fn already_good(
    path: &Path,
    system: &dyn SystemView,
    booted: Option<SlotName>,
) -> anyhow::Result<Option<String>> {
    let mut disk = GptSlotDisk::open(path, false)?;
    let mut svc = SlotService {
        disk: &mut disk,
        system,
        booted_override: booted,
    };
    Ok(svc
        .booted_already_good()?
        .map(|s| format!("slot {s} is already marked good")))
}

/// Marks the booted slot good on the disk itself (no daemon running).
pub fn mark_good_local(
    path: &Path,
    system: &dyn SystemView,
    booted: Option<SlotName>,
) -> anyhow::Result<String> {
    let mut disk = GptSlotDisk::open(path, true)?;
    let mut svc = SlotService {
        disk: &mut disk,
        system,
        booted_override: booted,
    };
    Ok(svc.mark_good(None)?.to_string())
}
