//! `image-tools publish` against the real `update-server`: a repository
//! made by `image-tools` is uploaded and served; publishing it again sends
//! only the metadata; a tampered repository is refused with the server's
//! reason; a viewer token and a directory that is no repository are refused.

use std::ffi::OsStr;
use std::path::Path;

use moho_e2e::fleet::{ReleaseRepo, payload};
use moho_e2e::local_server::LocalServer;
use moho_e2e::{bin, run};

fn publish(server: &LocalServer, token: &str, repo: &Path) -> std::process::Output {
    run(
        bin("image-tools"),
        [
            OsStr::new("publish"),
            OsStr::new("--server"),
            OsStr::new(&server.base()),
            OsStr::new("--token"),
            OsStr::new(token),
            OsStr::new("--repo"),
            repo.as_os_str(),
        ],
    )
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "publish failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn publish_uploads_a_repository_directory_and_skips_what_the_server_has() {
    let tmp = tempfile::tempdir().unwrap();
    let release = ReleaseRepo::new(&tmp.path().join("release"), "amd64-generic");
    let image = release.build("1.1.0", &payload(50_000, 3));
    release.add(&image, &["beta", "stable"]);
    let server = LocalServer::start(
        &tmp.path().join("server"),
        &tmp.path().join("served"),
        &release.root(),
    );

    let first = stdout(&publish(&server, &server.admin_token, &release.repo));
    assert!(
        first.contains("0 already on the server")
            && first.contains("amd64-generic/1.1.0 [beta, stable]"),
        "{first}"
    );
    let again = stdout(&publish(&server, &server.admin_token, &release.repo));
    assert!(
        again.contains("2 already on the server"),
        "image and chunk index are already served: {again}"
    );

    // Tamper with the image after signing: the server refuses and serves what it had.
    let img = release.target_file("root.img");
    let mut bytes = std::fs::read(&img).unwrap();
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&img, &bytes).unwrap();
    let refused = publish(&server, &server.admin_token, &release.repo);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("422") && err.contains("verification_failed"),
        "{err}"
    );

    let viewer = publish(&server, &server.viewer_token, &release.repo);
    assert!(
        String::from_utf8_lossy(&viewer.stderr).contains("forbidden"),
        "{}",
        String::from_utf8_lossy(&viewer.stderr)
    );
    let nothing = publish(&server, &server.admin_token, tmp.path());
    assert!(
        String::from_utf8_lossy(&nothing.stderr).contains("is not a TUF repository"),
        "{}",
        String::from_utf8_lossy(&nothing.stderr)
    );
}
