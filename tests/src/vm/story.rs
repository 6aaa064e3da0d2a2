//! The update story with the server in charge: releases of the stock node
//! OS (`image-tools os build`, [`super::node_os`]) that differ only where a
//! test must — a health check that passes, fails or never ends (a verdict
//! file in the test overlay), a kernel that panics (`init=/bin/false`) or
//! an init that loops for ever (`init=` a test program), both added to the
//! configuration's slot command line —, the real `update-server` with a
//! one-minute check-in interval, a node given its server by a provision
//! document (a fw_cfg credential), a scenario that only reports what the
//! agent's units do, and the steps an operator watches for (a release
//! healthy, a release rolled back), on the console and in the server's
//! admin API. The VM tests assert them; the demo (`moho-vm-demo`) prints
//! them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::image::SCENARIO_FW_CFG;
use super::node_os::{self, Overlay, Release};
use super::provision::NodeDoc;
use super::qemu::{Boot, Vm, VmSpec};
use super::server::{GUEST_SERVER_PORT, ServerTls, UpdateServer};
use crate::fleet::ReleaseRepo;

/// How long one boot of the node OS may take under `-accel tcg` on a
/// loaded machine.
pub const BOOT: Duration = Duration::from_secs(420);
/// How long from a rollout's start to the node's reboot into it (a check-in
/// a minute, the download, the write).
pub const UPDATE: Duration = Duration::from_secs(540);

/// The deny-list reason of a release that never came up in slot A (its
/// kernel panicked; the boot selector fell back).
pub const PANICKED: &str = "slot A did not boot successfully";
/// The deny-list reason of a release whose health check failed (the agent
/// rebooted into the fallback itself, naming the unit).
pub const UNHEALTHY: &str = "health check moho-health-check.service failed";
/// The trial deadline the story's node is provisioned with (`[health]
/// deadline` in its provision document, as an operator would shorten the
/// 10 min default): long enough for a good release under `-accel tcg`.
pub const HEALTH_DEADLINE: &str = "2m";
/// [`HEALTH_DEADLINE`] as a duration: how long a trial that never becomes
/// healthy runs before its agent reboots it.
pub const HEALTH_DEADLINE_TIME: Duration = Duration::from_secs(120);
/// The deny-list reason of a release whose health check never ends (the
/// agent rebooted into the fallback itself at the deadline).
pub const HUNG: &str = "boot-complete.target not reached within 2m";
/// The watchdog the story's trial boots run under, as its driver names it
/// (qemu's Intel 6300ESB, `-device i6300esb`).
pub const WATCHDOG: &str = "i6300ESB timer";
/// What the selector says on the boot after the hardware watchdog reset
/// the machine (the driver reads the device's boot status).
pub const WATCHDOG_RESET: &str =
    "moho-boot: the hardware watchdog (i6300ESB timer) reset this machine: the last boot hung";

/// What the guest runs at each boot (after `multi-user.target`): nothing
/// but reports. On a release whose health check failed it only reports:
/// the agent must notice, report and reboot into the fallback by itself.
pub const REPORTING_SCENARIO: &str = r#"
echo "moho-test: denied: $(update-agent denylist | tr '\n' ' ')"
if systemctl is-failed --quiet moho-health-check.service; then
  echo "moho-test: boot-complete.target $(systemctl is-active boot-complete.target)"
  echo "moho-test: agent $(update-agent status --json 2>&1)"
  echo "moho-test: no health: waiting for the agent's reboot"
  sleep 600
fi
i=0
while :; do
  i=$((i + 1))
  echo "moho-test: mark-good $(systemctl is-active moho-mark-good.service)"
  echo "moho-test: agent $(update-agent status --json 2>&1)"
  echo "moho-test: clock $(date -u +%s)"
  [ "$i" = 1 ] && update-agent slots | sed 's/^/moho-test: slots: /'
  [ "$i" = 1 ] && echo "moho-test: provisioned $(systemctl is-active moho-provision.service) host=$(hostname) keys=$(cat /run/moho/ssh/authorized_keys/root 2>&1)"
  [ "$i" = 1 ] && echo "moho-test: var $(df -B1 --output=size /var | tail -n1 | tr -d ' ') bytes, grow-state $(systemctl is-active moho-grow-state.service)"
  sleep 10
