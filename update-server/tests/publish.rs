//! Publishing through the admin API: a signed release uploaded file by file
//! is served only after the whole repository verified against the server's
//! trusted root; tampered, incomplete or foreign uploads are refused and the
//! served repository does not change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../crates/moho-release/tests/common/mod.rs"]
mod release_fixture;

use common::{TestNode, TestServer, start};
use moho_release::layout::{Layout, target_path};
use release_fixture::{Fixture, image};
use serde_json::json;

/// The files of a fixture publication: (repository path, bytes), targets
/// where the TUF specification puts them.
fn repo_files(f: &mut Fixture) -> Vec<(String, Vec<u8>)> {
    repo_files_in(f, Layout::Spec)
}

/// [`repo_files`] with the targets in `layout`.
fn repo_files_in(f: &mut Fixture, layout: Layout) -> Vec<(String, Vec<u8>)> {
    let src = f.publish();
    let mut out: Vec<(String, Vec<u8>)> = src
        .files()
        .map(|name| (format!("metadata/{name}"), src.get(name).unwrap().to_vec()))
        .collect();
    for (name, bytes) in &f.target_files {
        let digest = moho_release::Sha256Digest::of(bytes);
        let path = target_path(name, &digest, true, layout);
        out.push((format!("targets/{path}"), bytes.clone()));
    }
    out
}

/// `GET /repo/<path>`: status and body.
async fn served(s: &TestServer, path: &str) -> (u16, Vec<u8>) {
    let r = s
        .http
        .get(format!("{}/repo/{path}", s.base))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

async fn upload(s: &TestServer, files: &[(String, Vec<u8>)]) -> common::Answer {
    let up = s.admin("POST", "/uploads", None).await;
    assert_eq!(up.status, 201, "{:?}", up.body);
    let id = up.body["id"].as_str().unwrap().to_owned();
    for (path, bytes) in files {
        let r = s
            .http
            .put(format!("{}/api/v1/uploads/{id}/files/{path}", s.base))
            .bearer_auth(&s.admin)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    s.admin("POST", &format!("/uploads/{id}/commit"), None)
        .await
}

async fn server_for(f: &Fixture) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let root = f.trusted_root();
    let s = start("sqlite", &url, move |c| c.trusted_root = Some(root)).await;
    s.clock.set(release_fixture::ts(f.now));
    (s, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_upload_is_served_and_offered() {
    let mut f = Fixture::new();
    let img = image(20_000, 7);
    let name = f.add_release("amd64-generic", "1.1.0", &["stable"], &img);
    let (s, _dir) = server_for(&f).await;
    let files = repo_files(&mut f);

    let done = upload(&s, &files).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.body["releases"][0]["version"], "1.1.0");
    let releases = s.admin("GET", "/releases", None).await;
    assert_eq!(releases.body["items"][0]["target"], name.as_str());
    assert_eq!(releases.body["items"][0]["present"], true);

    let digest = moho_release::Sha256Digest::of(&img);
    let spec = target_path(&name, &digest, true, Layout::Spec);
    assert_eq!(spec, format!("amd64-generic/1.1.0/{digest}.root.img"));
    assert_eq!(
        served(&s, &format!("targets/{spec}")).await,
        (200, img.clone())
    );
    let ts = s
        .http
        .get(format!("{}/repo/metadata/timestamp.json", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ts.status().as_u16(), 200);

    s.rollout("1.1.0", json!({"steps": [{"percent": 100}]}))
        .await;
    let mut n = TestNode::new("node-1");
    let a = n.check_in(&s).await;
    assert_eq!(a.body["action"], "install", "{:?}", a.body);
    assert_eq!(a.body["target"], name.as_str());
    let audit = s.admin("GET", "/audit", None).await;
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "repository.publish" && e["actor"] == "alice")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_incomplete_and_foreign_uploads_are_refused_and_change_nothing() {
    let mut f = Fixture::new();
    f.add_release("amd64-generic", "1.1.0", &["stable"], &image(20_000, 7));
    let (s, _dir) = server_for(&f).await;
    let good = repo_files(&mut f);
    assert_eq!(upload(&s, &good).await.status, 200);
    let served_before = s.admin("GET", "/repository/files", None).await.body;

    // A second release whose image bytes were swapped after signing.
    f.next_targets();
    f.add_release("amd64-generic", "1.2.0", &["stable"], &image(20_000, 9));
    let mut files = repo_files(&mut f);
    let img = files
        .iter_mut()
        .find(|(p, _)| p.contains("/1.2.0/") && p.ends_with(".root.img"))
        .unwrap();
    img.1[100] ^= 0xff;
    let r = upload(&s, &files).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.body["error"]["code"], "verification_failed");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1.2.0"),
        "{:?}",
        r.body
    );

    // The same release with its image missing (a half upload).
    let files: Vec<_> = repo_files(&mut f)
        .into_iter()
        .filter(|(p, _)| !(p.contains("/1.2.0/") && p.ends_with(".root.img")))
        .collect();
    let r = upload(&s, &files).await;
    assert_eq!(r.status, 422, "{:?}", r.body);

    // A repository signed by other keys.
    let mut other = Fixture::new();
    other.add_release("amd64-generic", "9.9.9", &["stable"], &image(1000, 1));
    let r = upload(&s, &repo_files(&mut other)).await;
    assert_eq!(r.status, 422, "{:?}", r.body);

    assert_eq!(
        s.admin("GET", "/repository/files", None).await.body,
        served_before
    );
    let versions: Vec<String> = s.admin("GET", "/releases", None).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(versions, vec!["1.1.0"]);

    // Upload paths outside metadata/ and targets/ are refused.
    let id = s.admin("POST", "/uploads", None).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .http
        .put(format!(
            "{}/api/v1/uploads/{id}/files/keys/root.pem",
            s.base
        ))
        .bearer_auth(&s.admin)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_trusted_root_nothing_can_be_published() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").display());
    let s = start("sqlite", &url, |_| {}).await;
    let r = s.admin("POST", "/uploads", None).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("no_trusted_root"))
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--trusted-root")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_in_the_legacy_layout_is_accepted_and_served_at_both_paths() {
    let mut f = Fixture::new();
    let img = image(20_000, 3);
    let name = f.add_release("amd64-generic", "1.1.0", &["stable"], &img);
    let (s, _dir) = server_for(&f).await;
    let done = upload(&s, &repo_files_in(&mut f, Layout::Legacy)).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    let digest = moho_release::Sha256Digest::of(&img);
    for layout in [Layout::Legacy, Layout::Spec] {
        let path = target_path(&name, &digest, true, layout);
        assert_eq!(
            served(&s, &format!("targets/{path}")).await,
            (200, img.clone()),
            "{path}"
        );
    }
    // Only the TUF specification's shape is mapped: nothing else resolves.
    assert_eq!(
        served(&s, &format!("targets/amd64-generic/1.1.0/{digest}.other"))
            .await
            .0,
        404
    );
}

