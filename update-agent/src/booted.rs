//! Which slot the running system booted from.
//!
//! In order: an explicit override (`--booted`, for tests and rescue
//! shells), `moho.slot=` on the kernel command line (the boot selector puts
//! it there), `root=PARTUUID=` on the command line, and finally the device
//! actually mounted at `/`, matched against the slots by PARTUUID or by
//! partition number on the same disk.

use std::fmt;
use std::path::Path;

use moho_core::cmdline::{CmdlineError, parse_boot_hints};
use moho_core::slot_table::{SlotName, SlotTable};

use crate::system::SystemView;

/// How the booted slot was determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootedSource {
    /// `--booted` on the command line.
    Override,
    /// `moho.slot=` on the kernel command line.
    CmdlineSlot,
    /// `root=PARTUUID=` on the kernel command line.
    CmdlinePartuuid,
    /// The device mounted at `/`.
    RootDevice,
}

impl fmt::Display for BootedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Override => "--booted",
            Self::CmdlineSlot => "moho.slot= on the kernel command line",
            Self::CmdlinePartuuid => "root=PARTUUID= on the kernel command line",
            Self::RootDevice => "the device mounted at /",
        })
    }
}

/// The booted slot and how we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booted {
    /// The slot.
    pub slot: SlotName,
    /// How it was found.
    pub source: BootedSource,
}

/// The booted slot could not be determined, or the hints are contradictory.
#[derive(Debug, thiserror::Error)]
pub enum BootedError {
    /// A hint is malformed.
    #[error(transparent)]
    Cmdline(#[from] CmdlineError),
    /// The root device could not be inspected.
    #[error("inspecting the root device: {0}")]
    Io(#[from] std::io::Error),
}

/// Works out the booted slot of `table` (on `disk`), or `None` when the
/// running system did not boot from this disk.
pub fn detect_booted(
    system: &dyn SystemView,
    override_slot: Option<SlotName>,
    table: &SlotTable,
    disk: &Path,
) -> Result<Option<Booted>, BootedError> {
    if let Some(slot) = override_slot {
        return Ok(Some(Booted {
            slot,
            source: BootedSource::Override,
        }));
    }
    let hints = parse_boot_hints(&system.kernel_cmdline()?)?;
    if let Some(slot) = hints.slot {
        return Ok(Some(Booted {
            slot,
            source: BootedSource::CmdlineSlot,
        }));
    }
    if let Some(slot) = hints.root_partuuid.and_then(|u| table.slot_by_partuuid(u)) {
        return Ok(Some(Booted {
            slot,
            source: BootedSource::CmdlinePartuuid,
        }));
    }
    let Some(root) = system.root_device()? else {
        return Ok(None);
    };
    let by_uuid = root.partuuid.and_then(|u| table.slot_by_partuuid(u));
    let by_number = match (&root.disk, root.partition) {
        (Some(d), Some(n)) if same_file(d, disk) => table.slot_by_partition(n),
        _ => None,
    };
    Ok(by_uuid.or(by_number).map(|slot| Booted {
        slot,
        source: BootedSource::RootDevice,
    }))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{FakeSystem, RootDevice};
    use moho_core::slot_attrs::SlotAttributes;
    use moho_core::slot_table::SlotEntry;
    use uuid::Uuid;

    fn table() -> SlotTable {
        let e = |n: u32, l: &str| SlotEntry {
            partition: n,
            label: l.into(),
            partuuid: Uuid::from_u128(u128::from(n)),
            attrs: SlotAttributes::default(),
        };
        SlotTable {
            a: e(2, "ROOT-A"),
            b: e(3, "ROOT-B"),
        }
    }

    #[test]
    fn the_override_wins() {
        let sys = FakeSystem {
            cmdline: "moho.slot=A".into(),
            root: None,
        };
        let b = detect_booted(&sys, Some(SlotName::B), &table(), Path::new("/d")).unwrap();
        assert_eq!(b.unwrap().slot, SlotName::B);
    }

    #[test]
    fn cmdline_slot_then_partuuid_then_root_device() {
        let t = table();
        let d = Path::new("/dev/vda");
        let sys = FakeSystem {
            cmdline: "root=PARTUUID=00000000-0000-0000-0000-000000000002 moho.slot=B".into(),
            root: None,
        };
        let b = detect_booted(&sys, None, &t, d).unwrap().unwrap();
        assert_eq!((b.slot, b.source), (SlotName::B, BootedSource::CmdlineSlot));

        let sys = FakeSystem {
            cmdline: "root=PARTUUID=00000000-0000-0000-0000-000000000003".into(),
            root: None,
        };
        let b = detect_booted(&sys, None, &t, d).unwrap().unwrap();
        assert_eq!(
            (b.slot, b.source),
            (SlotName::B, BootedSource::CmdlinePartuuid)
        );

        let sys = FakeSystem {
            cmdline: "quiet".into(),
            root: Some(RootDevice {
                devno: (259, 2),
                partuuid: None,
                partition: Some(2),
                disk: Some(d.to_owned()),
            }),
        };
        let b = detect_booted(&sys, None, &t, d).unwrap().unwrap();
        assert_eq!((b.slot, b.source), (SlotName::A, BootedSource::RootDevice));
    }

    #[test]
    fn a_root_on_another_disk_is_not_a_slot() {
        let sys = FakeSystem {
            cmdline: String::new(),
            root: Some(RootDevice {
                devno: (8, 2),
                partuuid: Some(Uuid::from_u128(99)),
                partition: Some(2),
                disk: Some("/dev/sdz".into()),
            }),
        };
        assert!(
            detect_booted(&sys, None, &table(), Path::new("/dev/vda"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_bad_hint_is_an_error() {
        let sys = FakeSystem {
            cmdline: "moho.slot=Q".into(),
            root: None,
        };
        let err = detect_booted(&sys, None, &table(), Path::new("/d")).unwrap_err();
        assert!(err.to_string().contains("moho.slot=\"Q\""), "{err}");
    }
}
