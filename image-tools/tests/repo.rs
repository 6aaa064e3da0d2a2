//! `image-tools repo`: its metadata loads with `tough`'s own client, the
//! chunk index round-trips, releases are promoted and refreshed, roots
//! rotate, and every refusal leaves the repository as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: panics are failures

mod common;

use std::fs;

use common::*;
use moho_release::ChunkIndex;
use tough::{FilesystemTransport, RepositoryLoader, TargetName};
use url::Url;

const IMAGE: &str = "amd64-generic/1.0.0/root.img";
const CHUNKS: &str = "amd64-generic/1.0.0/root.img.chunks";

#[test]
fn the_repository_loads_with_tough_and_the_chunk_index_round_trips() {
    let p = published(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let metadata = Url::from_directory_path(p.repo().join("metadata")).unwrap();
    let targets = Url::from_directory_path(p.repo().join("targets")).unwrap();
    let root = fs::read(p.root()).unwrap();
    // tough's loader with its own (system clock) expiry enforcement.
    let repo = rt
        .block_on(
            RepositoryLoader::new(&root, metadata, targets)
                .transport(FilesystemTransport)
                .load(),
        )
        .unwrap();
    let custom = &repo.targets().signed.targets[&TargetName::new(IMAGE).unwrap()].custom;
    assert_eq!(custom["board"], BOARD);
    assert_eq!(custom["channels"], serde_json::json!(["beta"]));
    assert_eq!(custom["chunk_index"], CHUNKS);
    assert_eq!(custom["chunk_size"], 65536);

    // tough reads target files from `HASH.name` (the legacy layout); ours
    // are where the TUF specification puts them, with the hashes tough
    // verified in the metadata.
    let signed = |name: &str| {
        let t = &repo.targets().signed.targets[&TargetName::new(name).unwrap()];
        let bytes = fs::read(p.target_file(name)).unwrap();
        assert_eq!(bytes.len() as u64, t.length, "{name}");
        assert_eq!(
            moho_release::Sha256Digest::of(&bytes).as_bytes().as_slice(),
            t.hashes.sha256.as_ref(),
            "{name}"
        );
        bytes
    };
    let index_bytes = signed(CHUNKS);
    assert_eq!(index_bytes, fs::read(p.path("v1.img.chunks")).unwrap());
    let image = signed(IMAGE);
    assert_eq!(image, fs::read(p.path("v1.img")).unwrap());
    let index = ChunkIndex::parse(&index_bytes).unwrap();
    assert_eq!(index, ChunkIndex::build(&image[..], 65536).unwrap());
    assert_eq!(ChunkIndex::parse(&index.to_bytes()).unwrap(), index);
}

#[test]
fn promote_refresh_and_list() {
    let p = published(1);
    let repo = s(&p.repo()).to_owned();
    let keys = s(&p.path("keys")).to_owned();
    let out = ok(&[
        "repo",
        "promote",
        "--repo",
        &repo,
        "--keys",
        &keys,
        "--version",
        "1.0.0",
        "--channel",
        "stable",
    ]);
    assert!(out.contains("now signed for stable"), "{out}");
    // Only the online keys for refresh.
    let online = p.path("online");
    fs::create_dir(&online).unwrap();
    for f in ["snapshot-1.pem", "timestamp-1.pem"] {
        fs::copy(p.path("keys").join(f), online.join(f)).unwrap();
    }
    let out = ok(&["repo", "refresh", "--repo", &repo, "--keys", s(&online)]);
    assert!(
        out.contains("snapshot version 4, timestamp version 4"),
        "{out}"
    );
    let listing: serde_json::Value =
        serde_json::from_str(&ok(&["repo", "list", "--repo", &repo, "--json"])).unwrap();
    assert_eq!(listing["releases"][0]["name"], IMAGE);
    assert_eq!(
        listing["releases"][0]["custom"]["channels"],
        serde_json::json!(["beta", "stable"])
    );
    assert_eq!(listing["roles"][1]["role"], "targets");
    assert_eq!(listing["roles"][1]["version"], 3);
    assert_eq!(listing["roles"][3]["expired"], false);
    let table = ok(&["repo", "list", "--repo", &repo]);
    assert!(table.contains("beta,stable"), "{table}");
    // A node on stable now accepts it.
    let mut args = p.verify_args();
    args.extend(["--target", IMAGE, "--board", BOARD, "--channel", "stable"].map(String::from));
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn a_node_holding_root_v1_follows_two_rotations() {
    let p = published(1);
    let repo = s(&p.repo()).to_owned();
    ok(&["keygen", "--out", s(&p.path("keys2"))]);
    ok(&["keygen", "--out", s(&p.path("keys3"))]);
    let out = ok(&[
        "repo",
        "rotate",
        "--repo",
        &repo,
        "--keys",
        s(&p.path("keys")),
        "--new-keys",
        s(&p.path("keys2")),
    ]);
    assert!(out.contains("root version 2"), "{out}");
    ok(&[
        "repo",
        "rotate",
        "--repo",
        &repo,
        "--keys",
        s(&p.path("keys2")),
        "--new-keys",
        s(&p.path("keys3")),
    ]);
    // Publishing with the retired keys is refused, and writes nothing.
    ok(&[
        "build",
        "--rootfs",
        s(&p.path("tree")),
        "--version",
        "1.1.0",
        "--board",
        BOARD,
        "--out",
        s(&p.path("v2.img")),
        "--fs",
        "erofs",
        "--source-date-epoch",
        EPOCH,
    ]);
    let before = snapshot(&p.repo());
    let err = fails(
        &[
            "repo",
            "add",
            "--repo",
            &repo,
            "--keys",
            s(&p.path("keys")),
            "--image",
            s(&p.path("v2.img")),
            "--channel",
            "beta",
        ],
        3,
    );
    assert!(err.contains("not enough targets keys"), "{err}");
    assert_eq!(snapshot(&p.repo()), before);
    ok(&[
        "repo",
        "add",
        "--repo",
        &repo,
        "--keys",
        s(&p.path("keys3")),
        "--image",
        s(&p.path("v2.img")),
        "--channel",
        "beta",
    ]);

    // The node still holds only 1.root.json.
    let state = p.path("node-state.json");
    let mut args = p.verify_args();
    args.extend(
        [
            "--target",
            "amd64-generic/1.1.0/root.img",
            "--board",
            BOARD,
            "--channel",
            "beta",
            "--current-version",
            "1.0.0",
            "--state",
            s(&state),
        ]
        .map(String::from),
    );
    let out = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("root v3"), "{out}");
    assert_eq!(
        fs::read(p.path("node-state.json.root.json")).unwrap(),
        fs::read(p.repo().join("metadata/3.root.json")).unwrap()
    );
    // A forged root v4 signed only by a new key does not chain from v3.
    ok(&["keygen", "--out", s(&p.path("evil"))]);
    let mut v4: serde_json::Value =
        serde_json::from_slice(&fs::read(p.repo().join("metadata/3.root.json")).unwrap()).unwrap();
    v4["signed"]["version"] = 4.into();
    v4["signatures"] = serde_json::json!([]);
    fs::write(
        p.repo().join("metadata/4.root.json"),
        serde_json::to_vec(&v4).unwrap(),
    )
    .unwrap();
    let err = fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), 4);
    assert!(err.contains("4.root.json"), "{err}");
}

