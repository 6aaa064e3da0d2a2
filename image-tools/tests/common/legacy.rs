//! Turns a repository into what image-tools wrote before the TUF
//! specification's layout (targets at `HASH.board/version/file`), to test
//! that such repositories keep working and migrate. Shared with the
//! end-to-end tests (`tests/tests/repo_layout.rs`).

#![allow(clippy::unwrap_used)] // test helper: panics are failures

use std::fs;
use std::path::Path;

/// Rewrites a repository's targets into the legacy layout older
/// image-tools wrote (`HASH.board/version/file`), as a repository made
/// before the layout change is: the metadata is the same either way.
pub fn to_legacy_layout(repo: &Path) {
    let targets = repo.join("targets");
    let mut moves = Vec::new();
    let mut stack = vec![targets.clone()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&targets)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let (dir, base) = rel.rsplit_once('/').unwrap();
            let (hash, file) = base.split_once('.').unwrap();
            moves.push((path.clone(), targets.join(format!("{hash}.{dir}/{file}"))));
        }
    }
    for (from, to) in moves {
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::rename(from, to).unwrap();
    }
    for e in fs::read_dir(&targets).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.split_once('.').is_none_or(|(h, _)| h.len() != 64) {
            fs::remove_dir_all(path).unwrap();
        }
    }
}
