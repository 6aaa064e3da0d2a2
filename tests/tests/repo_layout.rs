//! The repository's file layout end to end (issue 17): a repository made by
//! `image-tools` is read by an independent TUF implementation (python-tuf's
//! `ngclient`, from PyPI) over the update server's repository routes and
//! from a plain directory served by nginx — every target downloaded and
//! verified. A repository in the legacy layout (what image-tools wrote
//! before, `HASH.board/version/file`) keeps working: the server answers
//! conforming clients from it, our agent installs from it, and after `repo
//! migrate` a plain web server serves it to every client too. A node that
//! checks again with nothing new published fetches only the timestamp.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../image-tools/tests/common/legacy.rs"]
mod legacy;

use std::ffi::OsStr;
use std::path::Path;

use moho_e2e::fleet::{Node, NodeSpec, ReleaseRepo, payload};
use moho_e2e::https_server::HttpsServer;
use moho_e2e::local_server::LocalServer;
use moho_e2e::python_tuf::{Fetched, fetch_all};
use moho_e2e::static_server::StaticServer;
use moho_e2e::{bin, ok, slot_fields};
use moho_release::Sha256Digest;

const MIB: usize = 1024 * 1024;
const BOARD: &str = "amd64-test";

/// What a client must get for each published version: the image and its
/// chunk index, byte for byte as `image-tools build` made them.
fn expected(repo: &ReleaseRepo, versions: &[&str]) -> Vec<Fetched> {
    let mut out = Vec::new();
    for v in versions {
        let image = repo.dir.join(format!("{BOARD}-{v}.img"));
        let mut chunks = image.clone().into_os_string();
        chunks.push(".chunks");
        for (file, path) in [
            ("root.img", image.clone()),
            ("root.img.chunks", chunks.into()),
        ] {
            let bytes = std::fs::read(&path).unwrap();
            out.push(Fetched {
                name: format!("{BOARD}/{v}/{file}"),
                length: bytes.len() as u64,
                sha256: Sha256Digest::of(&bytes).to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn migrate(repo: &ReleaseRepo, extra: &[&str]) -> String {
    let mut args = vec![
        OsStr::new("repo"),
        OsStr::new("migrate"),
        OsStr::new("--repo"),
        repo.repo.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    ok(bin("image-tools"), args)
}

/// python-tuf against `base` (`.../metadata/` and `.../targets/` below it).
fn python_tuf(repo: &ReleaseRepo, base: &str, work: &Path) -> Result<Vec<Fetched>, String> {
    fetch_all(
        &repo.root(),
        &format!("{base}metadata/"),
        &format!("{base}targets/"),
        work,
    )
}

#[test]
fn an_independent_tuf_client_downloads_every_target_from_the_server_and_from_nginx() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = ReleaseRepo::new(tmp.path(), BOARD);
    for (version, seed) in [("1.0.0", 1), ("1.1.0", 2)] {
        let image = repo.build(version, &payload(MIB, seed));
        repo.add(&image, &["stable"]);
    }
    let want = expected(&repo, &["1.0.0", "1.1.0"]);
    let server = LocalServer::start(&tmp.path().join("server"), &repo.repo, &repo.root());
    let nginx = StaticServer::start(&repo.repo, &tmp.path().join("nginx"));
    let server_base = format!("{}repo/", server.base());
    let work = tmp.path().join("client");

    assert_eq!(python_tuf(&repo, &server_base, &work), Ok(want.clone()));
    assert_eq!(python_tuf(&repo, &nginx.base(), &work), Ok(want.clone()));

    // The same repository as older image-tools wrote it: the server answers
    // the specification's paths from the legacy files; a plain web server
    // has nothing there (404) until the repository is migrated.
    legacy::to_legacy_layout(&repo.repo);
    assert_eq!(python_tuf(&repo, &server_base, &work), Ok(want.clone()));
    let err = python_tuf(&repo, &nginx.base(), &work).unwrap_err();
    assert!(err.contains("404"), "{err}");
    let out = migrate(&repo, &[]);
    assert!(out.contains("4 target(s)"), "{out}");
    assert_eq!(python_tuf(&repo, &nginx.base(), &work), Ok(want.clone()));
    migrate(&repo, &["--drop-legacy"]);
    assert_eq!(python_tuf(&repo, &nginx.base(), &work), Ok(want.clone()));
    assert_eq!(python_tuf(&repo, &server_base, &work), Ok(want));
}

/// A node of `repo` booted from `booted` at `version`, fetching over `server`.
fn node(repo: &ReleaseRepo, server: &HttpsServer, name: &str, booted: &Path) -> Node {
    Node::new(
        &repo.dir.join(name),
        server,
        repo,
        &NodeSpec {
            booted_image: booted,
            booted_version: "1.0.0",
            channel: "stable",
            slot_size: "16M",
            disk_size: "128M",
            on_loop_device: false,
        },
    )
}

/// Installs on `n` and checks that `version` is armed in slot B.
fn installs(n: &Node, version: &str) {
    let out = n.install(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "install failed: {err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"], "installed", "{json}");
    assert_eq!(json["version"], version, "{json}");
    assert_eq!(slot_fields(&n.slots(), "B"), (2, 1, false));
}

#[test]
fn our_agent_installs_from_an_old_layout_repository_before_and_after_its_migration() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = ReleaseRepo::new(tmp.path(), BOARD);
    let v1 = repo.build("1.0.0", &payload(MIB, 1));
    repo.add(&v1, &["stable"]);
    let v2 = repo.build("1.1.0", &payload(3 * MIB, 2));
    repo.add(&v2, &["stable"]);
    legacy::to_legacy_layout(&repo.repo);
    let server = HttpsServer::start(&repo.repo);

    // Before the migration: the agent finds the targets in the legacy layout.
    installs(&node(&repo, &server, "before", &v1), "1.1.0");

    // Migrated with the legacy layout kept: a release published now is in
    // both layouts (so agents that read only the old one still get it).
    migrate(&repo, &[]);
    let v3 = repo.build("1.2.0", &payload(3 * MIB, 3));
    repo.add(&v3, &["stable"]);
    let image_sha = Sha256Digest::of(&std::fs::read(&v3).unwrap());
    let legacy = repo
        .repo
        .join(format!("targets/{image_sha}.{BOARD}/1.2.0/root.img"));
    let spec = repo
        .repo
        .join(format!("targets/{BOARD}/1.2.0/{image_sha}.root.img"));
    assert!(legacy.is_file() && spec.is_file());
    installs(&node(&repo, &server, "during", &v1), "1.2.0");

    // The legacy layout dropped: the agent reads the specification's paths.
    migrate(&repo, &["--drop-legacy"]);
    assert!(!legacy.exists());
    let after = node(&repo, &server, "after", &v1);
    installs(&after, "1.2.0");
    let spec_rel = format!("targets/{BOARD}/1.2.0/{image_sha}.root.img");
    assert!(
        server
            .requests()
            .iter()
            .any(|(p, _)| p.ends_with(&spec_rel)),
        "no request for {spec_rel}"
    );

    // Checking again with nothing new published: the timestamp has the
    // trusted version, so the node keeps what it trusts and fetches no
    // other metadata (TUF §5.4.3).
    let before = server.requests().len();
    let out = after.install(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outcome"], "already-staged", "{json}");
    let metadata: Vec<String> = server.requests()[before..]
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| p.contains("metadata/"))
        .collect();
    assert!(
        metadata
            .iter()
            .any(|p| p.ends_with("metadata/timestamp.json"))
            && !metadata
                .iter()
                .any(|p| p.ends_with("snapshot.json") || p.ends_with("targets.json")),
        "{metadata:?}"
    );
}