done
"#;

/// The host name the provision document gives the node.
pub const NODE_HOSTNAME: &str = "moho-story-node";
/// The SSH key the provision document installs for root.
pub const NODE_SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0b3J5LW5vZGUta2V5LW1vaG8tdGVzdA story@moho";
/// The fw_cfg name systemd (and the agent) read the credential from.
pub const PROVISION_FW_CFG: &str = "opt/io.systemd.credentials/moho.provision";

/// How a story release behaves when booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Boots, its health check passes: marked good.
    Healthy,
    /// Its first program exits at once (`init=/bin/false`): the kernel
    /// panics ("Attempted to kill init") and, with `panic=10`, resets.
    Panic,
    /// Boots, but its health check (required by `boot-complete.target`)
    /// fails, so the slot is never marked good.
    Unhealthy,
    /// Boots, but its health check never ends (`TimeoutStartSec=infinity`),
    /// so `boot-complete.target` is never reached.
    Hangs,
    /// The kernel starts a first program that loops for ever without
    /// exiting (`init=/usr/lib/moho-test/loop-init`): no panic, nothing
    /// feeds the watchdog.
    Loops,
}

impl Behaviour {
    /// The health verdict file (`/usr/lib/moho-test/health`), the same size
    /// for every behaviour.
    fn verdict(self) -> &'static str {
        match self {
            Self::Unhealthy => "fail\n",
            Self::Hangs => "hang\n",
            Self::Healthy | Self::Panic | Self::Loops => "pass\n",
        }
    }

    /// What the release adds to the slot kernel's command line.
    fn cmdline(self) -> &'static str {
        match self {
            Self::Panic => "init=/bin/false",
            Self::Loops => "init=/usr/lib/moho-test/loop-init",
            Self::Healthy | Self::Unhealthy | Self::Hangs => "",
        }
    }
}

/// A health check as an operator writes one (see
/// `systemd/examples/moho-health-check.service`): it fails, or never ends,
/// on the release whose verdict file says so.
const HEALTH_CHECK: &str = "[Unit]
Description=Moho VM test health check (fails or hangs where /usr/lib/moho-test/health says so)
Before=boot-complete.target

