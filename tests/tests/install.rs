//! The install path end to end (issue 4): the real `update-agent install`
//! against a signed repository built by `image-tools`, served over HTTPS
//! from loopback, onto slots on a loop device (partitions added by BLKPG)
//! or a disk image file. Every refusal leaves the booted slot untouched and
//! the inactive slot unarmed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;

use moho_e2e::fleet::{Node, NodeSpec, ReleaseRepo, payload};
use moho_e2e::https_server::{Fault, HttpsServer};
use moho_e2e::{require_root, slot_fields};

const MIB: usize = 1024 * 1024;
const BOARD: &str = "amd64-test";

struct World {
    _tmp: tempfile::TempDir,
    repo: ReleaseRepo,
    server: HttpsServer,
    v1: std::path::PathBuf,
}

fn world(payload_mib: usize) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let repo = ReleaseRepo::new(tmp.path(), BOARD);
    let v1 = repo.build("1.0.0", &payload(payload_mib * MIB, 1));
    repo.add(&v1, &["stable"]);
    let server = HttpsServer::start(&repo.repo);
    World {
        _tmp: tmp,
        repo,
        server,
        v1,
    }
}

fn node(w: &World, name: &str, on_loop: bool) -> Node {
    node_sized(w, name, on_loop, "64M", "256M")
}

fn node_sized(w: &World, name: &str, on_loop: bool, slot: &str, disk: &str) -> Node {
    Node::new(
        &w.repo.dir.join(name),
        &w.server,
        &w.repo,
        &NodeSpec {
            booted_image: &w.v1,
            booted_version: "1.0.0",
            channel: "stable",
            slot_size: slot,
            disk_size: disk,
            on_loop_device: on_loop,
        },
    )
}

