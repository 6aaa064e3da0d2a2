//! A withdrawn release never boots, inside qemu (DESIGN §3.13, issue 13's
//! last acceptance item): a node of the systemd VM image, provisioned over
//! fw_cfg with `strategy = "windows"` and one weekly window that opens
//! [`WINDOW_AFTER`] after provisioning by the guest's UTC clock, takes
//! 2.0.0 from a rollout with `update_timeout` 1m and `max_in_flight` 1,
//! and stages it (slot B armed, status "reboot window closed until …",
//! wire state `staged` at the server). Well past the update timeout the
//! rollout still counts it in flight, not failed. The operator aborts the
//! rollout through the real API; at the node's next check-in (with the
//! agent's default hourly interval: the one it makes before it would
//! reboot, when the window opens) it clears slot B (`cancel_armed`:
//! priority 0, tries 0), is idle, and the server has its `cancelled`
//! event. Past the window's opening nothing has rebooted: one boot on the
//! console, 1.0.0 from slot A, one download in all. Nothing in the test
//! reboots the guest or configures it beyond the provision document an
//! operator would give it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use moho_e2e::vm::qemu::Vm;
use moho_e2e::vm::story::{BOOT, Behaviour, ServerStory, UPDATE};
use moho_e2e::{ok, slot_fields, slots_json};
use serde_json::{Value, json};

/// How long after provisioning the node's reboot window opens: the boot,
/// the first check-in, the download and write of 2.0.0 and 70 s past the
/// 1 min update timeout all fit before it under `-accel tcg` on a loaded
/// machine (about 4 minutes at a load of 10 on 2 cores).
const WINDOW_AFTER: Duration = Duration::from_secs(10 * 60);

/// The rollout's `update_timeout`, and how far past it the test looks.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(60);
const PAST_TIMEOUT: Duration = Duration::from_secs(70);

fn console_log(test: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vm-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{test}.log"))
}

/// The agent status lines the scenario prints every 10 s after console
/// line `from`, parsed, with their line numbers.
fn statuses(vm: &Vm, from: usize) -> Vec<(usize, Value)> {
    vm.lines()
        .iter()
        .enumerate()
        .skip(from)
        .filter_map(|(i, l)| {
            let json = l.split("moho-test: agent ").nth(1)?;
            serde_json::from_str(json).ok().map(|v| (i, v))
        })
        .collect()
}

/// Waits for an agent status after line `from` that `want` accepts.
fn wait_status(
    vm: &Vm,
    from: usize,
    what: &str,
    timeout: Duration,
    want: impl Fn(&Value) -> bool,
) -> (usize, Value) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = statuses(vm, from).into_iter().find(|(_, s)| want(s)) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}; last status {:?} (log {})",
            statuses(vm, from).last(),
            vm.log.display()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The guest's UTC clock as the scenario last printed it (`moho-test:
/// clock <epoch>`), after line `from`.
fn guest_clock(vm: &Vm, from: usize) -> Option<i64> {
    vm.lines()
        .iter()
        .skip(from)
        .filter_map(|l| l.split("moho-test: clock ").nth(1)?.trim().parse().ok())
        .next_back()
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

/// Sleeps until the host's clock reads `at`.
fn sleep_until(at: Timestamp) {
    let left = at.duration_since(Timestamp::now());
    if let Ok(left) = Duration::try_from(left) {
        std::thread::sleep(left);
    }
}

#[test]
fn a_node_staged_for_its_window_cancels_an_aborted_rollout_and_never_boots_it() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let story = ServerStory::new(
        dir.path(),
        &[("1.0.0", Behaviour::Healthy), ("2.0.0", Behaviour::Healthy)],
    );
    let board = story.repo.board.clone();

    // The window: a weekly one, on the day it falls, in UTC, opening
    // WINDOW_AFTER from now (to the next whole minute) for an hour.
    let opens_at = {
        let t = Timestamp::now() + WINDOW_AFTER;
        let s = t.as_second();
        Timestamp::from_second(s + (60 - s.rem_euclid(60)) % 60).unwrap()
    };
    let opens = opens_at.to_zoned(TimeZone::UTC);
    let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [usize::try_from(opens.weekday().to_monday_zero_offset()).unwrap()];
    let start = opens.strftime("%H:%M").to_string();
    story.write_provision(Some(&format!(
        "[reboot]\nstrategy = \"windows\"\n[[reboot.windows]]\ndays = [\"{day}\"]\n\
         start = \"{start}\"\nlength = \"1h\"\ntime_zone = \"UTC\"\n"
    )));
    let closed_until = format!(
        "reboot window closed until {}",
        opens_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    );

    let (status, body) = story.server.api(
        "POST",
        "/api/v1/rollouts",
        Some(
            json!({"version": "2.0.0", "board": board, "channel": "stable",
                    "group": "default",
                    "policy": {"steps": [{"percent": 100}], "max_in_flight": 1,
                               "update_timeout": "1m"}}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    let rollout = body["id"].as_i64().unwrap();

    let (disk, _) = story.disk("disk.img", "raw");
    // Written to a disk larger than the image, as in the field (the first
    // boot grows STATE).
    let image_bytes = std::fs::metadata(&disk).unwrap().len();
    ok(
        "qemu-img",
        [
            OsStr::new("resize"),
            OsStr::new("-f"),
            OsStr::new("raw"),
            disk.as_os_str(),
            OsStr::new(&(2 * image_bytes).to_string()),
        ],
    );
    let booted_at = Instant::now();
    let mut vm = Vm::start(&story.vm_spec(&disk, None), &console_log("cancel"));
    vm.wait_for("moho-test: up version=1.0.0 slot=A init=systemd", BOOT);

    // 1.0.0 checks in, takes 2.0.0, writes slot B and stages it: the
    // window is closed, so it waits, and says why.
    let (staged_line, st) = wait_status(
        &vm,
        0,
        "2.0.0 staged, waiting for the window",
        // The stock image's install beside the story's VM (as CI runs
        // them) took longer than UPDATE: 0.9 done at 540 s.
        UPDATE * 2,
        |s| s["state"] == "updated-need-reboot",
    );
    assert_eq!(st["staged_version"], "2.0.0", "{st}");
    assert_eq!(st["reboot_blocked_by"], closed_until.as_str(), "{st}");
    let staged_after = booted_at.elapsed();
    let armed = slots_json(&disk, Some("A"));
    let (priority, tries, good) = slot_fields(&armed, "B");
    assert!(
        priority > slot_fields(&armed, "A").0 && tries == 1 && !good,
        "slot B armed: {armed}"
    );
    let node_id = {
        let fleet = story.nodes();
        assert_eq!(fleet.len(), 1, "{fleet:?}");
        fleet[0]["id"].as_str().unwrap().to_owned()
    };
    let node = || {
        story
            .server
            .api("GET", &format!("/api/v1/nodes/{node_id}"), None)
            .1
    };
    let events = || {
        let (status, body) = story.server.api(
            "GET",
            &format!("/api/v1/nodes/{node_id}/events?limit=200"),
            None,
        );
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    };
    let deadline = Instant::now() + BOOT;
    while node()["state"] != "staged" {
        assert!(
            Instant::now() < deadline,
            "the server never saw the node staged: {}",
            node()
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    // 70 s past the update timeout, counted from the offer (before the
    // node's download_started reached the server): the staged node is
    // still in flight, not failed; it waits for its own window.
    let download_started: Timestamp = events()
        .iter()
        .find(|e| e["kind"] == "download_started")
        .and_then(|e| e["received_at"].as_str()?.parse().ok())
        .expect("a download_started event");
    sleep_until(download_started + UPDATE_TIMEOUT + PAST_TIMEOUT);
    let stats = story.server.rollout_stats(rollout);
    assert_eq!(stats["failed"], 0, "{stats}");
    assert_eq!(stats["in_flight"], 1, "{stats}");
    let (_, r) = story
        .server
        .api("GET", &format!("/api/v1/rollouts/{rollout}"), None);
    assert_eq!(r["state"]["status"], "active", "{r}");
    let (_, st) = statuses(&vm, staged_line).pop().unwrap();
    assert_eq!(st["state"], "updated-need-reboot", "{st}");

    assert!(
        Timestamp::now() < opens_at,
        "the window opened before the abort: too slow a machine for WINDOW_AFTER"
    );
    // The operator aborts the rollout. The node's next check-in (at the
    // latest the one it makes before it would reboot, when the window
    // opens) answers "cancel": it clears slot B and is idle again, the
    // server hears of it, and nothing boots.
    let (status, body) = story.server.api(
        "POST",
        &format!("/api/v1/rollouts/{rollout}/actions"),
        Some(json!({"action": "abort"})),
    );
    assert_eq!(status, 200, "{body}");
    let aborted_at = vm.lines().len();
    let until_window =
        Duration::try_from(opens_at.duration_since(Timestamp::now())).unwrap_or_default();
    let (cancelled_line, st) =
        wait_status(&vm, aborted_at, "the cancel", until_window + BOOT, |s| {
            s["state"] != "updated-need-reboot"
        });
    assert_eq!(st["state"], "idle", "{st}");
    assert_eq!(st["staged_version"], "", "{st}");
    assert_eq!(st["booted_slot"], "A", "{st}");
    assert_eq!(st["booted_version"], "1.0.0", "{st}");
    let cancelled_after = booted_at.elapsed();
    let cancelled_clock = guest_clock(&vm, 0).unwrap_or_default();
    let slots = slots_json(&disk, Some("A"));
    assert_eq!(
        slot_fields(&slots, "B"),
        (0, 0, false),
        "cancel_armed: {slots}"
    );
    assert_eq!(slot_fields(&slots, "A"), (1, 0, true), "{slots}");
    let deadline = Instant::now() + BOOT;
    loop {
        let seen = events();
        if let Some(e) = seen.iter().find(|e| e["kind"] == "cancelled") {
            assert_eq!(e["version"], "2.0.0", "{e}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no cancelled event at the server: {seen:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let stats = story.server.rollout_stats(rollout);
    assert_eq!(
        (stats["in_flight"].clone(), stats["failed"].clone()),
        (json!(0), json!(0)),
        "{stats}"
    );

    // A minute past the window's opening by the guest's clock, and after a
    // check-in since it opened: nothing rebooted, nothing was downloaded
    // again, 2.0.0 was not offered again.
    sleep_until(opens_at + Duration::from_secs(60));
    let deadline = Instant::now() + BOOT;
    while guest_clock(&vm, cancelled_line).is_none_or(|c| c < opens_at.as_second() + 60) {
        assert!(
            Instant::now() < deadline,
            "the guest's clock never passed the window's start {opens_at}: {:?}",
            guest_clock(&vm, 0)
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let deadline = Instant::now() + BOOT;
    let idle_seen = loop {
        let n = node();
        let seen: Option<Timestamp> = n["last_seen"].as_str().and_then(|t| t.parse().ok());
        if let Some(t) = seen.filter(|t| *t >= opens_at && n["state"] == "idle") {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "no idle check-in since the window opened: {n}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    // One more check-in (the server asks for one a minute): still nothing
    // to install.
    let deadline = Instant::now() + BOOT;
    while node()["last_seen"].as_str().and_then(|t| t.parse().ok()) == Some(idle_seen) {
        assert!(
            Instant::now() < deadline,
            "no check-in after {idle_seen}: {}",
            node()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let now_lines = vm.lines().len();
    let (_, st) = wait_status(
        &vm,
        now_lines,
        "a status after the window opened",
        BOOT,
        |_| true,
    );
    assert_eq!(st["state"], "idle", "{st}");
    assert_eq!(st["booted_slot"], "A", "{st}");
    assert_eq!(st["booted_version"], "1.0.0", "{st}");
    assert_eq!(st["reboot_blocked_by"], "", "{st}");
    let lines = vm.lines();
    assert_eq!(
        selector_choices(&lines),
        ["A"],
        "one boot, from slot A (log {})",
        vm.log.display()
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("moho-test: up version="))
            .count(),
        1,
        "the system came up once (log {})",
        vm.log.display()
    );
    let after_cancel: Vec<_> = statuses(&vm, cancelled_line)
        .into_iter()
        .map(|(_, s)| s["state"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        after_cancel.iter().all(|s| s == "idle"),
        "the node tried again after the cancel: {after_cancel:?}"
    );
    let downloads = events()
        .iter()
        .filter(|e| e["kind"] == "download_started")
        .count();
    assert_eq!(downloads, 1, "2.0.0 was offered again: {:?}", events());
    let n = node();
    assert_eq!(n["version"], "1.0.0", "{n}");
    assert_eq!(n["slot"], "a", "{n}");
    assert_eq!(n["state"], "idle", "{n}");

    vm.power_cut();
    let slots = slots_json(&disk, None);
    assert_eq!(slot_fields(&slots, "B"), (0, 0, false), "{slots}");
    assert_eq!(slot_fields(&slots, "A"), (1, 0, true), "{slots}");
    println!(
        "vm_cancel: staged {staged_after:?} after boot, cancelled {cancelled_after:?} after boot \
         (guest clock {cancelled_clock}, window {opens_at}), window {WINDOW_AFTER:?} after \
         provisioning; {:?} in all (ended {})",
        started.elapsed(),
        Timestamp::now()
    );
}
