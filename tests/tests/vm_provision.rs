//! First-boot provisioning in qemu (issue 14 acceptance): the same stock
//! node OS, built by `image-tools os build` from the example configuration
//! (test-only files by `--overlay`), with no server address in it, its disk
//! as `os build --disk` made it copied to a fresh disk
//! grown to four times the image (raw and qcow2, `qemu-img resize`) for
//! each transport in turn — an EC2-style metadata service on
//! 169.254.169.254, a URL on the command line pinned by its hash, the ESP
//! file, a `cidata` config drive. Each node checks in on its document's
//! channel and group with its host name, shows its SSH key, fills the disk
//! with `STATE`, and leaves a table `sgdisk` and `cgpt` find valid; the
//! qcow2 one then installs an update from the server, reboots into it and
//! marks it good; on that node a user logs in over SSH with the
//! provisioned key (from the host, the stock client) and sees os-release's
//! `VERSION_ID`, the agent's units enabled and active, podman, `STATE` on
//! `/var`, and the same machine id and SSH host key after the update.
//! A bad document and an Ignition config each print their
//! message; the agent stays stopped and the slot is still marked good
//! (`moho-mark-good.service` active).
//! Power cuts (SIGKILL of qemu) at the backup-GPT relocation and at each
//! step of the `STATE` growth leave a machine that boots its good slot and
//! finishes the work.
//! (The fw_cfg credential is the systemd story's transport, `tests/vm.rs`.)
//! Each machine is stopped (power cut) as soon as its checks pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use moho_e2e::vm::provision::{DocServer, GUEST_DOC_PORT, ProvisionWorld, Ssh, check_table};
use moho_e2e::vm::qemu::{Boot, Vm};
use moho_e2e::vm::server::GUEST_SERVER_IP;
use moho_e2e::vm::story::UPDATE;

/// How long one boot of the node OS may take under `-accel tcg` on a
/// loaded machine: a whole Debian system (its first boot also makes the
/// SSH host keys, RSA included), more than the story's test OS.
const BOOT: Duration = Duration::from_secs(420);
use serde_json::{Value, json};

fn console_log(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{test}.log"))
}

fn sha256(text: &str) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()))
}

fn key(name: &str) -> String {
    format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{name}moho-provision-test {name}@moho")
}

/// The line at `at` on the console.
fn line(vm: &Vm, at: usize) -> String {
    vm.lines()[at].clone()
}

