//! `image-tools publish` against a running server: a signed repository
//! directory is uploaded and served; publishing it again sends only the
//! metadata; a tampered repository is refused with the server's reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../crates/moho-release/tests/common/mod.rs"]
mod release_fixture;

use std::path::Path;

use common::start;
use image_tools::publish::{PublishError, publish};
use release_fixture::{Fixture, image};

/// Writes a fixture publication as a repository directory.
fn write_repo(f: &mut Fixture, dir: &Path) {
    let src = f.publish();
    std::fs::create_dir_all(dir.join("metadata")).unwrap();
    for name in src.files() {
        std::fs::write(dir.join("metadata").join(name), src.get(name).unwrap()).unwrap();
    }
    for (name, bytes) in &f.target_files {
        let path = dir
            .join("targets")
            .join(format!("{}.{name}", moho_release::Sha256Digest::of(bytes)));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_uploads_a_repository_directory_and_skips_what_the_server_has() {
    let mut f = Fixture::new();
    f.add_release(
        "amd64-generic",
        "1.1.0",
        &["beta", "stable"],
        &image(50_000, 3),
    );
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    write_repo(&mut f, &repo);
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let root = f.trusted_root();
    let s = start("sqlite", &url, move |c| c.trusted_root = Some(root)).await;
    s.clock.set(release_fixture::ts(f.now));

    let report = publish(&s.base, &s.admin, &repo).await.unwrap();
    assert_eq!(
        report.releases,
        vec!["amd64-generic/1.1.0 [beta, stable]".to_owned()]
    );
    assert_eq!(report.skipped, 0);
    assert!(report.bytes > 50_000);

    let again = publish(&s.base, &s.admin, &repo).await.unwrap();
    assert_eq!(
        again.skipped, 2,
        "image and chunk index are already served: {again}"
    );
    assert!(again.bytes < 50_000);

    // Tamper with the image after signing.
    let img = std::fs::read_dir(repo.join("targets"))
        .unwrap()
        .map(|e| e.unwrap().path().join("1.1.0/root.img"))
        .find(|p| p.exists())
        .unwrap();
    let mut bytes = std::fs::read(&img).unwrap();
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&img, &bytes).unwrap();
    match publish(&s.base, &s.admin, &repo).await {
        Err(PublishError::Refused { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (422, "verification_failed"))
        }
        other => panic!("tampered repository was not refused: {other:?}"),
    }

    let viewer = publish(&s.base, &s.viewer, &repo).await.unwrap_err();
    assert!(viewer.to_string().contains("forbidden"), "{viewer}");
    let nothing = publish(&s.base, &s.admin, dir.path()).await.unwrap_err();
    assert!(matches!(nothing, PublishError::NotARepository(_)));
}
