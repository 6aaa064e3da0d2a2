//! What a strict TUF client does with the metadata it already trusts
//! (specification §5.4.3–§5.6): a `timestamp.json` of the trusted version
//! changes nothing — it is discarded, the trusted metadata kept, nothing
//! more fetched — and a snapshot or targets file that is still the one
//! listed is re-used instead of downloaded. A kept file that no longer
//! verifies (a damaged disk) is fetched instead, and keeping files never
//! weakens a check: a rollback is still a rollback.
#![allow(clippy::unwrap_used)] // test helpers: panics are failures

mod common;

use common::*;
use moho_release::{
    MemorySource, TrustedMetadata, TrustedState, VerifiedRepository, VerifyError, load_repository,
    load_repository_with,
};
use tough::schema::{RoleType, Timestamp};

const BOARD: &str = "amd64-generic";

/// `n` chunks of the fixture's chunk size, in bytes.
fn chunks(n: usize) -> usize {
    n * usize::try_from(CHUNK).unwrap()
}

/// A published repository, loaded once by a fresh node.
fn first_load() -> (Fixture, MemorySource, VerifiedRepository) {
    let mut fx = Fixture::new();
    fx.add_release(BOARD, "1.1.0", &["beta"], &image(chunks(3), 7));
    let src = fx.publish();
    let repo = load_repository(&src, &fx.trusted_root(), &TrustedState::default(), fx.now).unwrap();
    (fx, src, repo)
}

fn reload(
    fx: &Fixture,
    src: &MemorySource,
    last: &VerifiedRepository,
    metadata: &TrustedMetadata,
) -> Result<VerifiedRepository, VerifyError> {
    load_repository_with(
        src,
        &fx.trusted_root(),
        &last.trusted_state(),
        metadata,
        fx.now,
    )
}

/// A timestamp of `version` over the fixture's current snapshot, expiring at `expires`.
fn timestamp(
    fx: &Fixture,
    src: &MemorySource,
    version: u64,
    expires: std::time::SystemTime,
) -> Vec<u8> {
    let snapshot_file = format!("{}.snapshot.json", fx.snapshot_version);
    let snapshot = src.get(&snapshot_file).unwrap();
    let mut t = Timestamp::new("1.0.0".into(), nz(version), ts(expires));
    t.meta.insert(
        "snapshot.json".into(),
        metafile(snapshot, fx.snapshot_version),
    );
    signed_bytes(&t, &[&fx.keys.timestamp])
}

#[test]
fn the_accepted_files_are_handed_back_byte_for_byte() {
    let (fx, src, repo) = first_load();
    let m = repo.trusted_metadata();
    assert_eq!(m.timestamp.as_deref(), src.get("timestamp.json"));
    assert_eq!(m.snapshot.as_deref(), src.get("1.snapshot.json"));
    assert_eq!(m.targets.as_deref(), src.get("2.targets.json"));
    assert_eq!(fx.timestamp_version, 1);
}

#[test]
fn a_timestamp_of_the_trusted_version_is_discarded_and_nothing_else_is_fetched() {
    let (fx, mut src, first) = first_load();
    // The same version re-signed with another expiry (a server that forgot
    // to count, or one replaying a variant): same version, other bytes.
    let other = timestamp(&fx, &src, fx.timestamp_version, fx.now + 3 * DAY);
    assert_ne!(Some(other.as_slice()), src.get("timestamp.json"));
    src.insert("timestamp.json", other);
    let asked_before = src.asked().len();

    let again = reload(&fx, &src, &first, first.trusted_metadata()).unwrap();
    assert_eq!(
        &src.asked()[asked_before..],
        ["2.root.json", "timestamp.json"]
    );
    assert_eq!(
        again.expiry(),
        first.expiry(),
        "the new timestamp was believed"
    );
    assert_eq!(again.trusted_metadata(), first.trusted_metadata());
    assert_eq!(again.trusted_state(), first.trusted_state());

    // Without the kept files (a node that persisted only the versions) the
    // same answer is loaded as before: fetched and checked.
    let fetched = reload(&fx, &src, &first, &TrustedMetadata::default()).unwrap();
    assert_ne!(fetched.expiry().timestamp, first.expiry().timestamp);
}

#[test]
fn a_new_timestamp_over_the_same_snapshot_fetches_only_the_timestamp() {
    let (mut fx, mut src, first) = first_load();
    fx.timestamp_version += 1;
    src.insert(
        "timestamp.json",
        timestamp(&fx, &src, fx.timestamp_version, fx.now + DAY),
    );
    let asked_before = src.asked().len();
    let again = reload(&fx, &src, &first, first.trusted_metadata()).unwrap();
    assert_eq!(
        &src.asked()[asked_before..],
        ["2.root.json", "timestamp.json"]
    );
    assert_eq!(again.trusted_state().timestamp_version(), 2);
    assert_eq!(
        again.trusted_metadata().snapshot,
        first.trusted_metadata().snapshot
    );
}

#[test]
fn a_new_publication_fetches_what_changed() {
    let (mut fx, _, first) = first_load();
    fx.add_release(BOARD, "1.2.0", &["beta"], &image(chunks(2), 9));
    let src = fx.publish();
    let again = reload(&fx, &src, &first, first.trusted_metadata()).unwrap();
    assert_eq!(
        src.asked(),
        [
            "2.root.json",
            "timestamp.json",
            "2.snapshot.json",
            "3.targets.json"
        ]
    );
    assert_eq!(again.releases().count(), 2);
}

#[test]
fn a_kept_file_that_no_longer_verifies_is_fetched_instead() {
    let (fx, src, first) = first_load();
    let mut damaged = first.trusted_metadata().clone();
    for file in [&mut damaged.snapshot, &mut damaged.targets] {
        let bytes = file.as_mut().unwrap();
        let i = bytes.len() / 2;
        bytes[i] ^= 0x20;
    }
    damaged.timestamp.as_mut().unwrap()[10] ^= 0x20;
    let asked_before = src.asked().len();
    let again = reload(&fx, &src, &first, &damaged).unwrap();
    assert_eq!(
        &src.asked()[asked_before..],
        [
            "2.root.json",
            "timestamp.json",
            "1.snapshot.json",
            "2.targets.json"
        ]
    );
    assert_eq!(again.trusted_metadata(), first.trusted_metadata());
}

#[test]
fn kept_files_never_excuse_a_rollback_or_an_expiry() {
    let (mut fx, old_src, first) = first_load();
    let old = first.trusted_metadata().clone();
    fx.add_release(BOARD, "1.2.0", &["beta"], &image(chunks(2), 9));
    let src = fx.publish();
    let second = reload(&fx, &src, &first, first.trusted_metadata()).unwrap();
    // A replay of the first publication, with the first files still kept.
    let err = reload(&fx, &old_src, &second, &old).unwrap_err();
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
    // A trusted timestamp that has expired is not revived by its re-use.
    let err = load_repository_with(
        &src,
        &fx.trusted_root(),
        &second.trusted_state(),
        second.trusted_metadata(),
        fx.now + 2 * DAY,
    )
    .unwrap_err();
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
}