#[test]
fn repo_refusals_write_nothing() {
    let p = published(1);
    let repo = s(&p.repo()).to_owned();
    let keys = s(&p.path("keys")).to_owned();
    let before = snapshot(&p.repo());

    let err = fails(&["repo", "init", "--repo", &repo, "--keys", &keys], 3);
    assert!(err.contains("already holds a repository"), "{err}");
    let err = fails(
        &[
            "repo",
            "add",
            "--repo",
            &repo,
            "--keys",
            &keys,
            "--image",
            s(&p.path("v1.img")),
            "--channel",
            "beta",
        ],
        3,
    );
    assert!(err.contains("already published"), "{err}");
    let err = fails(
        &[
            "repo",
            "add",
            "--repo",
            &repo,
            "--keys",
            &keys,
            "--image",
            s(&p.path("v1.img")),
            "--channel",
            "../x",
        ],
        3,
    );
    assert!(err.contains("channel \"../x\""), "{err}");
    let err = fails(
        &[
            "repo",
            "promote",
            "--repo",
            &repo,
            "--keys",
            &keys,
            "--version",
            "9.9.9",
            "--channel",
            "stable",
        ],
        3,
    );
    assert!(
        err.contains("no published image has version 9.9.9"),
        "{err}"
    );
    let err = fails(
        &[
            "repo",
            "promote",
            "--repo",
            &repo,
            "--keys",
            &keys,
            "--version",
            "1.0.0",
            "--channel",
            "beta",
        ],
        3,
    );
    assert!(err.contains("already signed for channel beta"), "{err}");

    // An image altered after `build`.
    ok(&[
        "build",
        "--rootfs",
        s(&p.path("tree")),
        "--version",
        "1.1.0",
        "--board",
        BOARD,
        "--out",
        s(&p.path("v2.img")),
        "--fs",
        "erofs",
        "--source-date-epoch",
        EPOCH,
    ]);
    let mut bytes = fs::read(p.path("v2.img")).unwrap();
    bytes[5000] ^= 1;
    fs::write(p.path("v2.img"), bytes).unwrap();
    let err = fails(
        &[
            "repo",
            "add",
            "--repo",
            &repo,
            "--keys",
            &keys,
            "--image",
            s(&p.path("v2.img")),
            "--channel",
            "beta",
        ],
        3,
    );
    assert!(err.contains("the manifest says"), "{err}");
    // A key readable by others.
    let loose = p.path("loose");
    fs::create_dir(&loose).unwrap();
    fs::copy(p.path("keys/targets-1.pem"), loose.join("targets-1.pem")).unwrap();
    fs::set_permissions(
        loose.join("targets-1.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let err = fails(
        &[
            "repo",
            "promote",
            "--repo",
            &repo,
            "--keys",
            s(&loose),
            "--version",
            "1.0.0",
            "--channel",
            "stable",
        ],
        3,
    );
    assert!(err.contains("lets others read a private key"), "{err}");

    assert_eq!(
        snapshot(&p.repo()),
        before,
        "a refused command changed the repository"
    );
}

#[test]
fn thresholds_need_that_many_keys() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    ok(&["keygen", "--out", s(&keys), "--root-keys", "3"]);
    let err = fails(
        &[
            "repo",
            "init",
            "--repo",
            s(&dir.path().join("r")),
            "--keys",
            s(&keys),
            "--root-threshold",
            "4",
        ],
        3,
    );
    assert!(
        err.contains("root threshold 4 is more than the 3 root key(s)"),
        "{err}"
    );
    assert!(!dir.path().join("r").exists());
    ok(&[
        "repo",
        "init",
        "--repo",
        s(&dir.path().join("r")),
        "--keys",
        s(&keys),
        "--root-threshold",
        "2",
    ]);
    let root: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("r/metadata/1.root.json")).unwrap())
            .unwrap();
    assert_eq!(root["signed"]["roles"]["root"]["threshold"], 2);
    assert_eq!(root["signatures"].as_array().unwrap().len(), 3);
    for f in fs::read_dir(&keys).unwrap() {
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&f.unwrap().metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
    }
}
