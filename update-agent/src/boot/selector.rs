//! The selector role: find the disk with the slots, choose a slot with the
//! shared rule, record the boot attempt, and `kexec` the slot's own kernel;
//! on any failure, say what happened and fall back (DESIGN §4).

use std::path::{Path, PathBuf};
use std::time::Duration;

use moho_core::boot_files::{
    BOOT_DIR, CMDLINE_FILE, parse_cmdline_file, pick_boot_files, slot_cmdline,
};
use moho_core::selection::BootReason;
use moho_core::slot_table::{SlotName, SlotTable};
use moho_disk::SlotDisk;

use crate::boot::plan::{FailedAttempt, choose, describe_table};
use crate::boot::sys::{BootError, BootSystem, watchdog_name};

/// Where and how long the selector looks.
#[derive(Debug, Clone)]
pub struct SelectorConfig {
    /// `moho.disk=`: only this disk.
    pub disk: Option<PathBuf>,
    /// How many times to look for the disk before giving up.
    pub wait_attempts: u32,
    /// Pause between looks.
    pub wait_interval: Duration,
    /// Where a slot is mounted to read its kernel.
    pub mount_point: PathBuf,
    /// `moho.watchdog=`: the hardware watchdog timeout armed before a trial
    /// boot (0: never armed).
    pub watchdog_secs: u32,
    /// Words of the selector's command line handed on to the slot kernel
    /// (`moho_core::boot_files::forwarded_words`).
    pub forward: Vec<String>,
}

/// How the selector ended (the real machine never sees `Booted`: it is in
/// the slot's kernel by then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectorOutcome {
    /// The reboot into this slot's kernel was started.
    Booted(SlotName),
    /// Nothing could be booted; the reason, for the console.
    GaveUp(String),
}

/// The selector role from start to `kexec`.
pub fn run_selector(sys: &mut dyn BootSystem, cfg: &SelectorConfig) -> SelectorOutcome {
    // The driver read the device's boot status when it was loaded: a
    // trial that hung was reset by it, and the operator should hear so.
    if let Some(w) = sys.watchdog_info()
        && w.reset_the_machine
    {
        sys.say(&format!(
            "the hardware watchdog ({}) reset this machine: the last boot hung",
            w.identity
        ));
    }
    match find_slot_disk(sys, cfg) {
        Ok(mut disk) => boot_from(sys, disk.as_mut(), cfg),
        Err(why) => SelectorOutcome::GaveUp(why),
    }
}

/// Looks for the disk holding the slots until it appears or time is up.
pub fn find_slot_disk(
    sys: &mut dyn BootSystem,
    cfg: &SelectorConfig,
) -> Result<Box<dyn SlotDisk>, String> {
    let mut last = Vec::new();
    for attempt in 0..cfg.wait_attempts.max(1) {
        if attempt > 0 {
            sys.sleep(cfg.wait_interval);
        }
        let candidates = match &cfg.disk {
            Some(d) => vec![d.clone()],
            None => sys.disks(),
        };
        last.clear();
        let mut found: Vec<(PathBuf, Box<dyn SlotDisk>)> = Vec::new();
        for dev in candidates {
            match sys.open_slot_disk(&dev) {
                Ok(disk) => found.push((dev, disk)),
                Err(e) => last.push(format!("{}: {e}", dev.display())),
            }
        }
        if found.len() > 1 {
            let names: Vec<String> = found.iter().map(|(p, _)| p.display().to_string()).collect();
            sys.say(&format!(
                "WARNING: several disks hold Moho slots ({}); using {} (choose with moho.disk=)",
                names.join(", "),
                names[0]
            ));
        }
        if let Some((_, disk)) = found.into_iter().next() {
            return Ok(disk);
        }
    }
    Err(format!(
        "no disk with Moho slots appeared within {} tries ({})",
        cfg.wait_attempts.max(1),
        if last.is_empty() {
            "no block devices at all".to_owned()
        } else {
            last.join("; ")
        }
    ))
}

