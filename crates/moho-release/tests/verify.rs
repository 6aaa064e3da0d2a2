//! The node-side verification against a good repository and against every
//! bad input of issue 3: each is refused with its own error.
#![allow(clippy::cast_possible_truncation, clippy::unwrap_used)] // test helpers: small values, panics are failures

mod common;

use std::collections::HashMap;

use common::*;
use moho_release::{
    MemorySource, NodeContext, TrustedState, VerifiedRepository, VerifyError, load_repository,
};
use tough::schema::RoleType;

const BOARD: &str = "amd64-generic";

fn load(fx: &Fixture, src: &MemorySource) -> Result<VerifiedRepository, VerifyError> {
    load_repository(src, &fx.trusted_root(), &TrustedState::default(), fx.now)
}

fn node(channel: &str, current: Option<&str>) -> NodeContext {
    NodeContext {
        board: BOARD.into(),
        channel: channel.into(),
        current_version: current.map(|v| v.parse().unwrap()),
    }
}

/// A repository with one release 1.1.0 on beta, and its image.
fn one_release() -> (Fixture, String, Vec<u8>) {
    let mut fx = Fixture::new();
    let img = image(3 * CHUNK as usize + 100, 7);
    let name = fx.add_release(BOARD, "1.1.0", &["beta"], &img);
    (fx, name, img)
}

#[test]
fn a_good_repository_yields_a_verified_release_and_image() {
    let (mut fx, name, img) = one_release();
    let src = fx.publish();
    let repo = load(&fx, &src).unwrap();

    let releases: Vec<_> = repo.releases().collect();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].custom().version, "1.1.0");
    assert_eq!(releases[0].custom().board, BOARD);
    assert_eq!(repo.root_version(), 1);
    assert_eq!(repo.trusted_state().targets_version(), 2);

    let release = repo
        .release_for(&name, &node("beta", Some("1.0.0")))
        .unwrap();
    assert_eq!(release.version().to_string(), "1.1.0");
    assert_eq!(release.image().length(), img.len() as u64);
    // Consistent snapshots: files live under <dir>/<sha256>.<basename> (TUF
    // specification §5.7.3); readers fall back to the legacy <sha256>.<name>.
    let sha = release.image().sha256();
    assert_eq!(
        release.image().path(),
        format!("{BOARD}/1.1.0/{sha}.root.img")
    );
    assert_eq!(
        release.image().paths(),
        vec![
            format!("{BOARD}/1.1.0/{sha}.root.img"),
            format!("{sha}.{name}")
        ]
    );

    let index_bytes = &fx.target_files[release.chunk_index().name()];
    let index = release.verify_chunk_index(index_bytes).unwrap();
    assert_eq!(index.index().chunk_count(), 4);
    for i in 0..4 {
        let r = index.chunk_range(i).unwrap();
        index
            .verify_chunk(i, &img[r.start as usize..r.end as usize])
            .unwrap();
    }
    index.verify_image(&img[..]).unwrap();
    // Metadata was fetched in TUF order, and nothing beyond.
    assert_eq!(
        src.asked(),
        [
            "2.root.json",
            "timestamp.json",
            "1.snapshot.json",
            "2.targets.json"
        ]
    );
}

#[test]
fn tampered_image_byte_is_caught_at_its_chunk() {
    let (mut fx, name, mut img) = one_release();
    let src = fx.publish();
    let repo = load(&fx, &src).unwrap();
    let release = repo.release_for(&name, &node("beta", None)).unwrap();
    let index = release
        .verify_chunk_index(&fx.target_files[release.chunk_index().name()])
        .unwrap();
    img[2 * CHUNK as usize + 5] ^= 1;
    let r = index.chunk_range(2).unwrap();
    let err = index
        .verify_chunk(2, &img[r.start as usize..r.end as usize])
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ChunkMismatch {
                index: 2,
                offset: 8192,
                ..
            }
        ),
        "{err}"
    );
    let err = index.verify_image(&img[..]).unwrap_err();
    assert!(
        matches!(err, VerifyError::ChunkMismatch { index: 2, .. }),
        "{err}"
    );
    // A short image is a length error, not a hash error.
    let err = index.verify_image(&img[..100]).unwrap_err();
    assert!(
        matches!(err, VerifyError::TargetLengthMismatch { .. }),
        "{err}"
    );
}