/// A release whose version makes target names nodes refuse: signed by the
/// release keys (the fixture signs anything), but the commit applies the
/// nodes' rules and the upload stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_nodes_would_refuse_are_refused_by_the_commit_and_change_nothing() {
    let mut f = Fixture::new();
    f.add_release("amd64-generic", "1.1.0", &["stable"], &image(20_000, 7));
    let (s, _dir) = server_for(&f).await;
    assert_eq!(upload(&s, &repo_files(&mut f)).await.status, 200);
    let files_before = s.admin("GET", "/repository/files", None).await.body;
    let releases_before = s.admin("GET", "/releases", None).await.body;
    let timestamp_before = served(&s, "metadata/timestamp.json").await;

    // 240 characters: the image's target name is 266 bytes, over the 255 nodes accept.
    let version = format!("9.0.0-{}", "a".repeat(240));
    f.add_release("amd64-generic", &version, &["stable"], &image(20_000, 8));
    let r = upload(&s, &repo_files(&mut f)).await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("length 269 is outside 1..=255"),
        "{message}"
    );

    // 300 characters: the version directory itself is longer than a file
    // name may be; the upload of that path is refused by name.
    let version = format!("9.0.0-{}", "a".repeat(300));
    f.add_release("amd64-generic", &version, &["stable"], &image(20_000, 9));
    let id = s.admin("POST", "/uploads", None).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (path, bytes) = repo_files(&mut f)
        .into_iter()
        .find(|(p, _)| p.contains(&version) && p.ends_with(".root.img"))
        .unwrap();
    let r = s
        .http
        .put(format!("{}/api/v1/uploads/{id}/files/{path}", s.base))
        .bearer_auth(&s.admin)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("306 bytes"), "{message}");

    assert_eq!(
        s.admin("GET", "/repository/files", None).await.body,
        files_before
    );
    assert_eq!(
        s.admin("GET", "/releases", None).await.body,
        releases_before
    );
    assert_eq!(
        served(&s, "metadata/timestamp.json").await,
        timestamp_before
    );
}
