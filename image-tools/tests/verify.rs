//! `image-tools verify` on a fresh repository, and on every bad input of
//! issue 3: each fails with exit code 4 and its own message, and the node
//! state file is left untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: panics are failures

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use moho_repo::sign::{self as repo, Expiries, Previous};
use moho_repo::{KeyRing, RepoDir};
use serde_json::Value;
use tough::schema::{RoleType, Timestamp};

const IMAGE: &str = "amd64-generic/1.0.0/root.img";
const CHUNKS: &str = "amd64-generic/1.0.0/root.img.chunks";
const DAY: Duration = Duration::from_secs(86_400);

fn verify(p: &Published, extra: &[&str]) -> Vec<String> {
    let mut args = p.verify_args();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The snapshot and timestamp keys only: what the publishing server holds.
fn online_keys(p: &Published) -> KeyRing {
    let dir = p.path("online");
    if !dir.exists() {
        fs::create_dir(&dir).unwrap();
        for f in ["snapshot-1.pem", "timestamp-1.pem"] {
            fs::copy(p.path("keys").join(f), dir.join(f)).unwrap();
        }
    }
    KeyRing::load(&dir).unwrap()
}

fn metadata(p: &Published, file: &str) -> PathBuf {
    p.repo().join("metadata").join(file)
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).unwrap();
    b.push(b'\n');
    b
}

/// Publishes `targets` (any bytes claiming `version`) under a correct
/// snapshot and timestamp signed with the online keys: what a compromised
/// server can do without the offline targets key.
fn republish(p: &Published, targets: &[u8], version: u64) {
    let loaded = RepoDir::new(&p.repo()).load().unwrap();
    fs::write(metadata(p, &format!("{version}.targets.json")), targets).unwrap();
    let (snapshot, timestamp) = repo::sign_online(
        Previous {
            snapshot: Some(&loaded.snapshot().signed),
            timestamp: Some(&loaded.timestamp().signed),
        },
        repo::metafile(targets, NonZeroU64::new(version).unwrap()),
        &loaded.root().signed,
        &online_keys(p),
        &Expiries::default(),
        std::time::SystemTime::now(),
    )
    .unwrap();
    fs::write(
        metadata(
            p,
            &format!("{}.snapshot.json", snapshot.signed().signed.version),
        ),
        snapshot.buffer(),
    )
    .unwrap();
    fs::write(metadata(p, "timestamp.json"), timestamp.buffer()).unwrap();
}

/// The next targets metadata, signed with the real targets keys.
fn signed_targets(p: &Published, edit: impl FnOnce(&mut tough::schema::Targets)) -> (Vec<u8>, u64) {
    let loaded = RepoDir::new(&p.repo()).load().unwrap();
    let mut targets = loaded.targets().signed.clone();
    targets.version = repo::next_version(targets.version);
    edit(&mut targets);
    let v = targets.version.get();
    let keys = KeyRing::load(&p.path("keys")).unwrap();
    (
        repo::sign(targets, &loaded.root().signed, &keys)
            .unwrap()
            .buffer()
            .clone(),
        v,
    )
}

/// A good verification that leaves a node state file; returns its path.
fn with_state(p: &Published) -> PathBuf {
    let state = p.path("node-state.json");
    let args = verify(p, &["--target", IMAGE, "--state", s(&state)]);
    ok(&refs(&args));
    assert!(state.exists() && p.path("node-state.json.root.json").exists());
    state
}

#[test]
fn a_fresh_repository_verifies_and_so_do_its_image_and_files() {
    let p = published(1);
    let out = ok(&refs(&verify(&p, &[])));
    assert!(out.contains("repository ok: root v1"), "{out}");
    let out = ok(&refs(&verify(
        &p,
        &[
            "--target",
            IMAGE,
            "--board",
            BOARD,
            "--channel",
            "beta",
            "--current-version",
            "0.9.0",
        ],
    )));
    assert!(out.contains("chunks of 65536 bytes verified"), "{out}");
    // The local build output is recognized as the signed image.
    let out = ok(&refs(&verify(
        &p,
        &["--target", IMAGE, "--file", s(&p.path("v1.img"))],
    )));
    assert!(
        out.contains("image amd64-generic/1.0.0/root.img ok"),
        "{out}"
    );
    let out = ok(&refs(&verify(&p, &["--file", s(&p.path("v1.img.chunks"))])));
    assert!(
        out.contains(&format!("is the signed target {CHUNKS}")),
        "{out}"
    );
    let out = ok(&refs(&verify(&p, &["--target", CHUNKS])));
    assert!(
        out.contains("target amd64-generic/1.0.0/root.img.chunks ok"),
        "{out}"
    );
}

