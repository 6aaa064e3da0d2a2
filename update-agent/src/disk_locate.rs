//! Which disk holds the slots, when the command line does not say.
//!
//! First the disk the root filesystem lives on; otherwise every block
//! device in `/sys/block` is tried and exactly one must hold a Moho slot
//! pair. Anything else is an error that lists what was looked at.

use std::fs;
use std::path::{Path, PathBuf};

use moho_disk::GptSlotDisk;

use crate::system::SystemView;

/// No single Moho disk could be found.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// Nothing holds ROOT-A/ROOT-B.
    #[error("no disk with Moho slots found (looked at: {looked_at}); pass --disk PATH")]
    NotFound {
        /// The devices tried.
        looked_at: String,
    },
    /// More than one disk holds them.
    #[error("several disks hold Moho slots ({0}); pass --disk PATH to choose")]
    Ambiguous(String),
}

/// The disk to use: `explicit` if given, else the one found on this machine.
pub fn locate_disk(
    explicit: Option<&Path>,
    system: &dyn SystemView,
) -> Result<PathBuf, LocateError> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    if let Ok(Some(root)) = system.root_device()
        && let Some(disk) = root.disk
        && GptSlotDisk::open(&disk, false).is_ok()
    {
        return Ok(disk);
    }
    let mut looked_at = Vec::new();
    let mut found = Vec::new();
    let names = fs::read_dir("/sys/block")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for name in names {
        if ["ram", "zram", "sr", "fd"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        let dev = PathBuf::from("/dev").join(&name);
        looked_at.push(dev.display().to_string());
        if GptSlotDisk::open(&dev, false).is_ok() {
            found.push(dev);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(LocateError::NotFound {
            looked_at: if looked_at.is_empty() {
                "no block devices".into()
            } else {
                looked_at.join(", ")
            },
        }),
        _ => Err(LocateError::Ambiguous(
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}
