//! `moho-vm-demo [--out DIR] [--keep-running]`: the README's main job, the
//! whole story on a virtual machine (KVM when a probe VM runs under KVM, software
//! emulation otherwise). Four releases of the node OS, each built by
//! `image-tools os build` from the example `node-os.toml` (1.0.0, 2.0.0;
//! 3.0.0 whose kernel panics; 3.0.1 whose health check fails) are signed
//! into a TUF repository and served by `update-server` (SQLite, generated
//! keys); the stock UEFI disk `os build --disk` made (systemd-boot, the
//! boot selector, 1.0.0 in slot A; no server address in it), on a disk
//! four times its size, boots in qemu (OVMF) with a provision
//! document as a systemd credential (fw_cfg), which names the server, its
//! CA, channel, group, host name and an SSH key. The operator starts rollouts; the
//! agent units update the VM over its network, reboot it into the new
//! slot, mark it good, and fall back from both broken releases without
//! help. The console's key lines, the slot table and the server's view are
//! printed along the way; everything is kept in the output directory. At the
//! end it prints the dashboard's URL and a viewer token; with
//! `--keep-running` the server (and the VM) run on until Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use moho_e2e::vm::qemu::{Vm, kvm_works};
use moho_e2e::vm::story::{Behaviour, PANICKED, ServerStory, UNHEALTHY};
use moho_e2e::{bin, ok};
use serde_json::Value;

fn step(text: &str) {
    println!("\n== {text}");
}

/// The slot table as `update-agent` and `cgpt` read it from the disk file.
fn table(disk: &Path) {
    print!(
        "{}",
        ok(
            bin("update-agent"),
            [OsStr::new("slots"), OsStr::new("--disk"), disk.as_os_str()]
        )
    );
    let cgpt = |i: &str, f: &str| {
        ok(
            "cgpt",
            [
                OsStr::new("show"),
                OsStr::new("-i"),
                OsStr::new(i),
                OsStr::new(f),
                disk.as_os_str(),
            ],
        )
        .trim()
        .to_owned()
    };
    for (slot, i) in [("A", "2"), ("B", "3")] {
        println!(
            "cgpt: {slot} priority {} tries {} successful {}",
            cgpt(i, "-P"),
            cgpt(i, "-T"),
            cgpt(i, "-S")
        );
    }
}

/// The server's view: its nodes and the counts of each rollout so far.
fn server_view(story: &ServerStory, rollouts: &[(&str, i64)]) {
    for n in story.nodes() {
        println!(
            "server: node {} ({}): runs {} from slot {}, {}, last seen {}",
            n["id"].as_str().unwrap_or("?"),
            n["hostname"].as_str().unwrap_or("-"),
            n["version"].as_str().unwrap_or("?"),
            n["slot"].as_str().unwrap_or("?").to_uppercase(),
            n["state"].as_str().unwrap_or("?"),
            n["last_seen"].as_str().unwrap_or("?"),
        );
    }
    for (version, id) in rollouts {
        let (_, body) = story
            .server
            .api("GET", &format!("/api/v1/rollouts/{id}"), None);
        let stats: &Value = &body["stats"];
        println!(
            "server: rollout {id} of {version}: {}; nodes healthy {}, failed {}, in flight {}",
            body["state"]["status"].as_str().unwrap_or("?"),
            stats["healthy"],
            stats["failed"],
            stats["in_flight"],
        );
    }
}

/// Prints the console lines from `from` on that tell the story (selector
/// choices, panics, the test OS's reports, the agent's state changes);
/// returns where it stopped.
fn console(vm: &Vm, from: usize, last_state: &mut String) -> usize {
    let lines = vm.lines();
    for l in &lines[from..] {
        if let Some(status) = l.split("moho-test: agent ").nth(1) {
            let state = serde_json::from_str::<Value>(status)
                .ok()
                .and_then(|v| v["state"].as_str().map(str::to_owned))
                .unwrap_or_else(|| status.to_owned());
            if state != *last_state {
                println!("vm: agent state {state}");
                last_state.clone_from(&state);
            }
        } else if l.starts_with("moho-boot: slot")
            && (l.contains(": trial boot") || l.contains(": booting"))
            || l.contains("Kernel panic -")
            || (l.contains("moho-test: ") && !l.contains("mark-good"))
        {
            println!("vm: {}", &l[l.find("moho-").unwrap_or(0)..].trim_end());
        }
    }
    lines.len()
}

