//! Real boots in qemu (`-accel tcg`) of disks made by `image-tools`, with
//! Debian's cloud kernel, the static `boot-select` and the real
//! `update-agent` (DESIGN §4, §8.3; issue 8): the update / trial boot /
//! fallback cycle, the full UEFI chain, and power cuts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use moho_e2e::vm::image::{Behaviour, SCENARIO_FW_CFG, TestOs, TestRelease};
use moho_e2e::vm::qemu::{Boot, Vm, VmSpec};
use moho_e2e::{bin, ok, slot_fields, slots_json};

const BOOT: Duration = Duration::from_secs(180);

/// Where a test's console log goes: kept after the test, whatever happens.
fn console_log(test: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{test}.log"))
}

fn release(version: &str, behaviour: Behaviour) -> TestRelease {
    TestRelease {
        version: version.into(),
        behaviour,
    }
}

fn cgpt(disk: &Path, partition: u32, flag: &str) -> u64 {
    ok(
        "cgpt",
        [
            OsStr::new("show"),
            OsStr::new("-i"),
            OsStr::new(&partition.to_string()),
            OsStr::new(flag),
            disk.as_os_str(),
        ],
    )
    .trim()
    .parse()
    .unwrap()
}

/// The slots each boot of the selector chose, in order, from the console.
fn selector_choices(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("moho-boot: slot "))
        .filter(|l| l.contains(": trial boot") || l.contains(": booting (marked successful)"))
        .map(|l| l.split(':').next().unwrap().to_owned())
        .collect()
}

/// `moho-test: up version=V slot=S` lines, as `(V, S)`.
fn systems_up(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("moho-test: up version="))
        .map(|l| {
            let (v, s) = l.split_once(" slot=").unwrap();
            (v.to_owned(), s.to_owned())
        })
        .collect()
}

#[test]
fn an_update_boots_once_as_a_trial_and_a_panicking_release_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let os = TestOs::new(dir.path());
    let r1 = os.publish(&release("1.0.0", Behaviour::Agent));
    os.publish(&release("2.0.0", Behaviour::Agent));
    os.publish(&release("3.0.0", Behaviour::Panic));
    let repo_disk = os.repo_disk();
    let disk = os.disk("disk.img", &r1, false, "raw");
    let scenario = dir.path().join("scenario.sh");
    std::fs::write(
        &scenario,
        r#"
set -o pipefail
agent() { MOHO_LOG=info update-agent "$@" 2>&1 | cat; }
case "$VERSION_ID" in
1.0.0)
  agent install --version 2.0.0 && { echo "moho-test: rebooting into 2.0.0"; sync; reboot -f; } ;;
2.0.0)
  agent slots mark-good
  if [ ! -e /var/lib/moho-test/tried-3 ]; then
    mkdir -p /var/lib/moho-test && touch /var/lib/moho-test/tried-3 && sync
    agent install --version 3.0.0 && { echo "moho-test: rebooting into 3.0.0"; sync; reboot -f; }
  fi
  echo "moho-test: back on 2.0.0"
  agent slots ;;
esac
"#,
    )
    .unwrap();
    let mut spec = VmSpec::direct(&disk, &os.kernel.vmlinuz, &os.initramfs);
    spec.extra_disks.push(repo_disk);
    spec.fw_cfg.push((SCENARIO_FW_CFG.into(), scenario));
    let mut vm = Vm::start(&spec, &console_log("update_and_fallback"));
    vm.wait_for("moho-test: back on 2.0.0", BOOT * 4);
    let status = vm.wait_exit(BOOT);
    assert!(status.success(), "qemu: {status}");
    let lines = vm.lines();

    // Four boots: A (1.0.0) installs 2.0.0 into B; B's trial boot marks it
    // good and installs 3.0.0 into A; A's trial panics; B again.
    assert_eq!(
        selector_choices(&lines),
        ["A", "B", "A", "B"],
        "log {}",
        vm.log.display()
    );
    assert_eq!(
        systems_up(&lines),
        [("1.0.0", "A"), ("2.0.0", "B"), ("2.0.0", "B")].map(|(v, s)| (v.to_owned(), s.to_owned())),
        "log {}",
        vm.log.display()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Kernel panic") && l.contains("Attempted to kill init")),
        "release 3.0.0 panicked"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "moho-boot: slot A: trial boot, 0 tries left after this one")
    );

    // What is on the disk now, as we and as cgpt read it.
    let json = slots_json(&disk, Some("B"));
    assert_eq!(slot_fields(&json, "B"), (1, 0, true), "{json}");
    assert_eq!(slot_fields(&json, "A"), (2, 0, false), "{json}");
    assert_eq!(cgpt(&disk, 3, "-S"), 1);
    assert_eq!(cgpt(&disk, 3, "-P"), 1);
    assert_eq!(cgpt(&disk, 2, "-P"), 2);
    assert_eq!(cgpt(&disk, 2, "-T"), 0);
    assert_eq!(cgpt(&disk, 2, "-S"), 0);
    // The selector would keep booting B.
    let next = ok(
        bin("update-agent"),
        [
            OsStr::new("slots"),
            OsStr::new("--disk"),
            disk.as_os_str(),
            OsStr::new("next"),
        ],
    );
    assert_eq!(next.trim(), "B");
}

#[test]
fn ovmf_and_systemd_boot_start_the_selector_from_a_qcow2_disk() {
    let dir = tempfile::tempdir().unwrap();
    let os = TestOs::new(dir.path());
    let r1 = os.build(&release("1.0.0", Behaviour::Agent));
    let disk = os.disk("disk.qcow2", &r1, true, "qcow2");
    let vars = dir.path().join("OVMF_VARS.fd");
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars)
        .expect("OVMF firmware (Debian package ovmf)");
    let scenario = dir.path().join("scenario.sh");
    std::fs::write(&scenario, "update-agent slots\n").unwrap();
    let spec = VmSpec {
        disk: disk.clone(),
        disk_format: "qcow2",
        boot: Boot::Ovmf { vars },
        fw_cfg: vec![(SCENARIO_FW_CFG.into(), scenario)],
        ..VmSpec::direct(&disk, Path::new("-"), Path::new("-"))
    };
    let mut vm = Vm::start(&spec, &console_log("ovmf"));
    let at = vm.wait_for("Kernel command line: ", BOOT);
    vm.wait_for_from(at, "moho-boot: boot selector", BOOT);
    vm.wait_for("moho-test: up version=1.0.0 slot=A", BOOT);
    vm.wait_for("moho-test: end of scenario", BOOT);
    assert!(vm.wait_exit(BOOT).success());
    let lines = vm.lines();
    // systemd-boot started the loader entry's kernel with its options.
    assert!(
        lines.iter().any(|l| l.contains("Kernel command line: ")
            && l.contains("initrd=\\moho\\initrd.img")
            && l.contains("moho.wait=20")),
        "log {}",
        vm.log.display()
    );
    assert_eq!(selector_choices(&lines), ["A"]);
    // The agent inside finds the disk and sees the slot it booted from.
    assert!(
        lines
            .iter()
            .any(|l| l == "disk /dev/vda (GPT primary valid, backup valid)")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("A ") && l.contains("ROOT-A") && l.trim_end().ends_with('*')),
        "log {}",
        vm.log.display()
    );
}
