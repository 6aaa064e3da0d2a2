//! `boot-select`: the `/init` of Moho's initramfs (DESIGN §4).
//!
//! In the boot selector's initramfs (its kernel started by systemd-boot, or
//! by qemu's `-kernel`) it chooses a slot with the same rule as
//! `update-agent slots boot`, writes the tries decrement, and `kexec`s the
//! slot's own kernel. Started by that kernel with `moho.slot=` on the
//! command line, the same program is the slot kernel's initramfs: it mounts
//! `root=PARTUUID=` and `switch_root`s into the slot.
//!
//! - [`params`]: role and options from the kernel command line (pure).
//! - [`plan`]: which slot to boot, and which after a failure (pure).
//! - [`selector`]: the selector role's flow.
//! - [`slot_init`]: the slot-initramfs role's flow.
//! - [`sys`]: the machine behind [`sys::BootSystem`]; [`live`] is the real
//!   one, [`fake`] records calls for tests.
//! - [`early`]: pseudo filesystems and kernel modules.

pub mod early;
pub mod fake;
pub mod live;
pub mod params;
pub mod plan;
pub mod selector;
pub mod slot_init;
pub mod sys;

use std::path::PathBuf;
use std::time::Duration;

use nix::sys::reboot::{RebootMode, reboot};

use crate::boot::live::LiveBoot;
use crate::boot::params::Role;
use crate::boot::selector::{SelectorConfig, SelectorOutcome, run_selector};
use crate::boot::slot_init::{SlotInitConfig, run_slot_init};
use crate::boot::sys::BootSystem;

/// Where the selector mounts a slot to read its kernel.
pub const SLOT_MOUNT_POINT: &str = "/run/moho-slot";
/// Where the slot role mounts the new root.
pub const NEW_ROOT: &str = "/sysroot";
/// Pause between looks for a disk.
pub const WAIT_INTERVAL: Duration = Duration::from_millis(250);

/// Runs as process 1 of an initramfs; never returns.
pub fn run_as_init(init_args: Vec<String>) -> ! {
    let mut sys = LiveBoot { init_args };
    early::mount_pseudo_filesystems(&mut sys);
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_else(|e| {
        sys.say(&format!("WARNING: /proc/cmdline: {e}"));
        String::new()
    });
    let params = params::parse(&cmdline);
    for w in &params.warnings {
        sys.say(&format!("WARNING: {w}"));
    }
    let loaded = early::load_modules(&mut sys);
    let attempts = (params.wait_secs * 4).max(1);
    let why = match params.role {
        Role::Selector => {
            sys.say(&format!("boot selector ({loaded} modules loaded)"));
            let cfg = SelectorConfig {
                disk: params.disk.clone(),
                wait_attempts: attempts,
                wait_interval: WAIT_INTERVAL,
                mount_point: PathBuf::from(SLOT_MOUNT_POINT),
                watchdog_secs: params
                    .watchdog_secs
                    .unwrap_or(params::DEFAULT_WATCHDOG_SECS),
                forward: moho_core::boot_files::forwarded_words(&cmdline),
            };
            match run_selector(&mut sys, &cfg) {
                SelectorOutcome::Booted(slot) => format!("the reboot into slot {slot} returned"),
                SelectorOutcome::GaveUp(why) => why,
            }
        }
        Role::SlotInit => {
            let cfg = SlotInitConfig {
                partuuid: params.root_partuuid,
                slot: params.slot,
                rootfstype: params.rootfstype.clone(),
                init: params.init.clone(),
                wait_attempts: attempts,
                wait_interval: WAIT_INTERVAL,
                new_root: PathBuf::from(NEW_ROOT),
                watchdog_secs: params.watchdog_secs,
            };
            match run_slot_init(&mut sys, &cfg) {
                Ok(()) => "switch_root returned".to_owned(),
                Err(why) => why,
            }
        }
    };
    give_up(&mut sys, &why, params.retry_secs)
}

/// Says why nothing could be booted, waits, and resets the machine so that
/// the firmware and the selector try again.
fn give_up(sys: &mut dyn BootSystem, why: &str, retry_secs: u32) -> ! {
    sys.say(&format!("ERROR: {why}"));
    sys.say(&format!(
        "ERROR: nothing booted; resetting the machine in {retry_secs} s to try again"
    ));
    nix::unistd::sync();
    sys.sleep(Duration::from_secs(u64::from(retry_secs)));
    let err = reboot(RebootMode::RB_AUTOBOOT).err();
    sys.say(&format!("ERROR: reset failed: {err:?}; halting here"));
    loop {
        sys.sleep(Duration::from_secs(3600));
    }
}