/// Runs verify (with the node state), expects exit 4 and `phrase`, checks
/// the state file is untouched, restores the repository; returns the message.
fn refused(
    p: &Published,
    state: &Path,
    extra: &[&str],
    phrase: &str,
    attack: impl FnOnce(&Published),
) -> String {
    let before = snapshot(&p.repo());
    let state_before = snapshot(state.parent().unwrap())
        .into_iter()
        .filter(|(k, _)| k.to_string_lossy().contains("node-state"))
        .collect::<BTreeMap<_, _>>();
    attack(p);
    let mut args = verify(p, extra);
    args.extend(["--state".to_owned(), s(state).to_owned()]);
    let err = fails(&refs(&args), 4);
    assert!(err.contains(phrase), "expected {phrase:?} in: {err}");
    let state_after = snapshot(state.parent().unwrap())
        .into_iter()
        .filter(|(k, _)| k.to_string_lossy().contains("node-state"))
        .collect::<BTreeMap<_, _>>();
    assert_eq!(
        state_before, state_after,
        "a refused verification wrote the state"
    );
    // Restore the repository for the next case.
    let after = snapshot(&p.repo());
    for path in after.keys() {
        if !before.contains_key(path) {
            fs::remove_file(path).unwrap();
        }
    }
    for (path, bytes) in before {
        fs::write(path, bytes).unwrap();
    }
    ok(&refs(&verify(p, &[])));
    err.lines().next().unwrap_or_default().to_owned()
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = fs::read(path).unwrap();
    b[at] ^= 0x01;
    fs::write(path, b).unwrap();
}

