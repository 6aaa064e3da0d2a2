//! Facts about a root filesystem tree before it becomes a slot image: where
//! its kernel is, how much space it needs, its newest timestamp.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// File name prefixes that count as a kernel in `/boot`.
pub const KERNEL_PREFIXES: [&str; 4] = ["vmlinuz", "vmlinux", "bzImage", "Image"];

/// What a walk of the tree found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// Inodes (files, directories, links, devices; hard links once).
    pub inodes: u64,
    /// 4 KiB blocks of file and directory content.
    pub blocks: u64,
    /// Newest modification time, seconds since the epoch.
    pub newest_mtime: i64,
}

/// Walks `root` without following symbolic links.
pub fn scan(root: &Path) -> io::Result<TreeStats> {
    let mut stats = TreeStats::default();
    let mut seen = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path)?;
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        stats.inodes += 1;
        stats.newest_mtime = stats.newest_mtime.max(meta.mtime());
        let ft = meta.file_type();
        if ft.is_file() {
            stats.blocks += meta.len().div_ceil(4096);
        } else if ft.is_symlink() {
            // Targets up to 59 bytes fit in the inode.
            if meta.len() > 59 {
                stats.blocks += 1;
            }
        } else if ft.is_dir() {
            let mut entries = 0u64;
            for entry in fs::read_dir(&path)? {
                let entry = entry?;
                entries += 1 + entry.file_name().len() as u64 / 8;
                stack.push(entry.path());
            }
            // About 16 bytes of directory block per entry, at least one block.
            stats.blocks += (entries * 16).div_ceil(4096).max(1);
        }
    }
    Ok(stats)
}

/// The kernels in `<root>/boot` (regular files, or symbolic links that resolve
/// inside the tree to regular files), sorted.
pub fn kernels(root: &Path) -> Vec<PathBuf> {
    let boot = root.join("boot");
    let Ok(entries) = fs::read_dir(&boot) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            KERNEL_PREFIXES.iter().any(|p| name.starts_with(p))
        })
        .map(|e| e.path())
        .filter(|p| resolves_to_file(root, p, 0))
        .collect();
    found.sort();
    found
}

/// Whether `path` (inside `root`) is a regular file after resolving symbolic
/// links the way they will resolve once `root` is `/`.
fn resolves_to_file(root: &Path, path: &Path, depth: u32) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    if meta.is_file() {
        return true;
    }
    if !meta.file_type().is_symlink() || depth > 8 {
        return false;
    }
    let Ok(target) = fs::read_link(path) else {
        return false;
    };
    let base = if target.is_absolute() {
        root.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    // Resolve `..` lexically, never above `root`.
    let mut resolved = base;
    for c in target.components() {
        match c {
            Component::ParentDir if resolved != root => {
                resolved.pop();
            }
            Component::Normal(n) => resolved.push(n),
            _ => {}
        }
    }
    resolved.starts_with(root) && resolves_to_file(root, &resolved, depth + 1)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn finds_kernels_and_follows_links_inside_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("boot")).unwrap();
        assert!(kernels(root).is_empty());
        fs::write(root.join("boot/config-6.1"), "x").unwrap();
        assert!(kernels(root).is_empty());
        symlink("vmlinuz-6.1", root.join("boot/vmlinuz")).unwrap();
        assert!(kernels(root).is_empty(), "a dangling link is no kernel");
        fs::write(root.join("boot/vmlinuz-6.1"), "kernel").unwrap();
        assert_eq!(
            kernels(root),
            [root.join("boot/vmlinuz"), root.join("boot/vmlinuz-6.1")]
        );
    }

    #[test]
    fn counts_inodes_once_per_hard_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("a"), vec![0u8; 5000]).unwrap();
        fs::hard_link(root.join("a"), root.join("b")).unwrap();
        let s = scan(root).unwrap();
        assert_eq!(s.inodes, 2); // the directory and one file
        assert_eq!(s.blocks, 2 + 1);
    }
}