/// The install failed with `code`, saying `needle`, and both slots are as
/// `disk create` left them: A booted and good, B never armed.
fn refused(n: &Node, out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    let slots = n.slots();
    assert_eq!(
        slot_fields(&slots, "A"),
        (1, 0, true),
        "booted slot untouched"
    );
    assert_eq!(slot_fields(&slots, "B").0, 0, "inactive slot never armed");
    assert_eq!(slots["next"], "A");
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "install failed: {}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The bytes of slot B (partition 3) of the node's disk file.
fn slot_b(node: &Node, slot_mib: usize, len: usize) -> Vec<u8> {
    let start = MIB + 64 * MIB + slot_mib * MIB; // 1 MiB gap + ESP + slot A
    let disk = std::fs::read(&node.disk_file).unwrap();
    disk[start..start + len].to_vec()
}

/// Slot B holds exactly the image file `image`.
fn slot_b_holds(node: &Node, slot_mib: usize, image: &Path) {
    let want = std::fs::read(image).unwrap();
    assert!(
        slot_b(node, slot_mib, want.len()) == want,
        "slot B does not hold the image"
    );
}

#[test]
fn a_clean_install_on_a_loop_device_arms_b() {
    require_root("install on a loop device");
    let w = world(20);
    let v2 = w.repo.build("1.1.0", &payload(20 * MIB, 2));
    w.repo.add(&v2, &["stable"]);
    let n = node(&w, "clean", true);
    let out = json(&n.install(&[]));
    assert_eq!(out["outcome"], "installed");
    assert_eq!(out["version"], "1.1.0");
    assert_eq!(out["slot"], "B");
    let slots = n.slots();
    assert_eq!(slot_fields(&slots, "B"), (2, 1, false));
    assert_eq!(slot_fields(&slots, "A"), (1, 0, true));
    assert_eq!(slots["next"], "B");
    slot_b_holds(&n, 64, &v2);
    // Nothing newer now: a second run says so and changes nothing.
    let again = json(&n.install(&[]));
    assert_eq!(again["outcome"], "already-staged");
    assert_eq!(again["slot"], "B");
    assert_eq!(slot_fields(&n.slots(), "B"), (2, 1, false));
}

#[test]
fn sigkill_at_10_50_and_90_percent_resumes_without_starting_over() {
    require_root("install on a loop device");
    let w = world(4);
    // 1 MiB chunks keep the work lost per kill small next to the image.
    let v2 = w
        .repo
        .build_with(BOARD, "2.0.0", &payload(64 * MIB, 7), "1MiB");
    w.repo.add(&v2, &["stable"]);
    let image_len = std::fs::metadata(&v2).unwrap().len();
    // All-zero chunks are copied from the (mostly empty) booted slot, not
    // downloaded: place the kills on the bytes that really travel.
    let remote: u64 = std::fs::read(&v2)
        .unwrap()
        .chunks(MIB)
        .filter(|c| c.iter().any(|&b| b != 0))
        .map(|c| c.len() as u64)
        .sum();
    let n = node_sized(&w, "resume", true, "128M", "512M");
    // Slow enough to stop the agent at a chosen point.
    w.server.throttle(Some(24 * MIB as u64));
    for percent in [10u64, 50, 90] {
        let mut args = n.agent_args("A");
        args.extend([
            std::ffi::OsStr::new("install"),
            std::ffi::OsStr::new("--json"),
        ]);
        let log = n.dir.join(format!("agent-{percent}.log"));
        let mut child = std::process::Command::new(moho_e2e::bin("update-agent"))
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let goal = remote * percent / 100;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while w.server.bytes_served("root.img") < goal {
            assert!(
                std::time::Instant::now() < deadline,
                "the download never reached {percent}%"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "agent exited ({status}) before {percent}%: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert_eq!(
            slot_fields(&n.slots(), "B").0,
            0,
            "killed at {percent}%: B not armed"
        );
    }
    w.server.throttle(None);
    let out = json(&n.install(&[]));
    assert_eq!(out["version"], "2.0.0");
    assert!(
        out["resumed_bytes"].as_u64().unwrap() > image_len / 2,
        "{out}"
    );
    let total = w.server.bytes_served("root.img");
    assert!(
        total * 10 < image_len * 12,
        "downloaded {total} bytes in all for a {image_len}-byte image (must be < 1.2x)"
    );
    slot_b_holds(&n, 128, &v2);
    assert_eq!(slot_fields(&n.slots(), "B"), (2, 1, false));
}

#[test]
fn a_flipped_byte_in_the_served_image_is_never_written() {
    require_root("install on a loop device");
    let w = world(4);
    let v2 = w.repo.build("1.1.0", &payload(20 * MIB, 2));
    w.repo.add(&v2, &["stable"]);
    let n = node(&w, "flip", true);
    let target = w.repo.target_file("1.1.0/root.img");
    let rel = target
        .strip_prefix(&w.repo.repo)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let bad_at = 9 * MIB as u64 + 12345; // inside chunk 2 (4 MiB chunks)
    w.server.set_fault(&rel, Some(Fault::FlipByte(bad_at)));
    let out = n.install(&[]);
    refused(&n, &out, 8, "chunk 2");
    // Chunk 2 of slot B was never written: it still holds what disk create left (zeros).
    let b = slot_b(&n, 64, 12 * MIB);
    assert!(
        b[8 * MIB..12 * MIB].iter().all(|&x| x == 0),
        "the rejected chunk reached the disk"
    );
}

#[test]
fn a_truncated_response_is_refused_after_retries() {
    require_root("install on a loop device");
    let w = world(4);
    let v2 = w.repo.build("1.1.0", &payload(20 * MIB, 2));
    w.repo.add(&v2, &["stable"]);
    let n = node(&w, "truncated", true);
    let target = w.repo.target_file("1.1.0/root.img");
    let rel = target
        .strip_prefix(&w.repo.repo)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    w.server
        .set_fault(&rel, Some(Fault::TruncateAt(10 * MIB as u64 + 7)));
    let out = n.install(&[]);
    refused(&n, &out, 1, "failed after 3 attempts");
    // Once the server is fixed, the next run resumes and completes.
    w.server.set_fault(&rel, None);
    let ok = json(&n.install(&[]));
    assert!(
        ok["resumed_bytes"].as_u64().unwrap() >= 8 * MIB as u64,
        "{ok}"
    );
    slot_b_holds(&n, 64, &v2);
}

#[test]
fn a_dropped_connection_is_resumed_with_a_range_request() {
    require_root("install on a loop device");
    let w = world(4);
    let v2 = w.repo.build("1.1.0", &payload(20 * MIB, 2));
    w.repo.add(&v2, &["stable"]);
    let n = node(&w, "dropped", true);
    let target = w.repo.target_file("1.1.0/root.img");
    let rel = target
        .strip_prefix(&w.repo.repo)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    w.server
        .set_fault(&rel, Some(Fault::TruncateOnceAt(10 * MIB as u64 + 7)));
    let out = json(&n.install(&[]));
    assert_eq!(out["version"], "1.1.0");
    slot_b_holds(&n, 64, &v2);
    // The retry asked for the rest, from the start of the broken chunk.
    let ranges: Vec<String> = w
        .server
        .requests()
        .into_iter()
        .filter(|(p, _)| *p == rel)
        .filter_map(|(_, r)| r)
        .collect();
    assert!(
        ranges
            .iter()
            .any(|r| r.starts_with(&format!("bytes={}-", 8 * MIB))),
        "{ranges:?}"
    );
    assert!(w.server.bytes_served("root.img") < std::fs::metadata(&v2).unwrap().len() * 12 / 10);
}

/// `update-agent install --json` for `n` with a short read timeout, killed
/// (and the test failed) if it has not ended within `secs`: a stalled
/// download must end the install, not hang it.
fn install_within(n: &Node, secs: u32) -> Output {
    std::fs::write(
        n.config_dir.join("20-stall.toml"),
        "[update]\nread_timeout = \"2s\"\n",
    )
    .unwrap();
    let mut args = n.agent_args("A");
    args.push(std::ffi::OsStr::new("install"));
    args.push(std::ffi::OsStr::new("--json"));
    let out = std::process::Command::new("timeout")
        .args(["--signal=KILL", &secs.to_string()])
        .arg(moho_e2e::bin("update-agent"))
        .args(args)
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        None,
        "the install hung for {secs} s on a stalled download: {}",
        stderr(&out)
    );
    out
}

fn image_path(w: &World, version: &str) -> String {
    w.repo
        .target_file(&format!("{version}/root.img"))
        .strip_prefix(&w.repo.repo)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_server_that_stops_sending_mid_image_is_resumed_after_the_read_timeout() {
    require_root("install on a loop device");
    let w = world(4);
    let v2 = w.repo.build("1.1.0", &payload(20 * MIB, 2));
    w.repo.add(&v2, &["stable"]);
    let n = node(&w, "stalled-once", true);
    let rel = image_path(&w, "1.1.0");
    // Headers and 10 MiB come, then nothing on an open connection.
    w.server
        .set_fault(&rel, Some(Fault::StallOnceAt(10 * MIB as u64 + 7)));
    let out = json(&install_within(&n, 120));
    assert_eq!(out["version"], "1.1.0");
    slot_b_holds(&n, 64, &v2);
    // After the read timeout the rest was asked for from the start of the
    // chunk the stall broke.
    let ranges: Vec<String> = w
        .server
        .requests()
        .into_iter()
        .filter(|(p, _)| *p == rel)
        .filter_map(|(_, r)| r)
        .collect();
    assert!(
        ranges
            .iter()
            .any(|r| r.starts_with(&format!("bytes={}-", 8 * MIB))),
        "{ranges:?}"
    );
}

#[test]
fn a_server_that_keeps_stalling_fails_the_install_clearly_and_the_next_run_resumes() {
    require_root("install on a loop device");
    let w = world(4);
    let v2 = w.repo.build("1.1.0", &payload(20 * MIB, 2));
    w.repo.add(&v2, &["stable"]);
    let n = node(&w, "stalled", true);
    let rel = image_path(&w, "1.1.0");
    w.server
        .set_fault(&rel, Some(Fault::StallAt(10 * MIB as u64 + 7)));
    // Three attempts (the node's `download_attempts`), each ended by the
    // 2 s read timeout: a clear failure, the slot left unarmed.
    let out = install_within(&n, 120);
    refused(&n, &out, 1, "failed after 3 attempts");
    let err = stderr(&out);
    assert!(err.contains("timed out"), "{err}");
    assert!(err.contains(&rel), "the error names the URL: {err}");
    // Once the server sends again, the next run goes on from what was
    // written.
    w.server.set_fault(&rel, None);
    let ok = json(&install_within(&n, 120));
    assert!(
        ok["resumed_bytes"].as_u64().unwrap() >= 8 * MIB as u64,
        "{ok}"
    );
    slot_b_holds(&n, 64, &v2);
}

#[test]
fn wrong_board_wrong_channel_and_downgrade_are_refused() {
    require_root("install on a loop device");
    let w = world(4);
    let other_board = w.repo.build_for("arm64-test", "1.2.0", &payload(MIB, 3));
    w.repo.add(&other_board, &["stable"]);
    let beta_only = w.repo.build("1.3.0", &payload(MIB, 4));
    w.repo.add(&beta_only, &["beta"]);
    let older = w.repo.build("0.9.0", &payload(MIB, 5));
    w.repo.add(&older, &["stable"]);
    let n = node(&w, "wrong", true);

    let out = n.install(&["--target", "arm64-test/1.2.0/root.img"]);
    refused(&n, &out, 8, "board");
    let out = n.install(&["--version", "1.3.0"]);
    refused(&n, &out, 8, "beta");
    let out = n.install(&["--version", "0.9.0"]);
    refused(&n, &out, 8, "0.9.0");
    // With nothing newer signed for this node, an unqualified install does nothing.
    let out = json(&n.install(&[]));
    assert_eq!(out["outcome"], "nothing-to-install");
    refused_state_is_clean(&n);
    // A release signed as a rollback release may replace a newer one, when
    // asked for by version; it is never picked on its own.
    let rollback = w.repo.build("0.9.5", &payload(MIB, 6));
    w.repo
        .add_with(&rollback, &["stable"], &["--allow-downgrade"]);
    let out = json(&n.install(&[]));
    assert_eq!(out["outcome"], "nothing-to-install");
    let out = json(&n.install(&["--version", "0.9.5"]));
    assert_eq!(out["outcome"], "installed", "{out}");
    assert_eq!(slot_fields(&n.slots(), "B"), (2, 1, false));
}

fn refused_state_is_clean(n: &Node) {
    let slots = n.slots();
    assert_eq!(slot_fields(&slots, "A"), (1, 0, true));
    assert_eq!(slot_fields(&slots, "B").0, 0);
}

#[test]
fn expired_metadata_is_refused() {
    require_root("install on a loop device");
    let w = world(4);
    let v2 = w.repo.build("1.1.0", &payload(MIB, 2));
    w.repo.add(&v2, &["stable"]);
    moho_e2e::ok(
        moho_e2e::bin("image-tools"),
        [
            "repo".as_ref(),
            "refresh".as_ref(),
            "--repo".as_ref(),
            w.repo.repo.as_os_str(),
            "--keys".as_ref(),
            w.repo.keys.as_os_str(),
            "--timestamp-expires".as_ref(),
            "1s".as_ref(),
        ],
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    let n = node(&w, "expired", true);
    let out = n.install(&[]);
    refused(&n, &out, 8, "expired");
}

#[test]
fn an_image_larger_than_the_slot_is_refused_before_writing() {
    require_root("install on a loop device");
    let w = world(4);
    let big = w.repo.build("1.1.0", &payload(70 * MIB, 9));
    w.repo.add(&big, &["stable"]);
    let n = node(&w, "full", true);
    let out = n.install(&[]);
    refused(&n, &out, 4, "holds only 67108864");
    assert_eq!(
        w.server.bytes_served("root.img"),
        0,
        "not a byte of the image was fetched"
    );
}

#[test]
fn an_update_sharing_most_chunks_downloads_little() {
    require_root("install on a loop device");
    let tmp = tempfile::tempdir().unwrap();
    let repo = ReleaseRepo::new(tmp.path(), BOARD);
    let base = payload(60 * MIB, 11);
    let v1 = repo.build_with(BOARD, "1.0.0", &base, "1MiB");
    repo.add(&v1, &["stable"]);
    let mut changed = base.clone();
    for at in [5 * MIB, 33 * MIB] {
        for b in &mut changed[at..at + 64 * 1024] {
            *b ^= 0x5a;
        }
    }
    let v2 = repo.build_with(BOARD, "1.1.0", &changed, "1MiB");
    repo.add(&v2, &["stable"]);
    let server = HttpsServer::start(&repo.repo);
    let n = Node::new(
        &tmp.path().join("reuse"),
        &server,
        &repo,
        &NodeSpec {
            booted_image: &v1,
            booted_version: "1.0.0",
            channel: "stable",
            slot_size: "96M",
            disk_size: "384M",
            on_loop_device: true,
        },
    );
    let out = json(&n.install(&[]));
    let image = out["image_bytes"].as_u64().unwrap();
    let downloaded = out["downloaded_bytes"].as_u64().unwrap();
    assert_eq!(server.bytes_served("root.img"), downloaded);
    assert!(
        downloaded * 10 < image,
        "downloaded {downloaded} of {image} bytes (must be < 10%)"
    );
    assert_eq!(
        downloaded + out["reused_bytes"].as_u64().unwrap(),
        image,
        "{out}"
    );
    slot_b_holds(&n, 96, &v2);
}

#[test]
fn a_release_built_on_the_previous_image_installs_downloading_only_what_changed() {
    // Issue 14 through the real install path: 1.1.0 adds files that sort
    // first and changes one, and is built with `image-tools build
    // --previous` on 1.0.0; the node on 1.0.0 copies every unchanged chunk
    // from its booted slot (each re-hashed against the signed index) and
    // the slot it wrote reads back as 1.1.0. Built afresh, the new files
    // would shift every file after them into other chunks.
    require_root("install on a loop device");
    let tmp = tempfile::tempdir().unwrap();
    let repo = ReleaseRepo::new(tmp.path(), BOARD);
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("boot")).unwrap();
    std::fs::create_dir_all(tree.join("usr/lib")).unwrap();
    std::fs::write(tree.join("boot/vmlinuz"), b"not a real kernel").unwrap();
    for i in 0..300usize {
        let name = tree.join(format!("usr/lib/lib{i:03}.so"));
        std::fs::write(name, payload(200 * 1024 + i * 37, 100 + i as u64)).unwrap();
    }
    let os_release = |v: &str| format!("ID=moho\nVERSION_ID={v}\n");
    std::fs::write(tree.join("usr/lib/os-release"), os_release("1.0.0")).unwrap();
    let v1 = repo.build_tree(BOARD, "1.0.0", &tree, "1MiB", None);
    repo.add(&v1, &["stable"]);
    std::fs::write(tree.join("usr/lib/aaa-new.so"), payload(700 * 1024, 7)).unwrap();
    std::fs::write(tree.join("usr/lib/lib150.so"), payload(90 * 1024, 8)).unwrap();
    std::fs::write(tree.join("usr/lib/os-release"), os_release("1.1.0")).unwrap();
    let v2 = repo.build_tree(BOARD, "1.1.0", &tree, "1MiB", Some(&v1));
    repo.add(&v2, &["stable"]);
    let server = HttpsServer::start(&repo.repo);
    let len = std::fs::metadata(&v2).unwrap().len();
    let slot_mib = usize::try_from(len.div_ceil(MIB as u64)).unwrap() + 8;
    let n = Node::new(
        &tmp.path().join("node"),
        &server,
        &repo,
        &NodeSpec {
            booted_image: &v1,
            booted_version: "1.0.0",
            channel: "stable",
            slot_size: &format!("{slot_mib}M"),
            disk_size: &format!("{}M", 2 * slot_mib + 96),
            on_loop_device: true,
        },
    );
    let out = json(&n.install(&[]));
    let image = out["image_bytes"].as_u64().unwrap();
    let downloaded = out["downloaded_bytes"].as_u64().unwrap();
    println!("downloaded {downloaded} of {image} bytes");
    assert_eq!(server.bytes_served("root.img"), downloaded);
    assert!(
        downloaded * 10 < image,
        "downloaded {downloaded} of {image} bytes (must be < 10%)"
    );
    assert_eq!(
        downloaded + out["reused_bytes"].as_u64().unwrap(),
        image,
        "{out}"
    );
    slot_b_holds(&n, slot_mib, &v2);
}

#[test]
fn a_release_staged_by_the_cli_and_booted_since_does_not_block_the_next_install() {
    // `install` stages 1.1.0 in B; the node boots B and marks it good (here
    // with `--booted B`, as the VM test does for real); the next `install`
    // from B puts 1.2.0 in A instead of "cancelling" the slot now running.
    let w = world(2);
    let v2 = w.repo.build("1.1.0", &payload(2 * MIB, 2));
    w.repo.add(&v2, &["stable"]);
    let n = node(&w, "staged-then-booted", false);
    assert_eq!(json(&n.install(&[]))["slot"], "B");
    let on_b = |extra: &[&str]| {
        let mut args = n.agent_args("B");
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        moho_e2e::run(moho_e2e::bin("update-agent"), args)
    };
    let disk = n.disk();
    let marked = on_b(&["slots", "--disk", disk.to_str().unwrap(), "mark-good"]);
    assert!(marked.status.success(), "mark-good: {}", stderr(&marked));
    let v3 = w.repo.build("1.2.0", &payload(2 * MIB, 3));
    w.repo.add(&v3, &["stable"]);
    let out = json(&on_b(&["install", "--json", "--version", "1.2.0"]));
    assert_eq!(out["outcome"], "installed", "{out}");
    assert_eq!(out["slot"], "A", "{out}");
    let slots = moho_e2e::slots_json(&n.disk(), Some("B"));
    assert_eq!(slot_fields(&slots, "A"), (2, 1, false), "{slots}");
    assert_eq!(slot_fields(&slots, "B"), (1, 0, true), "{slots}");
}

#[test]
fn a_release_booted_marked_good_and_rolled_back_from_without_an_agent_does_not_block_an_install() {
    // `install` stages 1.1.0 in B; B boots and `slots mark-good` blesses it
    // with no agent watching; `slots rollback` puts A first and A boots.
    // The next `install` from A writes B again instead of failing to
    // "cancel" a B that is no longer staged (found by the power-cut soak).
    let w = world(2);
    let v2 = w.repo.build("1.1.0", &payload(2 * MIB, 2));
    w.repo.add(&v2, &["stable"]);
    let n = node(&w, "rolled-back-from", false);
    assert_eq!(json(&n.install(&[]))["slot"], "B");
    let disk = n.disk();
    let slots_on = |booted: &str, cmd: &str| {
        let mut args = n.agent_args(booted);
        args.extend(["slots", "--disk", disk.to_str().unwrap(), cmd].map(std::ffi::OsStr::new));
        let out = moho_e2e::run(moho_e2e::bin("update-agent"), args);
        assert!(out.status.success(), "slots {cmd}: {}", stderr(&out));
    };
    slots_on("B", "mark-good");
    slots_on("B", "rollback");
    let slots = n.slots();
    assert_eq!(slot_fields(&slots, "A"), (2, 0, true), "{slots}");
    assert_eq!(slot_fields(&slots, "B"), (1, 0, true), "{slots}");
    let out = json(&n.install(&["--version", "1.1.0"]));
    assert_eq!(out["outcome"], "installed", "{out}");
    assert_eq!(out["slot"], "B", "{out}");
    slot_b_holds(&n, 64, &v2);
    assert_eq!(slot_fields(&n.slots(), "B"), (2, 1, false));
}