#[test]
fn every_bad_input_is_refused_with_its_own_message() {
    let p = published(2);
    let state = with_state(&p);
    let target = ["--target", IMAGE];
    let mut messages = Vec::new();

    messages.push(refused(
        &p,
        &state,
        &target,
        "does not match the signed chunk index",
        |p| {
            flip_byte(&p.target_file(IMAGE), 70_000);
        },
    ));
    messages.push(refused(
        &p,
        &state,
        &target,
        "the chunk index was altered",
        |p| {
            let f = p.target_file(CHUNKS);
            let mut b = fs::read(&f).unwrap();
            let at = b.len() - 20;
            b[at] = if b[at] == b'a' { b'b' } else { b'a' };
            fs::write(f, b).unwrap();
        },
    ));
    messages.push(refused(&p, &state, &[], "snapshot.json lists", |p| {
        let f = metadata(p, "2.targets.json");
        let text = fs::read_to_string(&f)
            .unwrap()
            .replace("\"beta\"", "\"omeg\"");
        fs::write(f, text).unwrap();
    }));
    messages.push(refused(
        &p,
        &state,
        &[],
        "bad signature by targets key",
        |p| {
            let (bytes, v) = signed_targets(p, |_| {});
            let text = String::from_utf8(bytes)
                .unwrap()
                .replace("\"beta\"", "\"stable\"");
            republish(p, text.as_bytes(), v);
        },
    ));
    messages.push(refused(
        &p,
        &state,
        &[],
        "which is not a targets key",
        |p| {
            // Signed by an intruder's key (a root that names it, which nodes never see).
            let intruder = p.path("intruder");
            ok(&["keygen", "--out", s(&intruder)]);
            let intruder = KeyRing::load(&intruder).unwrap();
            let loaded = RepoDir::new(&p.repo()).load().unwrap();
            let mut fake_root = loaded.root().signed.clone();
            let key = intruder
                .keys()
                .iter()
                .find(|k| k.named_role() == Some(RoleType::Targets))
                .unwrap();
            fake_root.keys.insert(key.key_id(), key.public().clone());
            let role = fake_root.roles.get_mut(&RoleType::Targets).unwrap();
            role.keyids = vec![key.key_id()];
            role.threshold = NonZeroU64::MIN;
            let mut targets = loaded.targets().signed.clone();
            targets.version = repo::next_version(targets.version);
            let v = targets.version.get();
            let bytes = repo::sign(targets, &fake_root, &intruder)
                .unwrap()
                .buffer()
                .clone();
            republish(p, &bytes, v);
            fs::remove_dir_all(p.path("intruder")).unwrap();
        },
    ));
    messages.push(refused(
        &p,
        &state,
        &[],
        "1 valid targets signature(s), the threshold is 2",
        |p| {
            let (bytes, v) = signed_targets(p, |_| {});
            let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
            doc["signatures"].as_array_mut().unwrap().pop();
            republish(p, &pretty(&doc), v);
        },
    ));
    messages.push(refused(&p, &state, &[], "signed more than once", |p| {
        let (bytes, v) = signed_targets(p, |_| {});
        let mut doc: Value = serde_json::from_slice(&bytes).unwrap();
        let first = doc["signatures"][0].clone();
        doc["signatures"][1] = first;
        republish(p, &pretty(&doc), v);
    }));
    let in_two_days = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48)).to_string();
    messages.push(refused(
        &p,
        &state,
        &["--now", &in_two_days],
        "timestamp metadata expired",
        |_| {},
    ));
    messages.push(refused(
        &p,
        &state,
        &[],
        "timestamp metadata version 1 is older than the trusted version 2",
        |p| {
            // The whole older publication replayed: back to the timestamp of `repo init`.
            let loaded = RepoDir::new(&p.repo()).load().unwrap();
            let mut ts = Timestamp::new(
                "1.0.0".into(),
                NonZeroU64::MIN,
                repo::expires_at(std::time::SystemTime::now(), DAY),
            );
            let snap1 = fs::read(metadata(p, "1.snapshot.json")).unwrap();
            ts.meta.insert(
                "snapshot.json".into(),
                repo::metafile(&snap1, NonZeroU64::MIN),
            );
            let ts = repo::sign(ts, &loaded.root().signed, &online_keys(p)).unwrap();
            fs::write(metadata(p, "timestamp.json"), ts.buffer()).unwrap();
        },
    ));
    messages.push(refused(
        &p,
        &state,
        &[],
        "snapshot metadata version 1 is older than the trusted version 2",
        |p| {
            // A newer timestamp pointing at the older snapshot.
            let loaded = RepoDir::new(&p.repo()).load().unwrap();
            let version = repo::next_version(loaded.timestamp().signed.version);
            let mut ts = Timestamp::new(
                "1.0.0".into(),
                version,
                repo::expires_at(std::time::SystemTime::now(), DAY),
            );
            let snap1 = fs::read(metadata(p, "1.snapshot.json")).unwrap();
            ts.meta.insert(
                "snapshot.json".into(),
                repo::metafile(&snap1, NonZeroU64::MIN),
            );
            let ts = repo::sign(ts, &loaded.root().signed, &online_keys(p)).unwrap();
            fs::write(metadata(p, "timestamp.json"), ts.buffer()).unwrap();
        },
    ));
    messages.push(refused(
        &p,
        &state,
        &[],
        "targets metadata version 1 is older than the trusted version 2",
        |p| {
            // A newer snapshot pointing at the older (empty) targets.
            let old = fs::read(metadata(p, "1.targets.json")).unwrap();
            republish(p, &old, 1);
        },
    ));
    messages.push(refused(
        &p,
        &state,
        &[
            "--target",
            IMAGE,
            "--board",
            "arm64-generic",
            "--channel",
            "beta",
        ],
        "built for board amd64-generic, this node is arm64-generic",
        |_| {},
    ));
    messages.push(refused(
        &p,
        &state,
        &["--target", IMAGE, "--board", BOARD, "--channel", "stable"],
        "not signed for channel stable",
        |_| {},
    ));
    messages.push(refused(
        &p,
        &state,
        &[],
        "timestamp.json: malformed metadata",
        |p| {
            fs::write(metadata(p, "timestamp.json"), "{\"signed\": [").unwrap();
        },
    ));
    messages.push(refused(
        &p,
        &state,
        &[],
        "would traverse directories",
        |p| {
            let (bytes, v) = signed_targets(p, |t| {
                let entry = t.targets.values().next().unwrap().clone();
                t.targets.insert(
                    tough::TargetName::new("amd64-generic/1.0.0/../../../../etc/shadow").unwrap(),
                    entry,
                );
            });
            republish(p, &bytes, v);
        },
    ));

    let unique: std::collections::BTreeSet<_> = messages.iter().collect();
    assert_eq!(
        unique.len(),
        messages.len(),
        "messages are not distinct: {messages:#?}"
    );
}

#[test]
fn a_node_state_rejects_replay_after_a_newer_publication() {
    let p = published(1);
    let old_timestamp = fs::read(metadata(&p, "timestamp.json")).unwrap();
    let old_snapshot = fs::read(metadata(&p, "2.snapshot.json")).unwrap();
    let state = p.path("node-state.json");
    ok(&[
        "repo",
        "promote",
        "--repo",
        s(&p.repo()),
        "--keys",
        s(&p.path("keys")),
        "--version",
        "1.0.0",
        "--channel",
        "stable",
    ]);
    ok(&refs(&verify(&p, &["--state", s(&state)])));
    let saved = fs::read(&state).unwrap();
    // A mirror that serves the previous publication again.
    fs::write(metadata(&p, "timestamp.json"), &old_timestamp).unwrap();
    assert_eq!(
        fs::read(metadata(&p, "2.snapshot.json")).unwrap(),
        old_snapshot
    );
    let err = fails(&refs(&verify(&p, &["--state", s(&state)])), 4);
    assert!(err.contains("rollback attack"), "{err}");
    assert_eq!(fs::read(&state).unwrap(), saved);
    // Without the state (a node's first start) the old publication is still
    // consistent and signed: rollback protection is exactly the state.
    ok(&refs(&verify(&p, &[])));
}