[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=infinity
ExecStart=/bin/sh -c 'case $$(cat /usr/lib/moho-test/health) in pass) exit 0 ;; hang) echo \"moho-test: health check hangs\" >/dev/console; exec sleep infinity ;; *) echo \"moho-test: health check failed\" >/dev/console; exit 1 ;; esac'

[Install]
RequiredBy=boot-complete.target
";

/// The first program of a release that hangs without panicking (every
/// story release carries it; only [`Behaviour::Loops`] starts it).
const LOOP_INIT: &str = "#!/bin/sh\necho \"moho-test: this release's init loops\"\n\
while :; do sleep 1; done\n";

/// The test overlay of a story release: the VM tests' own
/// ([`super::provision::overlay`]: the scenario unit), the health check
/// (enabled) with its verdict, and the looping init.
pub fn overlay(behaviour: Behaviour) -> Overlay {
    let unit = "etc/systemd/system/moho-health-check.service";
    let mut overlay = super::provision::overlay()
        .file(unit, 0o644, HEALTH_CHECK)
        .file("usr/lib/moho-test/health", 0o644, behaviour.verdict())
        .file("usr/lib/moho-test/loop-init", 0o755, LOOP_INIT);
    overlay.links.push((
        "etc/systemd/system/boot-complete.target.requires/moho-health-check.service".into(),
        format!("/{unit}"),
    ));
    overlay
}

/// Release `version` of the node OS behaving as `behaviour` (cached; with
/// `disk`, its stock raw disk too).
pub fn release(version: &str, behaviour: Behaviour, disk: bool) -> Release {
    node_os::build_with(version, &overlay(behaviour), behaviour.cmdline(), disk)
}

/// The releases, the server and the first release's stock disk. The
/// releases boot Debian's generic kernel, whose boot initramfs carries the
/// hardware watchdog's driver (`i6300esb`), on a VM with that watchdog, so
/// trial boots run under it.
#[derive(Debug)]
pub struct ServerStory {
    /// The signed repository (the tests' keys; the images' trusted root).
    pub repo: ReleaseRepo,
    /// The update server serving it.
    pub server: UpdateServer,
    /// The first release (its stock disk is the node's).
    pub first: Release,
    dir: PathBuf,
    scenario: PathBuf,
    /// The provision document the node boots with (fw_cfg credential).
    pub provision: PathBuf,
    /// The enrolment token of group `default` that the document carries.
    enrollment_token: String,
}

impl ServerStory {
    /// Builds (`image-tools os build`, cached) and publishes `releases` on
    /// `stable` (the first with its stock disk), starts the server and
    /// reads the releases into it.
    pub fn new(dir: &Path, releases: &[(&str, Behaviour)]) -> Self {
        let repo = node_os::repository(&dir.join("releases"));
        let server_dir = dir.join("server");
        let tls = ServerTls::create(&server_dir);
        // The image names no server: the node learns it from its
        // provision document at first boot, with the enrolment token that
        // lets it register (the server's registration is closed).
        let provision = dir.join("provision.toml");
        let enrollment_token = UpdateServer::enrollment_token(&server_dir, "default");
        let mut first = None;
        for (i, (version, behaviour)) in releases.iter().enumerate() {
            let built = release(version, *behaviour, i == 0);
            repo.add(&built.image(), &["stable"]);
            first.get_or_insert(built);
        }
        let server = UpdateServer::start_with(
            tls,
            &server_dir,
            &repo.repo,
            &repo.root(),
            &["--check-interval", "1m"],
        );
        server.sync_releases();
        let scenario = dir.join("scenario.sh");
        std::fs::write(&scenario, REPORTING_SCENARIO).unwrap();
        let story = Self {
            first: first.expect("at least one release"),
            repo,
            server,
            dir: dir.to_owned(),
            scenario,
            provision,
            enrollment_token,
        };
        story.write_provision(None);
        story
    }

    /// A fresh copy of the first release's stock disk, `name` in the
    /// story's directory, grown to four times its size (raw or qcow2);
    /// returns it and the stock disk's size.
    pub fn disk(&self, name: &str, format: &str) -> (PathBuf, u64) {
        self.first.grown_disk(&self.dir.join(name), format)
    }

    /// (Re)writes the node's provision document: the server, the
    /// enrolment token, the trial deadline, host name, SSH key, and the
    /// `[reboot]` section `reboot` if given (the agent's default strategy
    /// otherwise). Before the first boot: the node reads it once.
    pub fn write_provision(&self, reboot: Option<&str>) {
        let doc = NodeDoc {
            hostname: NODE_HOSTNAME,
            ca_pem: &self.server.ca_pem,
            enrollment_token: &self.enrollment_token,
            group: "default",
            ssh_key: NODE_SSH_KEY,
            health_deadline: Some(HEALTH_DEADLINE),
            reboot,
        };
        std::fs::write(&self.provision, doc.render()).unwrap();
    }

    /// The VM for the raw `disk`: direct kernel boot (the first release's
    /// kernel and boot initramfs), or (with `ovmf_vars`) the full UEFI
    /// chain from the disk's ESP; the guest reaches the server.
    pub fn vm_spec(&self, disk: &Path, ovmf_vars: Option<PathBuf>) -> VmSpec {
        let mut spec = VmSpec::direct(disk, &self.first.vmlinuz(), &self.first.initrd());
        if let Some(vars) = ovmf_vars {
            spec.boot = Boot::Ovmf { vars };
        }
        spec.guest_forwards
            .push((GUEST_SERVER_PORT, self.server.port));
        spec.hardware_watchdog = true;
        spec.fw_cfg
            .push((SCENARIO_FW_CFG.into(), self.scenario.clone()));
        spec.fw_cfg
            .push((PROVISION_FW_CFG.into(), self.provision.clone()));
        spec
    }

    /// Starts a rollout of `version` to the whole channel; returns its id.
    pub fn roll_out(&self, version: &str) -> i64 {
        self.server.rollout(version, &self.repo.board)
    }

    /// The server's node list.
    pub fn nodes(&self) -> Vec<Value> {
        let (status, body) = self.server.api("GET", "/api/v1/nodes", None);
        assert_eq!(status, 200, "{body}");
        body["items"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("no node list in {body}"))
    }

    /// Waits until the rollout `id` counts one node `healthy` or `failed`
    /// (`count`); returns the counts.
    pub fn wait_count(&self, id: i64, count: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.server.rollout_stats(id);
            if stats[count] == 1 {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "rollout {id} never counted a node {count}: {stats}"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Waits for `version` to come up from `slot` after console line
    /// `from`, be marked good after `boot-complete.target`, and be counted
    /// healthy by rollout `id`; returns the console line of the boot.
    pub fn await_healthy(&self, vm: &Vm, from: usize, id: i64, version: &str, slot: &str) -> usize {
        let up = vm.wait_for_from(
            from,
            &format!("moho-test: up version={version} slot={slot} init=systemd"),
            UPDATE,
        );
        vm.wait_for_from(up, "moho-test: mark-good active", BOOT);
        self.wait_count(id, "healthy", BOOT);
        up
    }

    /// Waits for the fallback from `bad` (in `bad_slot`) to `good` after
    /// console line `from`: the good release up again with `bad` on its
    /// deny list for `reason`, and rollout `id` counting the node failed;
    /// returns the console line of the fallback boot.
    #[allow(clippy::too_many_arguments)] // the steps an operator watches, each named
    pub fn await_rollback(
        &self,
        vm: &Vm,
        from: usize,
        id: i64,
        bad: &str,
        bad_slot: &str,
        good: &str,
        reason: &str,
    ) -> usize {
        let tried = vm.wait_for_from(
            from,
            &format!("moho-boot: slot {bad_slot}: trial boot"),
            UPDATE,
        );
        let good_slot = if bad_slot == "A" { "B" } else { "A" };
        // The trial boot, up to the health deadline on trial, and the
        // fallback boot.
        let back = vm.wait_for_from(
            tried,
            &format!("moho-test: up version={good} slot={good_slot}"),
            BOOT * 2 + HEALTH_DEADLINE_TIME,
        );
        vm.wait_for_from(back, &format!("{bad}: {reason}"), BOOT);
        self.wait_count(id, "failed", BOOT);
        self.await_rollback_event(bad, reason);
        back
    }

    /// Waits until the server shows the node's rollback from `bad`, and,
    /// when `reason` names a failed unit (`*.service`), an event of `bad`
    /// that names it: what an operator reads in the node's events.
    fn await_rollback_event(&self, bad: &str, reason: &str) {
        let node = self.nodes()[0]["id"]
            .as_str()
            .expect("the node's id")
            .to_owned();
        let unit = reason.split_whitespace().find(|w| w.ends_with(".service"));
        let deadline = Instant::now() + BOOT;
        loop {
            let (status, body) = self.server.api(
                "GET",
                &format!("/api/v1/nodes/{node}/events?limit=200"),
                None,
            );
            assert_eq!(status, 200, "{body}");
            let of_bad: Vec<&Value> = body["items"]
                .as_array()
                .map(|a| a.iter().filter(|e| e["version"] == bad).collect())
                .unwrap_or_default();
            let rollback = of_bad.iter().any(|e| e["kind"] == "rollback");
            let named =
                unit.is_none_or(|u| of_bad.iter().any(|e| e["event"].to_string().contains(u)));
            if rollback && named {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server never showed the rollback from {bad} naming {unit:?}: {body}"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}
