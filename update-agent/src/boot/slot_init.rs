//! The slot-initramfs role: the slot kernel was started by the selector with
//! `root=PARTUUID=<slot> moho.slot=X`; find that partition, mount it
//! read-only and hand over to the slot's init with `switch_root`. On a trial
//! boot (`moho.watchdog=N`) the hardware watchdog is armed again first:
//! loading its driver in this kernel stopped the timer the selector armed.
//!
//! A failure here leaves the slot's boot try used up, so the reset that
//! follows lets the selector fall back (DESIGN §4).

use std::path::{Path, PathBuf};
use std::time::Duration;

use moho_core::slot_table::SlotName;
use uuid::Uuid;

use crate::boot::sys::{BootSystem, watchdog_name};

/// What the slot role was told.
#[derive(Debug, Clone)]
pub struct SlotInitConfig {
    /// `root=PARTUUID=`.
    pub partuuid: Option<Uuid>,
    /// `moho.slot=`.
    pub slot: Option<SlotName>,
    /// `rootfstype=`.
    pub rootfstype: Option<String>,
    /// `init=`.
    pub init: String,
    /// How many times to look for the partition.
    pub wait_attempts: u32,
    /// Pause between looks.
    pub wait_interval: Duration,
    /// Where the new root is mounted.
    pub new_root: PathBuf,
    /// `moho.watchdog=`: a trial boot; arm the watchdog with this timeout.
    pub watchdog_secs: Option<u32>,
}

/// Mounts the slot and switches to it. Returns only on failure (or from a
/// fake), with the reason for the console.
pub fn run_slot_init(sys: &mut dyn BootSystem, cfg: &SlotInitConfig) -> Result<(), String> {
    if let Some(secs) = cfg.watchdog_secs.filter(|s| *s > 0) {
        match sys.arm_watchdog(secs) {
            Ok(()) => {
                let name = watchdog_name(sys);
                sys.say(&format!(
                    "trial boot: hardware watchdog armed ({secs} s, {name})"
                ));
            }
            Err(e) => sys.say(&format!(
                "WARNING: trial boot without the hardware watchdog: {e}"
            )),
        }
    }
    let Some(partuuid) = cfg.partuuid else {
        return Err("no root=PARTUUID=<guid> on the kernel command line".to_owned());
    };
    let (device, slot) = find_partition(sys, cfg, partuuid)?;
    match (cfg.slot, slot) {
        (Some(told), Some(found)) if told != found => sys.say(&format!(
            "WARNING: moho.slot={told} but PARTUUID {partuuid} is slot {found}; booting slot {found}"
        )),
        _ => {}
    }
    let fstype = sys
        .mount_ro(&device, &cfg.new_root, cfg.rootfstype.as_deref())
        .map_err(|e| e.to_string())?;
    sys.say(&format!(
        "slot {}: {} ({fstype}) mounted read-only; starting {}",
        slot.map_or_else(|| "?".to_owned(), |s| s.to_string()),
        device.display(),
        cfg.init
    ));
    let switched = sys.switch_root(&cfg.new_root, &cfg.init);
    if switched.is_err() {
        let _ = sys.unmount(&cfg.new_root);
    }
    switched.map_err(|e| e.to_string())
}

fn find_partition(
    sys: &mut dyn BootSystem,
    cfg: &SlotInitConfig,
    partuuid: Uuid,
) -> Result<(PathBuf, Option<SlotName>), String> {
    let mut seen = Vec::new();
    for attempt in 0..cfg.wait_attempts.max(1) {
        if attempt > 0 {
            sys.sleep(cfg.wait_interval);
        }
        seen.clear();
        for disk in sys.disks() {
            let found = sys
                .open_slot_disk(&disk)
                .and_then(|mut d| d.read_slots())
                .map(|t| {
                    t.slot_by_partuuid(partuuid)
                        .map(|s| (s, t.get(s).partition))
                });
            match found {
                Ok(Some((slot, number))) => {
                    return sys
                        .partition_device(&disk, number)
                        .map(|dev| (dev, Some(slot)))
                        .map_err(|e| e.to_string());
                }
                Ok(None) => seen.push(format!("{}: no slot with that PARTUUID", disk.display())),
                Err(e) => seen.push(e.to_string()),
            }
        }
    }
    Err(format!(
        "root PARTUUID {partuuid} did not appear within {} tries ({})",
        cfg.wait_attempts.max(1),
        if seen.is_empty() {
            "no block devices at all".to_owned()
        } else {
            seen.join("; ")
        }
    ))
}

