//! A publication can never break the repository (issue 17): every rule a
//! node applies to a release — names, lengths, versions, sizes — is applied
//! by `build` before it makes an image and by `repo add` before it writes,
//! so a release nodes would refuse exits 3 and leaves the repository byte
//! for byte as it was; at the limits, the release is published and verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: panics are failures

mod common;

use std::fs;
use std::path::Path;

use common::*;
use moho_release::target_name::MAX_TARGET_NAME_LEN;

/// A version of exactly `len` bytes: `9.0.0-aaa...`.
fn version_of_len(len: usize) -> String {
    format!("9.0.0-{}", "a".repeat(len - 6))
}

/// The longest version nodes accept for `BOARD`: the chunk index's target
/// name `<board>/<version>/root.img.chunks` fills the 255 bytes.
fn longest_version() -> usize {
    MAX_TARGET_NAME_LEN - BOARD.len() - 2 - "root.img.chunks".len()
}

/// Files of `dir` whose name starts with `prefix`.
fn outputs(dir: &Path, prefix: &str) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn build_args<'a>(p: &'a Published, version: &'a str, out: &'a Path) -> Vec<String> {
    [
        "build",
        "--rootfs",
        s(&p.path("tree")),
        "--version",
        version,
        "--board",
        BOARD,
        "--out",
        s(out),
        "--fs",
        "erofs",
        "--source-date-epoch",
        EPOCH,
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect()
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn build_refuses_versions_nodes_would_refuse_and_leaves_nothing_behind() {
    let p = published(1);
    let out_dir = p.path("out");
    fs::create_dir(&out_dir).unwrap();
    for (len, name_len) in [(246, 269), (306, 329), (longest_version() + 1, 256)] {
        let version = version_of_len(len);
        let out = out_dir.join("long.img");
        let err = fails(&refs(&build_args(&p, &version, &out)), 3);
        assert!(
            err.contains(&format!("length {name_len} is outside 1..=255"))
                && err.contains("nothing was built"),
            "{len}: {err}"
        );
        assert!(outputs(&out_dir, "").is_empty(), "{len}: build left files");
    }
    // At the limit: built.
    let version = version_of_len(longest_version());
    let out = out_dir.join("limit.img");
    ok(&refs(&build_args(&p, &version, &out)));
    assert_eq!(outputs(&out_dir, "limit.img").len(), 3);
}

/// Copies the built image `from` to `to` with its sidecars, the manifest's
/// version set to `version`: an image as an older image-tools (or a hand
/// edit) could have described it.
fn relabel(from: &Path, to: &Path, version: &str) {
    fs::copy(from, to).unwrap();
    let side = |p: &Path, ext: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(ext);
        std::path::PathBuf::from(s)
    };
    fs::copy(side(from, ".chunks"), side(to, ".chunks")).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(side(from, ".release.json")).unwrap()).unwrap();
    manifest["version"] = version.into();
    fs::write(
        side(to, ".release.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
}

fn add(p: &Published, image: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "repo",
        "add",
        "--repo",
        s(&p.repo()),
        "--keys",
        s(&p.path("keys")),
        "--image",
        s(image),
        "--channel",
        "beta",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args
}

#[test]
fn repo_add_refuses_releases_nodes_would_refuse_and_the_repository_stays_byte_for_byte() {
    let p = published(1);
    build_image(&p, "1.1.0", "v2.img");
    let before = snapshot(&p.repo());

    // The cases: a 240- and a 300-character suffix, and one byte
    // over the limit.
    for (len, needle) in [
        (246, "length 269 is outside 1..=255".to_owned()),
        (306, "length 329 is outside 1..=255".to_owned()),
        (
            longest_version() + 1,
            "length 256 is outside 1..=255".to_owned(),
        ),
    ] {
        let image = p.path(&format!("long-{len}.img"));
        relabel(&p.path("v2.img"), &image, &version_of_len(len));
        let err = fails(&refs(&add(&p, &image, &[])), 3);
        assert!(
            err.contains(&needle) && err.contains("would make every node refuse the repository"),
            "{len}: {err}"
        );
        assert_eq!(snapshot(&p.repo()), before, "{len}: the repository changed");
    }

    // Other rules nodes apply: a version that is not semver, a minimum
    // version that is not semver, a board that is not a plain name.
    let image = p.path("odd.img");
    relabel(&p.path("v2.img"), &image, "1.1");
    let err = fails(&refs(&add(&p, &image, &[])), 3);
    assert!(err.contains("\"1.1\" is not a semantic version"), "{err}");
    let err = fails(
        &refs(&add(&p, &p.path("v2.img"), &["--min-version", "one"])),
        3,
    );
    assert!(err.contains("\"one\" is not a semantic version"), "{err}");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(p.path("v2.img.release.json")).unwrap()).unwrap();
    manifest["board"] = "amd64/../x".into();
    fs::copy(p.path("v2.img"), p.path("board.img")).unwrap();
    fs::copy(p.path("v2.img.chunks"), p.path("board.img.chunks")).unwrap();
    fs::write(
        p.path("board.img.release.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let err = fails(&refs(&add(&p, &p.path("board.img"), &[])), 3);
    assert!(err.contains("board \"amd64/../x\""), "{err}");
    assert_eq!(snapshot(&p.repo()), before, "the repository changed");

    // At the limit: published, and every node-side check passes.
    let version = version_of_len(longest_version());
    build_image(&p, &version, "limit.img");
    let out = ok(&refs(&add(&p, &p.path("limit.img"), &[])));
    assert!(
        out.contains(&format!("{BOARD}/{version}/root.img.chunks")),
        "{out}"
    );
    let verify = p.verify_args();
    let out = ok(&refs(&verify));
    assert!(out.contains("every target ok: 2 target(s)"), "{out}");
}