/// Chooses, records and boots a slot of `disk`, falling back slot by slot.
pub fn boot_from(
    sys: &mut dyn BootSystem,
    disk: &mut dyn SlotDisk,
    cfg: &SelectorConfig,
) -> SelectorOutcome {
    let path = disk.path().to_owned();
    let mut failed: Vec<FailedAttempt> = Vec::new();
    loop {
        let table = match disk.read_slots() {
            Ok(t) => t,
            Err(e) => return SelectorOutcome::GaveUp(format!("cannot read the slot table: {e}")),
        };
        sys.say(&format!("{}: {}", path.display(), describe_table(&table)));
        let health = disk.health();
        if health.needs_repair() {
            sys.say(&format!(
                "{}: GPT {health}; repairing it from the valid copy",
                path.display()
            ));
            if let Err(e) = disk.commit_slots(&table, &table) {
                sys.say(&format!("{}: repair failed: {e}", path.display()));
            }
        }
        let choice = match choose(&table, &failed) {
            Ok(c) => c,
            Err(e) => return SelectorOutcome::GaveUp(format!("{}: {e}", path.display())),
        };
        let slot = choice.slot;
        let tries_left = choice.table.attrs(slot).tries();
        match (choice.reason, choice.needs_write(&table)) {
            (BootReason::FallbackLastGood, _) => sys.say(&format!(
                "WARNING: no slot is eligible to boot; falling back to slot {slot}, \
                 the last one that booted successfully"
            )),
            (BootReason::Eligible, true) => sys.say(&format!(
                "slot {slot}: trial boot, {tries_left} tries left after this one"
            )),
            (BootReason::Eligible, false) => {
                sys.say(&format!("slot {slot}: booting (marked successful)"));
            }
        }
        if choice.needs_write(&table)
            && let Err(e) = disk.commit_slots(&table, &choice.table)
        {
            fail(
                sys,
                &mut failed,
                slot,
                format!("cannot record the boot attempt: {e}"),
            );
            continue;
        }
        // A trial (the slot never booted successfully) runs under the
        // hardware watchdog; a good slot never does.
        let trial = !choice.table.attrs(slot).successful();
        let watchdog = (trial && cfg.watchdog_secs > 0).then_some(cfg.watchdog_secs);
        match boot_slot(sys, &path, &choice.table, slot, cfg, watchdog) {
            Ok(()) => return SelectorOutcome::Booted(slot),
            Err(e) => fail(sys, &mut failed, slot, e.to_string()),
        }
    }
}

fn fail(sys: &mut dyn BootSystem, failed: &mut Vec<FailedAttempt>, slot: SlotName, why: String) {
    sys.say(&format!("slot {slot}: cannot boot: {why}"));
    failed.push(FailedAttempt { slot, why });
}

/// Mounts `slot`, loads its kernel and reboots into it; with `watchdog`,
/// the hardware watchdog is armed with that timeout just before (and
/// disarmed again if the reboot does not happen).
fn boot_slot(
    sys: &mut dyn BootSystem,
    disk: &Path,
    table: &SlotTable,
    slot: SlotName,
    cfg: &SelectorConfig,
    watchdog: Option<u32>,
) -> Result<(), BootError> {
    let entry = table.get(slot);
    let device = sys.partition_device(disk, entry.partition)?;
    let mp = cfg.mount_point.as_path();
    let fstype = sys.mount_ro(&device, mp, None)?;
    let loaded = load_kernel(
        sys,
        mp,
        (slot, entry.partuuid),
        &device,
        &fstype,
        &cfg.forward,
        watchdog,
    );
    if let Err(e) = sys.unmount(mp) {
        sys.say(&format!("WARNING: {e}"));
    }
    loaded?;
    let mut armed = false;
    if let Some(secs) = watchdog {
        match sys.arm_watchdog(secs) {
            Ok(()) => {
                armed = true;
                let name = watchdog_name(sys);
                sys.say(&format!(
                    "slot {slot}: trial boot under the hardware watchdog ({secs} s, {name})"
                ));
            }
            Err(e) => sys.say(&format!(
                "WARNING: slot {slot}: no hardware watchdog for the trial boot ({e}); \
                 a hang before the agent runs needs a reset"
            )),
        }
    }
    sys.say(&format!("slot {slot}: starting its kernel"));
    sys.kexec_reboot().inspect_err(|_| {
        sys.kexec_unload();
        if armed && let Err(e) = sys.disarm_watchdog() {
            sys.say(&format!("WARNING: {e}"));
        }
    })
}