/// Whether `path` is `/` or empty, which `switch_root` must never be given.
pub fn is_root(path: &Path) -> bool {
    path.as_os_str().is_empty() || path == Path::new("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::fake::{FakeBoot, FakeCall};

    fn cfg(partuuid: u128, slot: SlotName) -> SlotInitConfig {
        SlotInitConfig {
            partuuid: Some(Uuid::from_u128(partuuid)),
            slot: Some(slot),
            rootfstype: None,
            init: "/sbin/init".into(),
            wait_attempts: 3,
            wait_interval: Duration::from_millis(100),
            new_root: PathBuf::from("/sysroot"),
            watchdog_secs: None,
        }
    }

    #[test]
    fn a_trial_boot_arms_the_watchdog_again_before_anything_else_and_a_good_one_does_not() {
        let mut sys = FakeBoot::with_slots();
        let mut c = cfg(3, SlotName::B);
        c.watchdog_secs = Some(60);
        run_slot_init(&mut sys, &c).unwrap();
        assert_eq!(sys.calls[0], FakeCall::ArmWatchdog(60));
        assert!(sys.said("trial boot: hardware watchdog armed (60 s, i6300ESB timer)"));
        let mut sys = FakeBoot::with_slots();
        run_slot_init(&mut sys, &cfg(3, SlotName::B)).unwrap();
        assert!(sys.watchdog_calls().is_empty());
    }

    #[test]
    fn mounts_the_named_partition_and_switches_to_it() {
        let mut sys = FakeBoot::with_slots();
        sys.disk_appears_after = 2;
        run_slot_init(&mut sys, &cfg(3, SlotName::B)).unwrap();
        assert_eq!(
            sys.calls,
            [
                FakeCall::Sleep(Duration::from_millis(100)),
                FakeCall::Mount {
                    device: "/dev/vda3".into(),
                    target: "/sysroot".into()
                },
                FakeCall::SwitchRoot {
                    root: "/sysroot".into(),
                    init: "/sbin/init".into()
                },
            ]
        );
    }

    #[test]
    fn an_unknown_partuuid_is_reported_after_waiting() {
        let mut sys = FakeBoot::with_slots();
        let err = run_slot_init(&mut sys, &cfg(99, SlotName::B)).unwrap_err();
        assert_eq!(
            err,
            "root PARTUUID 00000000-0000-0000-0000-000000000063 did not appear within 3 tries \
             (/dev/vda: no slot with that PARTUUID)"
        );
        let mut c = cfg(3, SlotName::B);
        c.partuuid = None;
        assert!(
            run_slot_init(&mut sys, &c)
                .unwrap_err()
                .contains("no root=PARTUUID")
        );
    }

    #[test]
    fn a_failed_switch_is_undone_and_reported() {
        let mut sys = FakeBoot::with_slots();
        sys.bad_switch_root = true;
        let err = run_slot_init(&mut sys, &cfg(2, SlotName::B)).unwrap_err();
        assert!(err.contains("switch_root to /sysroot: execv"), "{err}");
        assert!(sys.said("WARNING: moho.slot=B but PARTUUID"));
        assert!(sys.mounted.is_empty());
    }

    #[test]
    fn root_is_never_a_new_root() {
        assert!(is_root(Path::new("/")));
        assert!(is_root(Path::new("")));
        assert!(!is_root(Path::new("/sysroot")));
    }
}
