//! The update story with the server in charge: systemd test OS releases
//! whose configuration names the update server (as an operator's image
//! would), the real `update-server` with a one-minute check-in interval,
//! a scenario that only reports what the agent's units do, and the steps
//! an operator watches for (a release healthy, a release rolled back), on
//! the console and in the server's admin API. The VM test asserts them;
//! the demo (`moho-vm-demo`) prints them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::image::{Behaviour, Flavour, SCENARIO_FW_CFG, TestOs, TestRelease, WATCHDOG_MODULE};
use super::kernel::KernelPackage;
use super::provision::NodeDoc;
use super::qemu::{Boot, Vm, VmSpec};
use super::server::{GUEST_SERVER_PORT, ServerTls, UpdateServer};

/// How long one boot may take under `-accel tcg`.
pub const BOOT: Duration = Duration::from_secs(180);
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

/// The releases, the server and the first image. They boot Debian's
/// generic kernel, whose initramfs carries the hardware watchdog's driver
/// ([`WATCHDOG_MODULE`]), on a VM with that watchdog, so trial boots run
/// under it.
#[derive(Debug)]
pub struct ServerStory {
    /// The test OS (kernel, initramfs, signed repository).
    pub os: TestOs,
    /// The update server serving it.
    pub server: UpdateServer,
    /// The image of the first release (for slot A).
    pub first: PathBuf,
    scenario: PathBuf,
    /// The provision document the node boots with (fw_cfg credential).
    pub provision: PathBuf,
    /// The enrolment token of group `default` that the document carries.
    enrollment_token: String,
}

impl ServerStory {
    /// Builds and publishes `releases` (systemd flavour; the first goes in
    /// slot A), starts the server and reads the releases into it.
    pub fn new(dir: &Path, releases: &[(&str, Behaviour)]) -> Self {
        let mut os = TestOs::with_kernel(dir, KernelPackage::Generic, WATCHDOG_MODULE);
        os.slot_mib = 256;
        let server_dir = dir.join("server");
        let tls = ServerTls::create(&server_dir);
        // The image names no server: the node learns it from its
        // provision document at first boot, with the enrolment token that
        // lets it register (the server's registration is closed).
        let provision = dir.join("provision.toml");
        let enrollment_token = UpdateServer::enrollment_token(&server_dir, "default");
        let mut first = None;
        for (version, behaviour) in releases {
            let image = os.publish(&TestRelease {
                version: (*version).to_owned(),
                behaviour: *behaviour,
                flavour: Flavour::Systemd,
                payload_mib: 0,
            });
            first.get_or_insert(image);
        }
        let server = UpdateServer::start_with(
            tls,
            &server_dir,
            &os.repo.repo,
            &os.repo.root(),
            &["--check-interval", "1m"],
        );
        server.sync_releases();
        let scenario = dir.join("scenario.sh");
        std::fs::write(&scenario, REPORTING_SCENARIO).unwrap();
        let story = Self {
            first: first.expect("at least one release"),
            os,
            server,
            scenario,
            provision,
            enrollment_token,
        };
        story.write_provision(None);
        story
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

    /// The VM for `disk`: direct kernel boot, or (with `ovmf_vars`) the
    /// full UEFI chain from the disk's ESP; the guest reaches the server.
    pub fn vm_spec(&self, disk: &Path, ovmf_vars: Option<PathBuf>) -> VmSpec {
        let mut spec = VmSpec::direct(disk, &self.os.kernel.vmlinuz, &self.os.initramfs);
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
        self.server.rollout(version, &self.os.repo.board)
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