fn load_kernel(
    sys: &mut dyn BootSystem,
    mp: &Path,
    (slot, partuuid): (SlotName, uuid::Uuid),
    device: &Path,
    fstype: &str,
    forward: &[String],
    watchdog: Option<u32>,
) -> Result<(), BootError> {
    let names = sys.list_dir(mp, BOOT_DIR)?;
    let files = pick_boot_files(&names).map_err(|source| BootError::BootFiles {
        root: device.to_owned(),
        source,
    })?;
    let own = sys
        .read_file(mp, CMDLINE_FILE)?
        .map(|b| parse_cmdline_file(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    let cmdline = slot_cmdline(&own, forward, slot, partuuid, watchdog)?;
    let kernel = format!("{BOOT_DIR}/{}", files.kernel);
    let initrd = files.initrd.as_ref().map(|i| format!("{BOOT_DIR}/{i}"));
    sys.say(&format!(
        "slot {slot}: {} ({fstype}): /{kernel}{} with: {cmdline}",
        device.display(),
        initrd
            .as_ref()
            .map(|i| format!(" + /{i}"))
            .unwrap_or_default()
    ));
    sys.kexec_load(mp, &kernel, initrd.as_deref(), &cmdline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::fake::{FakeBoot, FakeCall};
    use moho_core::slot_attrs::SlotAttributes;
    use moho_core::slot_table::SlotEntry;
    use moho_disk::FakeSlotDisk;
    use uuid::Uuid;

    fn table(a: (u8, u8, bool), b: (u8, u8, bool)) -> SlotTable {
        let e = |n: u32, l: &str, (p, t, s): (u8, u8, bool)| SlotEntry {
            partition: n,
            label: l.into(),
            partuuid: Uuid::from_u128(u128::from(n)),
            attrs: SlotAttributes::default().with_fields(p, t, s).unwrap(),
        };
        SlotTable {
            a: e(2, "ROOT-A", a),
            b: e(3, "ROOT-B", b),
        }
    }

    fn cfg() -> SelectorConfig {
        SelectorConfig {
            disk: None,
            wait_attempts: 4,
            wait_interval: Duration::from_millis(250),
            mount_point: PathBuf::from("/slot"),
            watchdog_secs: 60,
            forward: Vec::new(),
        }
    }

    #[test]
    fn the_selectors_provisioning_words_are_handed_to_the_slot_kernel() {
        let mut sys = FakeBoot::with_slots();
        let mut disk = FakeSlotDisk::new(table((2, 0, true), (1, 0, true)));
        let mut c = cfg();
        c.forward = moho_core::boot_files::forwarded_words(
            "console=ttyS0 moho.provision=http://10.0.2.2/p.toml moho.provision.sha256=ab",
        );
        assert_eq!(
            boot_from(&mut sys, &mut disk, &c),
            SelectorOutcome::Booted(SlotName::A)
        );
        let load = sys.kexec_loads();
        assert!(
            matches!(load[0], FakeCall::KexecLoad { cmdline, .. }
                if cmdline.contains(" moho.provision=http://10.0.2.2/p.toml moho.provision.sha256=ab root=PARTUUID=")),
            "{load:?}"
        );
    }

    #[test]
    fn boots_the_armed_slot_after_writing_its_try() {
        let mut sys = FakeBoot::with_slots();
        let mut disk = FakeSlotDisk::new(table((1, 0, true), (2, 1, false)));
        let out = boot_from(&mut sys, &mut disk, &cfg());
        assert_eq!(out, SelectorOutcome::Booted(SlotName::B));
        assert_eq!(disk.commits().len(), 1);
        assert_eq!(disk.table.b.attrs.tries(), 0);
        let load = sys.kexec_loads();
        assert_eq!(load.len(), 1);
        assert_eq!(
            *load[0],
            FakeCall::KexecLoad {
                kernel: "boot/vmlinuz".into(),
                initrd: Some("boot/initrd.img".into()),
                cmdline: format!(
                    "ro panic=10 console=ttyS0 root=PARTUUID={} moho.slot=B moho.watchdog=60",
                    Uuid::from_u128(3)
                ),
            }
        );
        assert!(sys.said("slot B: trial boot, 0 tries left after this one"));
        assert!(sys.said("slot B: trial boot under the hardware watchdog (60 s, i6300ESB timer)"));
        // The trial runs under the hardware watchdog, armed just before the kexec.
        assert_eq!(sys.watchdog_calls(), [&FakeCall::ArmWatchdog(60)]);
        let arm = sys
            .calls
            .iter()
            .position(|c| *c == FakeCall::ArmWatchdog(60));
        let kexec = sys.calls.iter().position(|c| *c == FakeCall::KexecReboot);
        assert!(arm < kexec, "{:?}", sys.calls);
    }

    #[test]
    fn a_good_slot_never_boots_with_the_watchdog_armed() {
        let mut sys = FakeBoot::with_slots();
        let mut disk = FakeSlotDisk::new(table((2, 0, true), (1, 0, true)));
        assert_eq!(
            boot_from(&mut sys, &mut disk, &cfg()),
            SelectorOutcome::Booted(SlotName::A)
        );
        assert!(sys.watchdog_calls().is_empty(), "{:?}", sys.calls);
        assert!(sys.kexec_loads().iter().all(|c| match c {
            FakeCall::KexecLoad { cmdline, .. } => !cmdline.contains("moho.watchdog"),
            _ => false,
        }));
        // Nor after a trial slot failed to start: the watchdog is disarmed.
        let mut sys = FakeBoot::with_slots();
        sys.bad_kexec_reboot = true;
        let mut disk = FakeSlotDisk::new(table((1, 0, true), (2, 1, false)));
        let _ = boot_from(&mut sys, &mut disk, &cfg());
        assert_eq!(
            sys.watchdog_calls(),
            [&FakeCall::ArmWatchdog(60), &FakeCall::DisarmWatchdog]
        );
    }

    #[test]
    fn a_reset_by_the_watchdog_is_said_on_the_next_boot_and_only_then() {
        let mut sys = FakeBoot::with_slots();
        sys.watchdog_reset_it = true;
        assert_eq!(
            run_selector(&mut sys, &cfg()),
            SelectorOutcome::Booted(SlotName::A)
        );
        assert_eq!(
            sys.console[0],
            "the hardware watchdog (i6300ESB timer) reset this machine: the last boot hung"
        );
        let mut sys = FakeBoot::with_slots();
        let _ = run_selector(&mut sys, &cfg());
        assert!(!sys.console.iter().any(|l| l.contains("reset this machine")));
    }

    #[test]
    fn without_a_hardware_watchdog_the_trial_still_boots_and_says_so() {
        let mut sys = FakeBoot::with_slots();
        sys.no_watchdog = true;
        let mut disk = FakeSlotDisk::new(table((1, 0, true), (2, 1, false)));
        assert_eq!(
            boot_from(&mut sys, &mut disk, &cfg()),
            SelectorOutcome::Booted(SlotName::B)
        );
        assert!(sys.said("WARNING: slot B: no hardware watchdog for the trial boot"));
        let mut off = cfg();
        off.watchdog_secs = 0;
        let mut sys = FakeBoot::with_slots();
        let mut disk = FakeSlotDisk::new(table((1, 0, true), (2, 1, false)));
        let _ = boot_from(&mut sys, &mut disk, &off);
        assert!(sys.watchdog_calls().is_empty());
    }

    #[test]
    fn a_trial_slot_that_does_not_mount_falls_back_to_the_good_slot() {
        let mut sys = FakeBoot::with_slots();
        sys.bad_mount.insert(PathBuf::from("/dev/vda3"));
        let mut disk = FakeSlotDisk::new(table((1, 0, true), (2, 1, false)));
        let out = boot_from(&mut sys, &mut disk, &cfg());
        assert_eq!(out, SelectorOutcome::Booted(SlotName::A));
        // B's try stays used: the next boot does not retry it either.
        assert_eq!(disk.table.b.attrs.tries(), 0);
        assert!(sys.said("slot B: cannot boot: /dev/vda3: cannot mount read-only on /slot"));
        assert_eq!(sys.kexec_loads().len(), 1);
    }

    #[test]
    fn a_kernel_that_kexec_refuses_falls_back_and_is_unloaded() {
        let mut sys = FakeBoot::with_slots();
        sys.bad_kexec_reboot = true;
        let mut disk = FakeSlotDisk::new(table((1, 0, true), (2, 1, false)));
        let out = boot_from(&mut sys, &mut disk, &cfg());
        // Both slots load, both reboots fail: nothing is left.
        match out {
            SelectorOutcome::GaveUp(why) => {
                assert!(
                    why.contains("slot B: reboot into the loaded kernel"),
                    "{why}"
                );
                assert!(
                    why.contains("slot A: reboot into the loaded kernel"),
                    "{why}"
                );
            }
            other => panic!("{other:?}"),
        }
        let unloads = sys
            .calls
            .iter()
            .filter(|c| **c == FakeCall::KexecUnload)
            .count();
        assert_eq!(unloads, 2);
    }

    #[test]
    fn a_slot_without_a_kernel_falls_back_and_every_mount_is_undone() {
        let mut sys = FakeBoot::with_slots();
        sys.boot_dirs
            .insert(PathBuf::from("/dev/vda3"), vec!["config-6.1".into()]);
        let mut disk = FakeSlotDisk::new(table((1, 0, true), (2, 1, false)));
        assert_eq!(
            boot_from(&mut sys, &mut disk, &cfg()),
            SelectorOutcome::Booted(SlotName::A)
        );
        assert!(sys.said("slot B: cannot boot: /dev/vda3: no kernel in /boot"));
        let mounts = sys
            .calls
            .iter()
            .filter(|c| matches!(c, FakeCall::Mount { .. }))
            .count();
        let unmounts = sys
            .calls
            .iter()
            .filter(|c| matches!(c, FakeCall::Unmount))
            .count();
        assert_eq!((mounts, unmounts), (2, 2));
    }

    #[test]
    fn a_failed_write_of_the_try_never_boots_the_trial_slot() {
        let mut sys = FakeBoot::with_slots();
        let mut disk = FakeSlotDisk::new(table((1, 0, true), (2, 1, false)));
        disk.fail_next_commit = Some("I/O error".into());
        assert_eq!(
            boot_from(&mut sys, &mut disk, &cfg()),
            SelectorOutcome::Booted(SlotName::A)
        );
        assert!(sys.said("slot B: cannot boot: cannot record the boot attempt"));
        assert!(sys.kexec_loads().iter().all(|c| match c {
            FakeCall::KexecLoad { cmdline, .. } => cmdline.ends_with("moho.slot=A"),
            _ => false,
        }));
    }

    #[test]
    fn nothing_eligible_boots_the_last_good_slot_loudly() {
        let mut sys = FakeBoot::with_slots();
        let mut disk = FakeSlotDisk::new(table((0, 0, true), (2, 0, false)));
        assert_eq!(
            boot_from(&mut sys, &mut disk, &cfg()),
            SelectorOutcome::Booted(SlotName::A)
        );
        assert!(sys.said("WARNING: no slot is eligible to boot; falling back to slot A"));
        assert!(disk.commits().is_empty());
    }

    #[test]
    fn a_disk_with_no_bootable_slot_gives_up_with_the_table() {
        let mut sys = FakeBoot::with_slots();
        let mut disk = FakeSlotDisk::new(table((0, 0, false), (0, 0, false)));
        match boot_from(&mut sys, &mut disk, &cfg()) {
            SelectorOutcome::GaveUp(why) => assert!(why.contains("no bootable slot"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(sys.kexec_loads().is_empty());
    }

    #[test]
    fn waits_for_the_disk_then_names_what_it_saw() {
        let mut sys = FakeBoot::with_slots();
        sys.disk_appears_after = 3;
        let found = find_slot_disk(&mut sys, &cfg());
        assert!(found.is_ok());
        let sleeps = sys
            .calls
            .iter()
            .filter(|c| matches!(c, FakeCall::Sleep(_)))
            .count();
        assert_eq!(sleeps, 2);

        let mut sys = FakeBoot::with_slots();
        sys.disk_appears_after = 100;
        let err = find_slot_disk(&mut sys, &cfg()).err().unwrap();
        assert_eq!(
            err,
            "no disk with Moho slots appeared within 4 tries (no block devices at all)"
        );
    }
}