#[test]
fn expired_metadata_is_refused_by_the_injected_clock_only() {
    let p = published(1);
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(12)).to_string();
    ok(&refs(&verify(&p, &["--now", &soon])));
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 400)).to_string();
    let err = fails(&refs(&verify(&p, &["--now", &later])), 4);
    assert!(err.contains("root metadata expired"), "{err}");
    // `repo refresh` with only the online keys renews the timestamp.
    ok(&[
        "repo",
        "refresh",
        "--repo",
        s(&p.repo()),
        "--keys",
        s(&online_keys_dir(&p)),
        "--timestamp-expires",
        "3d",
    ]);
    let in_two_days = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48)).to_string();
    ok(&refs(&verify(&p, &["--now", &in_two_days])));
}

fn online_keys_dir(p: &Published) -> PathBuf {
    let _ = online_keys(p);
    p.path("online")
}

/// A minimal static HTTP/1.1 file server on loopback for the repository.
fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_owned();
            let file = dir.join(&path);
            let response = match fs::read(&file) {
                Ok(body) if !path.contains("..") => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend(body);
                    r
                }
                _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    format!("http://{addr}/")
}

#[test]
fn verify_reads_a_repository_over_http() {
    let p = published(1);
    let url = serve(p.repo());
    let out = ok(&[
        "verify",
        "--repo",
        &url,
        "--root",
        s(&p.root()),
        "--target",
        IMAGE,
    ]);
    assert!(out.contains("chunks of 65536 bytes verified"), "{out}");
    flip_byte(&p.target_file(IMAGE), 100);
    let err = fails(
        &[
            "verify",
            "--repo",
            &url,
            "--root",
            s(&p.root()),
            "--target",
            IMAGE,
        ],
        4,
    );
    assert!(
        err.contains("does not match the signed chunk index"),
        "{err}"
    );
}

/// Without `--target`, `verify` checks every target's bytes as a mirror
/// audit would (from a directory and over HTTP) and names each corrupt or
/// missing one; `--metadata-only` checks the metadata alone.
#[test]
fn verify_without_a_target_checks_every_target_and_names_the_corrupt_ones() {
    let p = published(1);
    build_image(&p, "1.1.0", "v2.img");
    add_image(&p, "v2.img", "beta");
    let url = serve(p.repo());
    let over_http = |extra: &[&str]| {
        let mut a = vec![
            "verify".to_owned(),
            "--repo".to_owned(),
            url.clone(),
            "--root".to_owned(),
            s(&p.root()).to_owned(),
        ];
        a.extend(extra.iter().map(|e| (*e).to_owned()));
        a
    };
    for args in [verify(&p, &[]), over_http(&[])] {
        let out = ok(&refs(&args));
        assert!(
            out.contains("image amd64-generic/1.0.0/root.img ok")
                && out.contains("image amd64-generic/1.1.0/root.img ok")
                && out.contains("every target ok: 2 target(s)"),
            "{out}"
        );
    }

    // One flipped byte in the middle of the 1.1.0 image.
    flip_byte(&p.target_file("amd64-generic/1.1.0/root.img"), 70_000);
    for args in [verify(&p, &[]), over_http(&[])] {
        let err = fails(&refs(&args), 4);
        assert!(
            err.contains("1 of 2 target(s) failed: amd64-generic/1.1.0/root.img:")
                && err.contains("does not match the signed chunk index")
                && !err.contains("1.0.0/root.img:"),
            "{err}"
        );
    }
    for args in [
        verify(&p, &["--metadata-only"]),
        over_http(&["--metadata-only"]),
    ] {
        let out = ok(&refs(&args));
        assert!(
            out.contains("repository ok") && !out.contains("every target"),
            "{out}"
        );
    }

    // A chunk index that is missing altogether is named too.
    fs::remove_file(p.target_file(CHUNKS)).unwrap();
    let err = fails(&refs(&verify(&p, &[])), 4);
    assert!(
        err.contains("2 of 2 target(s) failed: amd64-generic/1.0.0/root.img:")
            && err.contains("target amd64-generic/1.0.0/root.img.chunks: no file at"),
        "{err}"
    );
    let err = fails(
        &refs(&verify(&p, &["--metadata-only", "--target", IMAGE])),
        2,
    );
    assert!(err.contains("cannot be used with"), "{err}");
}