/// The server's node with host name `host`, waited for.
fn node_named(world: &ProvisionWorld, host: &str) -> Value {
    let deadline = Instant::now() + BOOT;
    loop {
        let (status, body) = world.server.api("GET", "/api/v1/nodes", None);
        assert_eq!(status, 200, "{body}");
        if let Some(n) = body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["hostname"] == host)
        {
            return n.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no node named {host} checked in: {body}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn node_count(world: &ProvisionWorld) -> usize {
    let (_, body) = world.server.api("GET", "/api/v1/nodes", None);
    body["items"].as_array().map_or(0, Vec::len)
}

/// What a joined node shows: provisioned from `source`, the units active,
/// its host name and key, `STATE` filling the grown disk, its check-in on
/// `stable`/`group` under its host name.
fn check_joined(
    world: &ProvisionWorld,
    vm: &Vm,
    source: &str,
    host: &str,
    group: &str,
    image_bytes: u64,
) {
    check_joined_with(world, vm, source, host, group, image_bytes, &key(host));
}

/// [`check_joined`] for a node provisioned with `ssh_key` for root.
fn check_joined_with(
    world: &ProvisionWorld,
    vm: &Vm,
    source: &str,
    host: &str,
    group: &str,
    image_bytes: u64,
    ssh_key: &str,
) {
    let up = vm.wait_for("moho-test: up ", BOOT);
    assert!(
        line(vm, up).contains("moho-test: up version=1.0.0 slot=A init=systemd id=moho"),
        "{}",
        line(vm, up)
    );
    let at = vm.wait_for(&format!("provisioned from {source}"), BOOT);
    assert!(
        line(vm, at).contains("(accepted, stored in /var/lib/moho)"),
        "{}",
        line(vm, at)
    );
    let units = vm.wait_for("moho-test: units ", BOOT);
    assert!(
        line(vm, units).contains("provision=active agent=active"),
        "{}",
        line(vm, units)
    );
    vm.wait_for("moho-test: mark-good active", BOOT);
    let prov = vm.wait_for("moho-test: provisioned ", BOOT);
    assert!(
        line(vm, prov).contains(&format!("provisioned active host={host} keys={ssh_key}")),
        "{}",
        line(vm, prov)
    );
    let var = vm.wait_for("moho-test: var ", BOOT);
    let var_line = line(vm, var);
    let var_bytes: u64 = var_line
        .split("moho-test: var ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{var_line}"));
    assert!(
        var_line.contains("grow-state active") && var_bytes > 2 * image_bytes,
        "STATE fills the grown disk: {var_line} (image {image_bytes} bytes)"
    );
    let node = node_named(world, host);
    assert_eq!(node["channel"], "stable", "{node}");
    assert_eq!(node["group"], group, "{node}");
    assert_eq!(node["version"], "1.0.0", "{node}");
}

/// A refused document: its message on the console, the provisioning unit
/// failed, the agent stopped, the slot marked good all the same, and no
/// node checked in.
fn check_refused(world: &ProvisionWorld, vm: &Vm, message: &str) {
    let before = node_count(world);
    let at = vm.wait_for(message, BOOT);
    assert!(line(vm, at).contains("error"), "{}", line(vm, at));
    let units = vm.wait_for("moho-test: units ", BOOT);
    assert!(
        line(vm, units).contains("provision=failed agent=inactive"),
        "{}",
        line(vm, units)
    );
    vm.wait_for("moho-test: mark-good active", BOOT);
    let a = vm.wait_for("moho-test: slots: A ", BOOT);
    let shown = line(vm, a);
    let row: Vec<&str> = shown
        .split("moho-test: slots: ")
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // SLOT PART LABEL PARTUUID PRIORITY TRIES SUCCESSFUL BOOTED
    assert_eq!(
        row.get(6..8),
        Some(&["yes", "*"][..]),
        "slot A booted and marked good: {shown}"
    );
    assert_eq!(node_count(world), before, "a refused node checked in");
}

/// Cuts the power, checks the table, and removes the disk (each is a
/// copy of a ~2 GB stock disk).
fn stop_and_check(mut vm: Vm, disk: &Path, format: &str) {
    vm.power_cut();
    let said = check_table(disk, format);
    println!("{}: {said}", disk.display());
    let _ = std::fs::remove_file(disk);
}

/// What a user checks on a node over SSH, one `what value` line each.
const LOOK_AROUND: &str = r#". /etc/os-release; echo "os $ID $VERSION_ID"
for u in moho-agent moho-mark-good moho-provision moho-grow-state moho-ssh-host-keys ssh; do
  echo "unit $u $(systemctl is-enabled $u.service) $(systemctl is-active $u.service)"
done
echo "podman $(podman --version 2>&1)"
echo "podman-networks $(podman network ls --format '{{.Name}}' 2>&1 | tr '\n' ' ')"
echo "var $(findmnt -n -o SOURCE,LABEL,FSTYPE /var)"
echo "machine-id $(cat /etc/machine-id)"
echo "user $(id -un) $(hostname)"
"#;

/// Logs in over SSH as root with the provisioned key (waiting for sshd)
/// and checks what [`LOOK_AROUND`] shows for release `version`; returns
/// the machine id.
fn look_around(ssh: &Ssh, version: &str, host: &str) -> String {
    let said = ssh.wait("root", LOOK_AROUND, BOOT);
    let field = |what: &str| -> String {
        said.lines()
            .find_map(|l| l.strip_prefix(&format!("{what} ")))
            .unwrap_or_else(|| panic!("no {what} line over SSH: {said}"))
            .trim()
            .to_owned()
    };
    assert_eq!(field("os"), format!("moho {version}"), "{said}");
    for unit in [
        "moho-agent",
        "moho-mark-good",
        "moho-provision",
        "moho-grow-state",
        "ssh",
    ] {
        assert_eq!(
            field(&format!("unit {unit}")),
            "enabled active",
            "{unit}: {said}"
        );
    }
    assert!(
        field("unit moho-ssh-host-keys").starts_with("enabled "),
        "{said}"
    );
    assert!(field("podman").starts_with("podman version "), "{said}");
    // podman writes its network lock (on STATE, not the read-only /etc).
    assert_eq!(field("podman-networks"), "podman", "{said}");
    assert_eq!(
        field("var"),
        "/dev/vda4 STATE ext4",
        "STATE on /var: {said}"
    );
    assert_eq!(field("user"), format!("root {host}"), "{said}");
    let id = field("machine-id");
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "machine id {id:?}: {said}"
    );
    id
}