#[test]
fn tampered_chunk_index_is_refused() {
    let (mut fx, name, _) = one_release();
    let src = fx.publish();
    let repo = load(&fx, &src).unwrap();
    let release = repo.release_for(&name, &node("beta", None)).unwrap();
    let mut bytes = fx.target_files[release.chunk_index().name()].clone();
    let pos = bytes.len() - 10;
    bytes[pos] = if bytes[pos] == b'0' { b'1' } else { b'0' };
    let err = release.verify_chunk_index(&bytes).unwrap_err();
    assert!(
        matches!(&err, VerifyError::ChunkIndexAltered { name, .. } if name.ends_with("root.img.chunks")),
        "{err}"
    );
}

#[test]
fn a_signed_chunk_index_for_another_image_is_refused() {
    let mut fx = Fixture::new();
    let img = image(2 * CHUNK as usize, 1);
    let name = fx.add_release(BOARD, "1.1.0", &["beta"], &img);
    // The index target is replaced (and signed) with the index of other bytes.
    let other = moho_release::ChunkIndex::build(&image(2 * CHUNK as usize, 2)[..], CHUNK)
        .unwrap()
        .to_bytes();
    fx.add_target(
        &format!("{BOARD}/1.1.0/root.img.chunks"),
        &other,
        HashMap::new(),
    );
    let src = fx.publish();
    let repo = load(&fx, &src).unwrap();
    let release = repo.release_for(&name, &node("beta", None)).unwrap();
    let err = release.verify_chunk_index(&other).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ChunkIndexMismatch {
                field: "image sha-256",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn tampered_targets_json_fails_the_snapshot_hash() {
    let (mut fx, _, _) = one_release();
    let mut src = fx.publish();
    let file = "2.targets.json";
    let text = String::from_utf8(src.get(file).unwrap().to_vec()).unwrap();
    // Same length, other content: the hash gives it away.
    src.insert(file, text.replace("\"beta\"", "\"omeg\""));
    let err = load(&fx, &src).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::MetadataHashMismatch {
                referrer: "snapshot.json",
                ..
            }
        ),
        "{err}"
    );
    // Longer: the signed length does.
    src.insert(file, text.replace("\"beta\"", "\"stable\""));
    let err = load(&fx, &src).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::MetadataLengthMismatch {
                referrer: "snapshot.json",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn tampered_targets_json_resigned_by_a_compromised_server_has_a_bad_signature() {
    let (mut fx, _, _) = one_release();
    let good = fx.sign_targets();
    let forged = String::from_utf8(good)
        .unwrap()
        .replace("\"beta\"", "\"stable\"");
    let v = fx.targets.version.get();
    let (snapshot, timestamp) = fx.online_sign(forged.as_bytes(), v);
    let src = fx.source(forged.as_bytes(), &snapshot, &timestamp);
    let err = load(&fx, &src).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::BadSignature {
                role: RoleType::Targets,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn targets_signed_by_an_unknown_key_are_refused() {
    let (mut fx, _, _) = one_release();
    let intruder = new_key();
    fx.next_targets();
    let targets = signed_bytes(&fx.targets, &[&intruder]);
    let err = load_with_online_keys(&mut fx, &targets).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::UnknownKey {
                role: RoleType::Targets,
                ..
            }
        ),
        "{err}"
    );
}

/// Publishes `targets` with snapshot and timestamp honestly signed over it
/// (what a compromised server holding the online keys can do) and loads it.
fn load_with_online_keys(
    fx: &mut Fixture,
    targets: &[u8],
) -> Result<VerifiedRepository, VerifyError> {
    let v = fx.targets.version.get();
    let (snapshot, timestamp) = fx.online_sign(targets, v);
    let src = fx.source(targets, &snapshot, &timestamp);
    load(fx, &src)
}

fn two_of_two_targets() -> Fixture {
    let mut fx = Fixture::with_thresholds(1, 1, 2, 2);
    fx.add_release(BOARD, "1.1.0", &["beta"], &image(5000, 3));
    fx
}

#[test]
fn both_targets_keys_meet_a_threshold_of_two() {
    let mut fx = two_of_two_targets();
    let targets = fx.sign_targets();
    load_with_online_keys(&mut fx, &targets).unwrap();
}

#[test]
fn one_signature_short_of_the_threshold_is_refused() {
    let mut fx = two_of_two_targets();
    fx.next_targets();
    let targets = signed_bytes(&fx.targets, &[&fx.keys.targets[0]]);
    let err = load_with_online_keys(&mut fx, &targets).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ThresholdNotMet {
                role: RoleType::Targets,
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_duplicated_signature_does_not_count_twice() {
    let mut fx = two_of_two_targets();
    fx.next_targets();
    let k = &fx.keys.targets[0];
    let targets = signed_bytes(&fx.targets, &[k, k]);
    let err = load_with_online_keys(&mut fx, &targets).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::DuplicateSignature {
                role: RoleType::Targets,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn one_key_listed_under_two_key_ids_counts_once() {
    // A root that lists the same public key twice (the second copy with an
    // extra field, hence another key id) and asks for two targets signatures.
    let mut fx = two_of_two_targets();
    let k = &fx.keys.targets[0];
    let mut alias = tuf_key(k);
    if let tough::schema::key::Key::Ed25519 { _extra, .. } = &mut alias {
        _extra.insert("note".into(), "alias".into());
    }
    let alias_id = alias.key_id().unwrap();
    let real_id = keyid(k);
    let mut root = fx.root.clone();
    root.version = nz(2);
    root.keys.insert(alias_id.clone(), alias);
    root.roles.get_mut(&RoleType::Targets).unwrap().keyids =
        vec![real_id.clone(), alias_id.clone()];
    let root_bytes = signed_bytes(&root, &fx.keys.root.iter().collect::<Vec<_>>());
    fx.roots.insert(2, root_bytes);
    fx.root = root;
    fx.next_targets();
    // Two signature entries by one key, under its two key ids.
    let msg = canonical(&fx.targets);
    let sig = fx.keys.targets[0].sign(&msg).as_ref().to_vec();
    let signed = tough::schema::Signed {
        signed: &fx.targets,
        signatures: vec![
            tough::schema::Signature {
                keyid: real_id,
                sig: sig.clone().into(),
            },
            tough::schema::Signature {
                keyid: alias_id,
                sig: sig.into(),
            },
        ],
    };
    let targets = serde_json::to_vec_pretty(&signed).unwrap();
    let err = load_with_online_keys(&mut fx, &targets).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::DuplicateSignature {
                role: RoleType::Targets,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn expiry_is_judged_by_the_injected_now_for_every_role() {
    let (mut fx, _, _) = one_release();
    let src = fx.publish();
    let root = fx.trusted_root();
    let state = TrustedState::default();
    // Fine just before the timestamp expires...
    load_repository(
        &src,
        &root,
        &state,
        fx.now + DAY - std::time::Duration::from_secs(1),
    )
    .unwrap();
    // ...refused from then on, role by role as each expires.
    for (after, role) in [
        (DAY, RoleType::Timestamp),
        (7 * DAY, RoleType::Timestamp),
        (400 * DAY, RoleType::Root),
    ] {
        let err = load_repository(&src, &root, &state, fx.now + after).unwrap_err();
        assert!(
            matches!(&err, VerifyError::Expired { role: r, .. } if *r == role),
            "{err}"
        );
    }
}

#[test]
fn expired_snapshot_and_targets_are_refused_even_with_a_fresh_timestamp() {
    for role in [RoleType::Snapshot, RoleType::Targets] {
        let (mut fx, _, _) = one_release();
        match role {
            RoleType::Snapshot => fx.snapshot_expires = fx.now - DAY,
            _ => fx.targets_expires = fx.now - DAY,
        }
        let src = fx.publish();
        let err = load(&fx, &src).unwrap_err();
        assert!(
            matches!(&err, VerifyError::Expired { role: r, .. } if *r == role),
            "{err}"
        );
    }
}

#[test]
fn an_expired_timestamp_is_refused() {
    let (mut fx, _, _) = one_release();
    fx.timestamp_expires = fx.now - std::time::Duration::from_secs(60);
    let src = fx.publish();
    let err = load(&fx, &src).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Expired {
                role: RoleType::Timestamp,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("freeze attack"), "{err}");
}

/// Loads once (the node remembers the versions), then returns what a replay
/// needs: the fixture, the first publication's bytes, and the saved state.
struct Replay {
    fx: Fixture,
    targets_v2: Vec<u8>,
    snapshot_v1: Vec<u8>,
    timestamp_v1: Vec<u8>,
    state: TrustedState,
}

fn after_two_publications() -> Replay {
    let (mut fx, _, _) = one_release();
    let targets_v2 = fx.sign_targets();
    let (snapshot_v1, timestamp_v1) = fx.online_sign(&targets_v2, 2);
    fx.add_release(BOARD, "1.2.0", &["beta"], &image(5000, 9));
    let src = fx.publish();
    let repo = load(&fx, &src).unwrap();
    let state = repo.trusted_state();
    assert_eq!(
        (
            state.timestamp_version(),
            state.snapshot_version(),
            state.targets_version()
        ),
        (2, 2, 3)
    );
    Replay {
        fx,
        targets_v2,
        snapshot_v1,
        timestamp_v1,
        state,
    }
}

#[test]
fn a_replayed_older_timestamp_is_a_rollback() {
    let r = after_two_publications();
    let mut src = r.fx.source(&r.targets_v2, &r.snapshot_v1, &r.timestamp_v1);
    src.insert("1.snapshot.json", r.snapshot_v1.clone());
    src.insert("2.targets.json", r.targets_v2.clone());
    let err = load_repository(&src, &r.fx.trusted_root(), &r.state, r.fx.now).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Rollback {
                role: RoleType::Timestamp,
                trusted: 2,
                offered: 1
            }
        ),
        "{err}"
    );
}

#[test]
fn an_older_snapshot_under_a_new_timestamp_is_a_rollback() {
    let mut r = after_two_publications();
    // A compromised server signs a fresh timestamp pointing at snapshot 1.
    r.fx.timestamp_version += 1;
    let mut timestamp = tough::schema::Timestamp::new(
        "1.0.0".into(),
        nz(r.fx.timestamp_version),
        ts(r.fx.now + DAY),
    );
    timestamp
        .meta
        .insert("snapshot.json".into(), metafile(&r.snapshot_v1, 1));
    let timestamp = signed_bytes(&timestamp, &[&r.fx.keys.timestamp]);
    let mut src = MemorySource::new();
    src.insert("1.root.json", r.fx.trusted_root());
    src.insert("timestamp.json", timestamp);
    src.insert("1.snapshot.json", r.snapshot_v1.clone());
    src.insert("2.targets.json", r.targets_v2.clone());
    let err = load_repository(&src, &r.fx.trusted_root(), &r.state, r.fx.now).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Rollback {
                role: RoleType::Snapshot,
                trusted: 2,
                offered: 1
            }
        ),
        "{err}"
    );
}

#[test]
fn older_targets_under_a_new_snapshot_are_a_rollback() {
    let mut r = after_two_publications();
    let (snapshot, timestamp) = r.fx.online_sign(&r.targets_v2, 2);
    let mut src = MemorySource::new();
    src.insert("1.root.json", r.fx.trusted_root());
    src.insert("timestamp.json", timestamp);
    src.insert(format!("{}.snapshot.json", r.fx.snapshot_version), snapshot);
    src.insert("2.targets.json", r.targets_v2.clone());
    let err = load_repository(&src, &r.fx.trusted_root(), &r.state, r.fx.now).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Rollback {
                role: RoleType::Targets,
                trusted: 3,
                offered: 2
            }
        ),
        "{err}"
    );
}

#[test]
fn a_snapshot_whose_version_differs_from_the_timestamp_is_refused() {
    let (mut fx, _, _) = one_release();
    let targets = fx.sign_targets();
    let mut snapshot = tough::schema::Snapshot::new("1.0.0".into(), nz(5), ts(fx.now + DAY));
    snapshot
        .meta
        .insert("targets.json".into(), metafile(&targets, 2));
    let snapshot = signed_bytes(&snapshot, &[&fx.keys.snapshot]);
    let mut timestamp = tough::schema::Timestamp::new("1.0.0".into(), nz(1), ts(fx.now + DAY));
    timestamp
        .meta
        .insert("snapshot.json".into(), metafile(&snapshot, 4));
    let timestamp = signed_bytes(&timestamp, &[&fx.keys.timestamp]);
    let mut src = MemorySource::new();
    src.insert("1.root.json", fx.trusted_root());
    src.insert("timestamp.json", timestamp);
    src.insert("4.snapshot.json", snapshot);
    src.insert("2.targets.json", targets);
    let err = load(&fx, &src).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::VersionMismatch {
                referrer: "timestamp.json",
                expected: 4,
                found: 5,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn node_policy_board_channel_and_versions() {
    let (mut fx, name, _) = one_release();
    let min = fx.add_release(BOARD, "2.0.0", &["beta", "stable"], &image(5000, 4));
    fx.custom_mut(&min)
        .insert("min_version".into(), "1.1.0".into());
    let src = fx.publish();
    let repo = load(&fx, &src).unwrap();

    let other_board = NodeContext {
        board: "arm64-generic".into(),
        ..node("beta", Some("1.0.0"))
    };
    let err = repo.release_for(&name, &other_board).unwrap_err();
    assert!(matches!(err, VerifyError::WrongBoard { .. }), "{err}");

    let err = repo
        .release_for(&name, &node("stable", Some("1.0.0")))
        .unwrap_err();
    assert!(matches!(err, VerifyError::ChannelNotSigned { .. }), "{err}");
    assert!(err.to_string().contains("signed for: beta"), "{err}");

    for current in ["1.1.0", "1.2.0"] {
        let err = repo
            .release_for(&name, &node("beta", Some(current)))
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::Downgrade { .. }),
            "{current}: {err}"
        );
    }

    let err = repo
        .release_for(&min, &node("stable", Some("1.0.5")))
        .unwrap_err();
    assert!(matches!(err, VerifyError::BelowMinVersion { .. }), "{err}");
    repo.release_for(&min, &node("stable", Some("1.1.0")))
        .unwrap();

    let err = repo
        .release_for(
            &format!("{BOARD}/1.1.0/root.img.chunks"),
            &node("beta", None),
        )
        .unwrap_err();
    assert!(matches!(err, VerifyError::NotAnImage { .. }), "{err}");
    let err = repo
        .release_for(&format!("{BOARD}/9.9.9/root.img"), &node("beta", None))
        .unwrap_err();
    assert!(matches!(err, VerifyError::TargetNotFound { .. }), "{err}");
}

#[test]
fn malformed_json_is_refused() {
    let (mut fx, _, _) = one_release();
    let mut src = fx.publish();
    src.insert(
        "timestamp.json",
        &b"{\"signed\": {\"_type\": \"timestamp\""[..],
    );
    let err = load(&fx, &src).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Malformed { file, .. } if file == "timestamp.json"),
        "{err}"
    );
    // Valid JSON of the wrong role is malformed too.
    let snapshot = src.get("1.snapshot.json").unwrap().to_vec();
    src.insert("timestamp.json", snapshot);
    let err = load(&fx, &src).unwrap_err();
    assert!(matches!(err, VerifyError::Malformed { .. }), "{err}");
    let err = load_repository(&src, b"not json", &TrustedState::default(), fx.now).unwrap_err();
    assert!(
        matches!(&err, VerifyError::Malformed { file, .. } if file == "trusted root"),
        "{err}"
    );
}