fn main() {
    let mut out = PathBuf::from("out/demo");
    let mut keep_running = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" if let Some(dir) = args.next() => out = dir.into(),
            "--keep-running" => keep_running = true,
            _ => {
                eprintln!("usage: moho-vm-demo [--out DIR] [--keep-running]");
                std::process::exit(2);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let out = out.canonicalize().unwrap();

    step(
        "four releases of the node OS (image-tools os build), signed into a TUF repository and served by update-server",
    );
    println!(
        "(the Debian packages and the debootstrap root are fetched once and cached; each release is built once)"
    );
    let story = ServerStory::new(
        &out,
        &[
            ("1.0.0", Behaviour::Healthy),
            ("2.0.0", Behaviour::Healthy),
            ("3.0.0", Behaviour::Panic),
            ("3.0.1", Behaviour::Unhealthy),
        ],
    );
    let (_, releases) = story.server.api("GET", "/api/v1/releases", None);
    for r in releases["items"].as_array().into_iter().flatten() {
        println!("server: release {} for {}", r["version"], r["board"]);
    }
    println!(
        "server: {} (log {})",
        story.server.base(),
        story.server.log.display()
    );

    step(
        "the stock disk of image-tools os build --disk (ESP with systemd-boot and the boot selector, 1.0.0 in slot A), no server address in it, copied to a disk four times its size",
    );
    let (disk, _) = story.disk("disk.img", "raw");
    table(&disk);

    step(
        "rollout of 2.0.0; boot the VM (OVMF) with its provision document: it joins the server, 1.0.0 updates, reboots into B, B is marked good",
    );
    let to_2 = story.roll_out("2.0.0");
    let vars = out.join("OVMF_VARS.fd");
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).expect("OVMF (Debian package ovmf)");
    let log = out.join("console.log");
    let mut spec = story.vm_spec(&disk, Some(vars));
    spec.accel = if kvm_works() { "kvm" } else { "tcg" };
    println!(
        "provision document (fw_cfg credential moho.provision): {}",
        story.provision.display()
    );
    println!(
        "(qemu -accel {}{}; console in {})",
        spec.accel,
        if spec.accel == "tcg" {
            ", /dev/kvm does not work here: software emulation"
        } else {
            ""
        },
        log.display()
    );
    let mut vm = Vm::start(&spec, &log);
    let mut state = String::new();
    let joined = vm.wait_for("moho-test: provisioned ", moho_e2e::vm::story::BOOT);
    println!("vm: {}", vm.lines()[joined].trim_end());
    let on_2 = story.await_healthy(&vm, 0, to_2, "2.0.0", "B");
    let mut shown = console(&vm, 0, &mut state);
    server_view(&story, &[("2.0.0", to_2)]);

    step(
        "rollout of 3.0.0, whose kernel panics: one trial boot, then the selector falls back to 2.0.0",
    );
    let to_3 = story.roll_out("3.0.0");
    let back = story.await_rollback(&vm, on_2, to_3, "3.0.0", "A", "2.0.0", PANICKED);
    shown = console(&vm, shown, &mut state);
    server_view(&story, &[("2.0.0", to_2), ("3.0.0", to_3)]);

    step("rollout of 3.0.1, whose health check fails: never marked good, the next boot falls back");
    let to_3b = story.roll_out("3.0.1");
    story.await_rollback(&vm, back, to_3b, "3.0.1", "A", "2.0.0", UNHEALTHY);
    console(&vm, shown, &mut state);
    server_view(
        &story,
        &[("2.0.0", to_2), ("3.0.0", to_3), ("3.0.1", to_3b)],
    );

    if !keep_running {
        step("the VM is switched off; the disk as it is left");
        vm.power_cut();
        table(&disk);
    }
    println!(
        "\ndemo finished: disk {}, console log {}, server data {}",
        disk.display(),
        log.display(),
        story.server.data_dir.display()
    );
    let ca = out.join("server-ca.pem");
    std::fs::write(&ca, &story.server.ca_pem).unwrap();
    let (status, token) = story.server.api(
        "POST",
        "/api/v1/tokens",
        Some(serde_json::json!({"name": "demo-viewer", "role": "viewer"})),
    );
    assert_eq!(status, 201, "creating a viewer token: {token}");
    println!(
        "\ndashboard: {}ui/ (certificate by the demo's CA {})\nviewer token: {}",
        story.server.base(),
        ca.display(),
        token["secret"].as_str().unwrap_or("?")
    );
    if keep_running {
        println!("the server and the VM keep running; Ctrl-C stops them");
        loop {
            std::thread::park();
        }
    }
    println!("(the server stops now; `scripts/demo.sh --keep-running` keeps it running)");
}