#[test]
fn a_stock_image_on_a_grown_disk_joins_the_fleet_through_each_provisioning_transport() {
    let dir = tempfile::tempdir().unwrap();
    let groups = ["via-metadata", "via-url", "via-esp", "via-cidata"];
    let world = ProvisionWorld::new(dir.path(), &["1.0.0", "2.0.0"], &groups);
    let docs = DocServer::start("");

    // 1. The EC2-style metadata service (IMDSv2): nothing else is there.
    let host = "node-metadata";
    *docs.body.lock().unwrap() = world.doc(host, "via-metadata", &key(host));
    let (disk, image) = world.grown_disk("metadata.img", "raw");
    let mut spec = world.vm_spec(&disk, "raw");
    spec.metadata_forward = Some(docs.port);
    let vm = Vm::start(&spec, &console_log("provision-metadata"));
    check_joined(
        &world,
        &vm,
        "metadata service http://169.254.169.254/latest/user-data",
        host,
        "via-metadata",
        image,
    );
    let seen = docs.seen();
    assert_eq!(
        seen,
        ["PUT /latest/api/token 200", "GET /latest/user-data 200"],
        "asked once, with a token"
    );
    stop_and_check(vm, &disk, "raw");

    // 2. A URL on the command line with its pinned hash (the words the boot
    // selector forwards from its own command line, here qemu's -append).
    let host = "node-url";
    let doc = world.doc(host, "via-url", &key(host));
    *docs.body.lock().unwrap() = doc.clone();
    let (disk, image) = world.grown_disk("url.img", "raw");
    let mut spec = world.vm_spec(&disk, "raw");
    spec.guest_forwards.push((GUEST_DOC_PORT, docs.port));
    let url = format!("http://{GUEST_SERVER_IP}:{GUEST_DOC_PORT}/p.toml");
    if let Boot::Direct { append, .. } = &mut spec.boot {
        append.push_str(&format!(
            " moho.provision={url} moho.provision.sha256={}",
            sha256(&doc)
        ));
    }
    let vm = Vm::start(&spec, &console_log("provision-url"));
    check_joined(
        &world,
        &vm,
        &format!("kernel command line moho.provision={url}"),
        host,
        "via-url",
        image,
    );
    assert!(docs.seen().contains(&"GET /p.toml 200".to_owned()));
    stop_and_check(vm, &disk, "raw");

    // 3. moho/provision.toml on the ESP, written after the image.
    let host = "node-esp";
    let (disk, image) = world.grown_disk("esp.img", "raw");
    world.put_on_esp(&disk, &world.doc(host, "via-esp", &key(host)));
    let vm = Vm::start(&world.vm_spec(&disk, "raw"), &console_log("provision-esp"));
    check_joined(
        &world,
        &vm,
        "moho/provision.toml on the ESP (/dev/vda1)",
        host,
        "via-esp",
        image,
    );
    stop_and_check(vm, &disk, "raw");

    // 4. A cidata config drive, on qcow2; then an update from the server,
    // the reboot into it and its mark-good, on the grown qcow2 disk.
    let host = "node-cidata";
    let ssh = Ssh::new(dir.path(), host);
    let (disk, image) = world.grown_disk("cidata.qcow2", "qcow2");
    let mut spec = world.vm_spec(&disk, "qcow2");
    spec.host_forwards.push((ssh.port, 22));
    spec.extra_disks
        .push(world.cidata("cidata.img", &world.doc(host, "via-cidata", &ssh.public)));
    let vm = Vm::start(&spec, &console_log("provision-cidata"));
    check_joined_with(
        &world,
        &vm,
        "config drive cidata (/dev/vdb) user-data",
        host,
        "via-cidata",
        image,
        &ssh.public,
    );
    let machine_id = look_around(&ssh, "1.0.0", host);
    let (status, body) = world.server.api(
        "POST",
        "/api/v1/rollouts",
        Some(
            json!({"version": "2.0.0", "board": world.repo.board, "channel": "stable",
                    "group": "via-cidata", "policy": {"steps": [{"percent": 100}]}}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    let rollout = body["id"].as_i64().unwrap();
    let trial = vm.wait_for("moho-boot: slot B: trial boot", UPDATE);
    let up = vm.wait_for_from(
        trial,
        "moho-test: up version=2.0.0 slot=B init=systemd",
        BOOT,
    );
    vm.wait_for_from(trial, "provisioned from stored provision document", BOOT);
    vm.wait_for_from(up, "moho-test: mark-good active", BOOT);
    let prov = vm.wait_for_from(up, "moho-test: provisioned ", BOOT);
    assert!(
        line(&vm, prov).contains(&format!("host={host} keys={}", ssh.public)),
        "kept across the update: {}",
        line(&vm, prov)
    );
    let deadline = Instant::now() + BOOT;
    while world.server.rollout_stats(rollout)["healthy"] != 1 {
        assert!(Instant::now() < deadline, "2.0.0 never counted healthy");
        std::thread::sleep(Duration::from_secs(2));
    }
    let node = node_named(&world, host);
    assert_eq!(node["version"], "2.0.0", "{node}");
    assert_eq!(
        look_around(&ssh, "2.0.0", host),
        machine_id,
        "the machine id is kept across the update"
    );
    assert_eq!(node["slot"], "b", "{node}");
    stop_and_check(vm, &disk, "qcow2");

    // 5. A bad document (on the ESP) and an Ignition config (on a config
    // drive): refused by name, the agent stopped, the boot good.
    let (disk, _) = world.grown_disk("bad.img", "raw");
    world.put_on_esp(
        &disk,
        "version = 1\nhostname = \"node-bad\"\n[node]\nchanel = \"beta\"\n",
    );
    let vm = Vm::start(&world.vm_spec(&disk, "raw"), &console_log("provision-bad"));
    check_refused(&world, &vm, "unknown key node.chanel = \"beta\"");
    stop_and_check(vm, &disk, "raw");

    // This one on the disk exactly as `os build --disk` made it (not
    // grown): STATE already fills it, and grow-state says so and succeeds.
    let disk = world
        .first
        .disk_copy(&world.dir.join("ignition.img"), "raw");
    let mut spec = world.vm_spec(&disk, "raw");
    spec.extra_disks.push(world.cidata(
        "ignition-cidata.img",
        r#"{"ignition": {"version": "3.4.0"}, "passwd": {}}"#,
    ));
    let vm = Vm::start(&spec, &console_log("provision-ignition"));
    check_refused(
        &world,
        &vm,
        "this is an Ignition config (ignition.version 3.4.0)",
    );
    let grow = vm.wait_for("STATE (partition 4 of /dev/vda) ", BOOT);
    assert!(
        line(&vm, grow).contains("already fills the disk"),
        "{}",
        line(&vm, grow)
    );
    let var = vm.wait_for("moho-test: var ", BOOT);
    assert!(
        line(&vm, var).contains("grow-state active"),
        "an un-grown disk: {}",
        line(&vm, var)
    );
    stop_and_check(vm, &disk, "raw");

    // 6. Power cuts during the first boot's disk work, each at the console
    // line that announces the step: the boot selector moving the backup GPT
    // to the end of the grown disk, then grow-state's GPT commit, then its
    // filesystem growth. Each next boot starts the good slot; the last one
    // finishes the work and the node joins as any other.
    let host = "node-cuts";
    let (disk, image) = world.grown_disk("cuts.img", "raw");
    world.put_on_esp(&disk, &world.doc(host, "via-esp", &key(host)));
    let spec = world.vm_spec(&disk, "raw");
    for (i, step) in [
        "backup damaged (not at the end of the disk",
        "grow-state: STATE: partition 4 of /dev/vda to the end of the disk",
        "grow-state: STATE: the filesystem on /dev/vda4 (/var) to its partition",
    ]
    .into_iter()
    .enumerate()
    {
        let mut vm = Vm::start(&spec, &console_log(&format!("provision-cut-{i}")));
        vm.wait_for(step, BOOT);
        vm.power_cut();
        // The boot after each cut started the good slot (the first boot's
        // cut came before the selector chose).
        assert!(
            i == 0
                || vm
                    .lines()
                    .iter()
                    .any(|l| l.contains("moho-boot: slot A: booting (marked successful)")),
            "boot {i} after a cut (log {})",
            vm.log.display()
        );
    }
    let vm = Vm::start(&spec, &console_log("provision-cut-after"));
    vm.wait_for("moho-boot: slot A: booting (marked successful)", BOOT);
    check_joined(
        &world,
        &vm,
        "moho/provision.toml on the ESP (/dev/vda1)",
        host,
        "via-esp",
        image,
    );
    stop_and_check(vm, &disk, "raw");
}

/// Where a boot of the stock node OS spends its time under `-accel tcg`:
/// the host's clock at each step the console announces (selector, slot
/// kernel, systemd, the system up, marked good), then `systemd-analyze`
/// over SSH, for the first boot and for the boot after a reboot. A
/// measurement, not a test (`docs/node-os.md` records its figures):
/// `cargo test -p moho-e2e --features vm --test vm_provision -- --ignored --nocapture boot_profile`.
#[test]
#[ignore = "a measurement: prints where a stock boot spends its time"]
fn boot_profile() {
    let dir = tempfile::tempdir().unwrap();
    let world = ProvisionWorld::new(dir.path(), &["1.0.0"], &["profile"]);
    let host = "node-profile";
    let ssh = Ssh::new(dir.path(), host);
    let (disk, _) = world.grown_disk("profile.img", "raw");
    world.put_on_esp(&disk, &world.doc(host, "profile", &ssh.public));
    let mut spec = world.vm_spec(&disk, "raw");
    spec.host_forwards.push((ssh.port, 22));
    let started = Instant::now();
    let vm = Vm::start(&spec, &console_log("boot-profile"));
    let steps = [
        ("selector kernel started", "Linux version"),
        ("selector /init", "moho-boot: boot selector"),
        ("slot chosen", "moho-boot: slot A"),
        ("slot systemd started", "systemd 2"),
        ("local-fs.target", "Reached target local-fs.target"),
        ("sysinit.target", "Reached target sysinit.target"),
        (
            "network-online.target",
            "Reached target network-online.target",
        ),
        ("multi-user.target", "Reached target multi-user.target"),
        ("scenario up", "moho-test: up "),
        ("marked good", "moho-test: mark-good active"),
    ];
    // The scenario never ends (it reports every 10 s): stopped, so that
    // systemd counts the boot finished.
    let analyze = "systemctl stop moho-test-scenario.service; \
                   echo failed: $(systemctl --failed --no-legend --plain | cut -d' ' -f1); \
                   systemd-analyze time; systemd-analyze blame | head -n 30; \
                   systemd-analyze critical-chain multi-user.target boot-complete.target; \
                   uptime";
    for boot in ["first boot", "second boot"] {
        let mut scanned = vm.lines().len();
        let t0 = started.elapsed();
        let mut seen: Vec<Option<f64>> = vec![None; steps.len()];
        let deadline = Instant::now() + BOOT;
        while seen.last().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "{boot}: not marked good (log {})",
                vm.log.display()
            );
            let lines = vm.lines();
            let at = (started.elapsed() - t0).as_secs_f64();
            for l in &lines[scanned..] {
                for (i, (_, needle)) in steps.iter().enumerate() {
                    if seen[i].is_none() && l.contains(needle) {
                        seen[i] = Some(at);
                    }
                }
            }
            scanned = lines.len();
            std::thread::sleep(Duration::from_millis(200));
        }
        for ((what, _), at) in steps.iter().zip(&seen) {
            match at {
                Some(at) => println!("{boot}: {what:<24} at +{at:>6.1} s"),
                None => println!("{boot}: {what:<24} not seen"),
            }
        }
        let said = ssh.wait("root", analyze, BOOT);
        println!("{boot}: systemd-analyze:\n{said}");
        if boot == "first boot" {
            let _ = ssh.run("root", "systemctl reboot");
        }
    }
    println!(
        "host load: {}",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default()
    );
}