#[test]
fn a_path_traversing_target_name_is_refused_even_when_signed() {
    for bad in [
        "amd64-generic/1.0.0/../../../etc/shadow",
        "/etc/shadow",
        "amd64-generic/1.0.0/a/../b",
    ] {
        let (mut fx, _, _) = one_release();
        fx.add_target(bad, b"x", HashMap::new());
        let src = fx.publish();
        let err = load(&fx, &src).unwrap_err();
        assert!(
            matches!(&err, VerifyError::UnsafeTargetName { name, .. } if name == bad),
            "{err}"
        );
    }
}

#[test]
fn a_node_holding_root_v1_follows_rotations_to_v3() {
    let (mut fx, name, _) = one_release();
    fx.rotate_root(RoleSet::generate(1, 1));
    fx.rotate_root(RoleSet::generate(1, 1));
    // Everything is now signed by v3's keys only.
    let src = fx.publish();
    let repo = load(&fx, &src).unwrap();
    assert_eq!(repo.root_version(), 3);
    assert_eq!(repo.root_json(), src.get("3.root.json").unwrap());
    repo.release_for(&name, &node("beta", None)).unwrap();
    assert_eq!(
        &src.asked()[..4],
        [
            "2.root.json",
            "3.root.json",
            "4.root.json",
            "timestamp.json"
        ]
    );
    // The rotated keys void the old rollback state (fast-forward recovery)
    // but the new versions are kept from here on.
    assert_eq!(repo.trusted_state().timestamp_version(), 1);
}

