//! `image-tools repo migrate`: a repository made by older image-tools
//! (targets at `HASH.board/version/file`) is moved to the TUF
//! specification's layout in place, and at every step both kinds of reader
//! get every target: `tough`'s loader, which reads exactly the legacy paths
//! our agents read before the layout change, and `image-tools verify`,
//! which reads as today's agent does (specification first, legacy second).
//! A corrupt or missing target is refused by name with nothing written; an
//! interrupted migration is finished by running it again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: panics are failures

mod common;

use std::fs;
use std::path::Path;

use common::*;
use tough::{FilesystemTransport, RepositoryLoader, TargetName};
use url::Url;

/// Every target of the repository read with `tough`'s loader (the legacy
/// reader), or the first error.
fn tough_reads_every_target(repo: &Path) -> Result<usize, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let metadata = Url::from_directory_path(repo.join("metadata")).unwrap();
        let targets = Url::from_directory_path(repo.join("targets")).unwrap();
        let root = fs::read(repo.join("metadata/1.root.json")).unwrap();
        let loaded = RepositoryLoader::new(&root, metadata, targets)
            .transport(FilesystemTransport)
            .load()
            .await
            .map_err(|e| e.to_string())?;
        let names: Vec<TargetName> = loaded.targets().signed.targets.keys().cloned().collect();
        for name in &names {
            let stream = loaded
                .read_target(name)
                .await
                .map_err(|e| format!("{}: {e}", name.raw()))?
                .ok_or_else(|| format!("{}: not found", name.raw()))?;
            tough::IntoVec::into_vec(stream)
                .await
                .map_err(|e| format!("{}: {e}", name.raw()))?;
        }
        Ok(names.len())
    })
}

/// The metadata directory, byte for byte.
fn metadata(p: &Published) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    snapshot(&p.repo().join("metadata"))
}

fn migrate(p: &Published, extra: &[&str]) -> String {
    let repo = p.repo();
    let mut args = vec!["repo", "migrate", "--repo", s(&repo)];
    args.extend_from_slice(extra);
    ok(&args)
}

fn legacy_dirs(p: &Published) -> Vec<String> {
    fs::read_dir(p.repo().join("targets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.split_once('.').is_some_and(|(h, _)| h.len() == 64))
        .collect()
}

/// The legacy file `HASH.board/<rel>` of a target.
fn legacy_file(p: &Published, rel: &str) -> std::path::PathBuf {
    legacy_dirs(p)
        .into_iter()
        .map(|d| p.repo().join("targets").join(d).join(rel))
        .find(|f| f.is_file())
        .unwrap()
}

#[test]
fn an_old_layout_repository_migrates_in_place_and_every_reader_keeps_reading_it() {
    let p = published(1);
    to_legacy_layout(&p.repo());
    let verify = p.verify_args();
    let verify: Vec<&str> = verify.iter().map(String::as_str).collect();

    // Before: the old layout reads with both readers.
    assert_eq!(tough_reads_every_target(&p.repo()), Ok(2));
    assert!(ok(&verify).contains("every target ok: 1 target(s)"));

    // A release published before the migration is linked into both layouts,
    // so agents that read only the old one still get it.
    // (A release with other bytes: identical releases share their files.)
    fs::write(p.path("tree").join("release-1.1.0"), b"1.1.0").unwrap();
    build_image(&p, "1.1.0", "v2.img");
    add_image(&p, "v2.img", "beta");
    assert_eq!(tough_reads_every_target(&p.repo()), Ok(4));
    assert!(p.target_file("amd64-generic/1.1.0/root.img").is_file());

    // A corrupt target stops the migration by name before anything is written.
    let old_image = legacy_file(&p, "1.0.0/root.img");
    let good = fs::read(&old_image).unwrap();
    let mut bad = good.clone();
    bad[4096] ^= 1;
    fs::write(&old_image, &bad).unwrap();
    let before = snapshot(&p.repo());
    let err = fails(&["repo", "migrate", "--repo", s(&p.repo())], 3);
    assert!(
        err.contains("target amd64-generic/1.0.0/root.img") && err.contains("signed sha256"),
        "{err}"
    );
    assert_eq!(snapshot(&p.repo()), before, "a refused migration wrote");
    fs::write(&old_image, &good).unwrap();

    // The migration: no metadata changes, every target at its new path, the
    // old layout kept.
    let meta = metadata(&p);
    let out = migrate(&p, &[]);
    assert!(
        out.contains("4 target(s) at their TUF specification paths (2 linked by this run)")
            && out.contains("legacy layout is kept"),
        "{out}"
    );
    assert_eq!(metadata(&p), meta);
    for name in [
        "amd64-generic/1.0.0/root.img",
        "amd64-generic/1.0.0/root.img.chunks",
    ] {
        assert!(p.target_file(name).is_file(), "{name}");
    }
    assert_eq!(tough_reads_every_target(&p.repo()), Ok(4));
    assert!(ok(&verify).contains("every target ok: 2 target(s)"));

    // Interrupted half-way (one link not made yet, a temporary file left):
    // running it again finishes it; once done it has nothing left to do.
    let index = p.target_file("amd64-generic/1.0.0/root.img.chunks");
    fs::remove_file(&index).unwrap();
    fs::write(index.with_file_name(".moho-partial"), b"half").unwrap();
    assert!(migrate(&p, &[]).contains("(1 linked by this run)"));
    assert!(migrate(&p, &[]).contains("(0 linked by this run)"));
    assert!(ok(&verify).contains("every target ok"));

    // Dropping the old layout: conforming readers only from now on, and new
    // releases go to the specification's layout alone.
    assert_eq!(legacy_dirs(&p).len(), 4);
    let out = migrate(&p, &["--drop-legacy"]);
    assert!(out.contains("removed 4 legacy directory"), "{out}");
    assert!(legacy_dirs(&p).is_empty());
    assert_eq!(metadata(&p), meta);
    assert!(ok(&verify).contains("every target ok: 2 target(s)"));
    assert!(tough_reads_every_target(&p.repo()).is_err());
    fs::write(p.path("tree").join("release-1.2.0"), b"1.2.0").unwrap();
    build_image(&p, "1.2.0", "v3.img");
    add_image(&p, "v3.img", "beta");
    assert!(legacy_dirs(&p).is_empty());
    assert!(ok(&verify).contains("every target ok: 3 target(s)"));
}

#[test]
fn a_migration_with_a_target_file_missing_names_it_and_writes_nothing() {
    let p = published(1);
    to_legacy_layout(&p.repo());
    fs::remove_file(legacy_file(&p, "1.0.0/root.img.chunks")).unwrap();
    let before = snapshot(&p.repo());
    let err = fails(
        &["repo", "migrate", "--repo", s(&p.repo()), "--drop-legacy"],
        3,
    );
    assert!(
        err.contains("target amd64-generic/1.0.0/root.img.chunks: no file at"),
        "{err}"
    );
    assert_eq!(snapshot(&p.repo()), before);
}
