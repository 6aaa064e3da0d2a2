//! What `boot-select` reads from its own kernel command line: its role and
//! its options. Pure.
//!
//! | parameter | meaning | default |
//! |---|---|---|
//! | `moho.slot=A\|B` | present: slot-initramfs role (mount `root=`, `switch_root`); absent: selector role | selector |
//! | `root=PARTUUID=<guid>` | slot role: the slot to mount as `/` | required in the slot role |
//! | `rootfstype=` | slot role: filesystem of the root | every filesystem the kernel knows |
//! | `init=` | slot role: the program to start on the new root | `/sbin/init` |
//! | `moho.wait=SECONDS` | how long to wait for the disk to appear | 30 |
//! | `moho.disk=/dev/NAME` | selector role: the disk holding the slots | the only disk with Moho slots |
//! | `moho.retry=SECONDS` | after giving up: wait this long, then reset the machine | 30 |
//! | `moho.watchdog=SECONDS` | selector: hardware watchdog timeout armed for a trial boot (0: never arm); slot role: set by the selector on a trial boot, the watchdog is armed again with it | 60 (selector), absent (slot) |

use std::path::PathBuf;

use moho_core::boot_files::cmdline_words;
use moho_core::cmdline::parse_boot_hints;
use moho_core::slot_table::SlotName;
use uuid::Uuid;

/// Which job `boot-select` does in this boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `/init` of the boot selector's initramfs: choose a slot and kexec it.
    Selector,
    /// `/init` of a slot kernel's initramfs: mount the slot and switch to it.
    SlotInit,
}

/// The parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootParams {
    /// The role.
    pub role: Role,
    /// `moho.slot=`.
    pub slot: Option<SlotName>,
    /// `root=PARTUUID=`.
    pub root_partuuid: Option<Uuid>,
    /// `rootfstype=`.
    pub rootfstype: Option<String>,
    /// `init=`.
    pub init: String,
    /// `moho.wait=`, seconds.
    pub wait_secs: u32,
    /// `moho.disk=`.
    pub disk: Option<PathBuf>,
    /// `moho.retry=`, seconds.
    pub retry_secs: u32,
    /// `moho.watchdog=`, seconds, if given.
    pub watchdog_secs: Option<u32>,
    /// Values that made no sense and were ignored, for the console.
    pub warnings: Vec<String>,
}

/// Default `moho.wait=`.
pub const DEFAULT_WAIT_SECS: u32 = 30;
/// Default `moho.retry=`.
pub const DEFAULT_RETRY_SECS: u32 = 30;
/// Default `init=`.
pub const DEFAULT_INIT: &str = "/sbin/init";
/// Default `moho.watchdog=` of the selector: long enough for a slot kernel
/// to boot and its systemd to take the watchdog over (`RuntimeWatchdogSec`).
pub const DEFAULT_WATCHDOG_SECS: u32 = 60;

/// Reads the options from a kernel command line; the last occurrence wins.
pub fn parse(cmdline: &str) -> BootParams {
    let mut p = BootParams {
        role: Role::Selector,
        slot: None,
        root_partuuid: None,
        rootfstype: None,
        init: DEFAULT_INIT.to_owned(),
        wait_secs: DEFAULT_WAIT_SECS,
        disk: None,
        retry_secs: DEFAULT_RETRY_SECS,
        watchdog_secs: None,
        warnings: Vec::new(),
    };
    for word in cmdline_words(cmdline) {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        match key {
            "moho.slot" | "root" => match parse_boot_hints(&word) {
                Ok(h) if key == "moho.slot" => p.slot = h.slot,
                Ok(h) => {
                    p.root_partuuid = h.root_partuuid;
                    if h.root_partuuid.is_none() {
                        p.warnings
                            .push(format!("root={value} is not root=PARTUUID=<guid>"));
                    }
                }
                Err(e) => p.warnings.push(e.to_string()),
            },
            "rootfstype" => p.rootfstype = Some(value.to_owned()),
            "init" => p.init = value.to_owned(),
            "moho.wait" => {
                seconds(&mut p.warnings, key, value, &mut p.wait_secs);
            }
            "moho.retry" => {
                seconds(&mut p.warnings, key, value, &mut p.retry_secs);
            }
            "moho.watchdog" => {
                let mut secs = p.watchdog_secs.unwrap_or(DEFAULT_WATCHDOG_SECS);
                if seconds(&mut p.warnings, key, value, &mut secs) {
                    p.watchdog_secs = Some(secs);
                }
            }
            "moho.disk" => p.disk = Some(PathBuf::from(value)),
            _ => {}
        }
    }
    if cmdline_words(cmdline)
        .iter()
        .any(|w| w.starts_with("moho.slot="))
    {
        p.role = Role::SlotInit;
    }
    p
}

fn seconds(warnings: &mut Vec<String>, key: &str, value: &str, into: &mut u32) -> bool {
    match value.parse::<u32>() {
        Ok(v) if v <= 3600 => {
            *into = v;
            true
        }
        _ => {
            warnings.push(format!(
                "{key}={value:?} is not a number of seconds (0-3600); using {into}"
            ));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selector_entry_has_no_slot_and_keeps_defaults() {
        let p = parse("console=ttyS0 quiet\n");
        assert_eq!(p.role, Role::Selector);
        assert_eq!((p.wait_secs, p.retry_secs), (30, 30));
        assert_eq!(p.init, "/sbin/init");
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn what_the_selector_hands_a_slot_kernel_is_the_slot_role() {
        let p = parse(
            "ro panic=10 console=ttyS0 init=/usr/lib/systemd/systemd rootfstype=ext4 \
             root=PARTUUID=7130c94a-213a-4e5a-8e26-6cce9662f132 moho.slot=B",
        );
        assert_eq!(p.role, Role::SlotInit);
        assert_eq!(p.slot, Some(SlotName::B));
        assert_eq!(
            p.root_partuuid.unwrap().to_string(),
            "7130c94a-213a-4e5a-8e26-6cce9662f132"
        );
        assert_eq!(p.rootfstype.as_deref(), Some("ext4"));
        assert_eq!(p.init, "/usr/lib/systemd/systemd");
    }

    #[test]
    fn the_watchdog_timeout_is_read_and_absent_by_default() {
        assert_eq!(parse("console=ttyS0").watchdog_secs, None);
        assert_eq!(parse("moho.watchdog=120").watchdog_secs, Some(120));
        assert_eq!(parse("moho.watchdog=0").watchdog_secs, Some(0));
        let p = parse("moho.watchdog=forever");
        assert_eq!(p.watchdog_secs, None);
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn bad_values_are_reported_and_ignored() {
        let p = parse("moho.wait=soon moho.retry=5 root=/dev/vda2 moho.slot=C moho.disk=/dev/vdb");
        assert_eq!(p.wait_secs, 30);
        assert_eq!(p.retry_secs, 5);
        assert_eq!(p.disk, Some(PathBuf::from("/dev/vdb")));
        assert_eq!(p.slot, None);
        assert_eq!(p.role, Role::SlotInit, "moho.slot= was there, however bad");
        assert_eq!(
            p.warnings,
            [
                "moho.wait=\"soon\" is not a number of seconds (0-3600); using 30",
                "root=/dev/vda2 is not root=PARTUUID=<guid>",
                "kernel command line: moho.slot=\"C\" is not A or B",
            ]
        );
    }
}