#[test]
fn a_root_not_signed_by_the_previous_root_keys_is_refused() {
    let (mut fx, _, _) = one_release();
    let next = RoleSet::generate(1, 1);
    let root = make_root(2, &next, 1, 1, fx.now + 365 * DAY);
    // Signed only by the new keys: no continuity with v1.
    fx.roots.insert(2, signed_bytes(&root, &[&next.root[0]]));
    fx.root = root;
    fx.keys = next;
    let src = fx.publish();
    let err = load(&fx, &src).unwrap_err();
    assert!(
        matches!(&err, VerifyError::UnknownKey { file, role: RoleType::Root, .. } if file == "2.root.json"),
        "{err}"
    );
}

#[test]
fn a_root_file_with_the_wrong_version_is_refused() {
    let (mut fx, _, _) = one_release();
    let root = make_root(3, &fx.keys, 1, 1, fx.now + 365 * DAY);
    fx.roots.insert(
        2,
        signed_bytes(&root, &fx.keys.root.iter().collect::<Vec<_>>()),
    );
    let src = fx.publish();
    let err = load(&fx, &src).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::RootVersionMismatch {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn an_oversized_timestamp_is_refused_before_parsing() {
    let (mut fx, _, _) = one_release();
    let mut src = fx.publish();
    src.insert("timestamp.json", vec![b' '; (1 << 20) + 1]);
    let err = load(&fx, &src).unwrap_err();
    assert!(matches!(err, VerifyError::TooLarge { .. }), "{err}");
}

#[test]
fn a_missing_timestamp_is_reported_as_such() {
    let (mut fx, _, _) = one_release();
    let mut src = fx.publish();
    src.remove("timestamp.json");
    let err = load(&fx, &src).unwrap_err();
    assert!(matches!(err, VerifyError::MissingMetadata { .. }), "{err}");
}

#[test]
fn release_metadata_that_does_not_match_its_name_is_refused() {
    let (mut fx, name, _) = one_release();
    fx.custom_mut(&name)
        .insert("board".into(), "arm64-generic".into());
    let src = fx.publish();
    let err = load(&fx, &src).unwrap_err();
    assert!(matches!(err, VerifyError::MalformedCustom { .. }), "{err}");
}

#[test]
fn every_bad_input_has_its_own_message() {
    // The Display strings the operator sees are distinct per attack.
    let msgs = [
        VerifyError::UnknownKey {
            file: "f".into(),
            role: RoleType::Targets,
            keyid: "k".into(),
        }
        .to_string(),
        VerifyError::BadSignature {
            file: "f".into(),
            role: RoleType::Targets,
            keyid: "k".into(),
        }
        .to_string(),
        VerifyError::DuplicateSignature {
            file: "f".into(),
            role: RoleType::Targets,
            keyid: "k".into(),
        }
        .to_string(),
        VerifyError::ThresholdNotMet {
            file: "f".into(),
            role: RoleType::Targets,
            valid: 1,
            threshold: 2,
        }
        .to_string(),
        VerifyError::Expired {
            role: RoleType::Timestamp,
            expires: "e".into(),
            now: "n".into(),
        }
        .to_string(),
        VerifyError::Rollback {
            role: RoleType::Snapshot,
            trusted: 2,
            offered: 1,
        }
        .to_string(),
    ];
    let unique: std::collections::BTreeSet<_> = msgs.iter().collect();
    assert_eq!(unique.len(), msgs.len());
}

#[test]
fn a_timestamp_announcing_an_endless_snapshot_is_refused_before_fetching_it() {
    let (mut fx, _, _) = one_release();
    let targets = fx.sign_targets();
    let (snapshot, _) = fx.online_sign(&targets, 2);
    let mut meta = metafile(&snapshot, fx.snapshot_version);
    meta.length = Some(u64::MAX);
    let mut timestamp = tough::schema::Timestamp::new("1.0.0".into(), nz(9), ts(fx.now + DAY));
    timestamp.meta.insert("snapshot.json".into(), meta);
    let timestamp = signed_bytes(&timestamp, &[&fx.keys.timestamp]);
    let src = fx.source(&targets, &snapshot, &timestamp);
    let err = load(&fx, &src).unwrap_err();
    assert!(
        matches!(&err, VerifyError::TooLarge { file, .. } if file == "1.snapshot.json"),
        "{err}"
    );
    assert!(!src.asked().contains(&"1.snapshot.json".to_owned()));
}

#[test]
fn a_downgrade_needs_the_signed_permission_of_a_rollback_release() {
    let mut fx = Fixture::new();
    let plain = fx.add_release(BOARD, "1.1.0", &["beta"], &image(CHUNK as usize + 5, 3));
    let rollback = fx.add_release_with(
        BOARD,
        "1.0.9",
        &["beta"],
        &image(CHUNK as usize + 9, 4),
        true,
    );
    let src = fx.publish();
    let repo = load(&fx, &src).unwrap();
    // A node on 1.2.0: the plain older release is a refused downgrade...
    let err = repo
        .release_for(&plain, &node("beta", Some("1.2.0")))
        .unwrap_err();
    assert!(matches!(err, VerifyError::Downgrade { .. }), "{err}");
    // ...the one signed as a rollback release may be installed.
    let ok = repo
        .release_for(&rollback, &node("beta", Some("1.2.0")))
        .unwrap();
    assert_eq!(ok.version().to_string(), "1.0.9");
    // The permission does not lift the other checks.
    let err = repo
        .release_for(&rollback, &node("stable", Some("1.2.0")))
        .unwrap_err();
    assert!(matches!(err, VerifyError::ChannelNotSigned { .. }), "{err}");
}
