//! The VM tests' cache: Debian packages and what is unpacked from them are
//! kept outside the repository (`$MOHO_VM_CACHE`, default
//! `/var/cache/moho-e2e`), so a second run does not fetch them again.
//! Concurrent test processes serialise on a lock file per entry.

use std::fs::{self, File};
use std::path::PathBuf;

/// The cache directory (created).
pub fn cache_dir() -> PathBuf {
    let dir = std::env::var_os("MOHO_VM_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/moho-e2e"), PathBuf::from);
    fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create the VM cache {}: {e}", dir.display()));
    dir
}

/// Runs `fill` unless `cache_dir()/name` is complete, under a lock; returns
/// the entry's directory. `fill` gets an empty directory and must leave in
/// it everything the entry holds; a marker file says it finished.
pub fn entry(name: &str, fill: impl FnOnce(&std::path::Path)) -> PathBuf {
    let root = cache_dir();
    let dir = root.join(name);
    let done = root.join(format!("{name}.done"));
    let lock = File::create(root.join(format!("{name}.lock"))).expect("cache lock file");
    lock.lock().expect("locking the cache entry");
    if !done.exists() {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("cache entry directory");
        fill(&dir);
        fs::write(&done, b"").expect("cache marker");
    }
    let _ = lock.unlock();
    dir
}
