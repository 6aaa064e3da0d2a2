//! The edit that turns the previous release's tree into the new one (pure:
//! two listings and a content comparison in, a list of operations out).
//!
//! A path whose inode is unchanged — same kind, same bytes (or link target,
//! or device), and for a file the same set of hard links — is kept: its
//! inode number and its blocks stay where the previous image has them, and
//! only owner, permissions or extended attributes are set if they differ.
//! Everything else is removed and created again, removals first (deepest
//! paths first) so that their inodes and blocks are free for what is created
//! next, in path order.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use super::listing::{Entry, Kind};

/// One step of the edit, on image paths relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Unlink a non-directory (its inode and blocks are freed with its last link).
    Remove(PathBuf),
    /// Remove an (already emptied) directory.
    RemoveDir(PathBuf),
    /// Create a directory.
    Mkdir(PathBuf),
    /// Create a regular file with the new tree's bytes of the same path.
    Write(PathBuf),
    /// Create a symbolic link.
    Symlink(PathBuf, PathBuf),
    /// Create a named pipe.
    Fifo(PathBuf),
    /// Create a character (`true`) or block device with this device number.
    Device(PathBuf, bool, u64),
    /// Add a hard link at the first path to the file at the second.
    Link(PathBuf, PathBuf),
    /// Set a file's link count.
    LinkCount(PathBuf, u64),
    /// Set `i_mode` (type and permission bits).
    Mode(PathBuf, u32),
    /// Set the owner.
    Uid(PathBuf, u32),
    /// Set the group.
    Gid(PathBuf, u32),
    /// Set an extended attribute.
    SetXattr(PathBuf, Vec<u8>, Vec<u8>),
    /// Remove an extended attribute.
    RemoveXattr(PathBuf, Vec<u8>),
}

/// What the edit does, for the build's report and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The operations, in order.
    pub ops: Vec<Op>,
    /// Paths whose inode (number and blocks) is kept.
    pub kept: BTreeSet<PathBuf>,
}

/// Why no edit could be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A socket in the new tree: ext4 images hold none that mean anything.
    #[error("{}: a socket; remove it from the tree", .0.display())]
    Socket(PathBuf),
    /// Comparing contents failed.
    #[error("{}: compare with the previous image: {source}", path.display())]
    Compare {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Compares the bytes of a regular file present on both sides.
pub trait SameContent {
    /// Whether `path` holds the same bytes in the previous image and the new tree.
    fn same(&self, path: &Path) -> io::Result<bool>;
}

/// Plans the edit from `old` (the previous image) to `new` (the tree).
pub fn plan(
    old: &BTreeMap<PathBuf, Entry>,
    new: &BTreeMap<PathBuf, Entry>,
    content: &dyn SameContent,
) -> Result<Plan, PlanError> {
    let old_links = links(old);
    let new_links = links(new);
    let mut removals: BTreeSet<PathBuf> = BTreeSet::new();
    let mut plan = Plan::default();
    let mut creates = Vec::new();
    let mut meta = Vec::new();

    for (path, n) in new {
        if n.kind == Kind::Socket {
            return Err(PlanError::Socket(path.clone()));
        }
        let keep = match old.get(path) {
            None => false,
            Some(o) => match (&o.kind, &n.kind) {
                (Kind::Dir, Kind::Dir) => true,
                (Kind::File { size: a }, Kind::File { size: b }) => {
                    a == b
                        && same_links(path, o, n, &old_links, &new_links, old)
                        && content.same(path).map_err(|source| PlanError::Compare {
                            path: path.clone(),
                            source,
                        })?
                }
                (a, b) => a == b,
            },
        };
        if keep {
            plan.kept.insert(path.clone());
            let o = &old[path];
            meta_ops(&mut meta, path, Some(o), n);
            continue;
        }
        if let Some(o) = old.get(path) {
            // Replaced: the old path goes, and with a directory everything under it.
            removals.insert(path.clone());
            if o.kind == Kind::Dir {
                for (p, _) in old.range(path.clone()..).skip(1) {
                    if !p.starts_with(path) {
                        break;
                    }
                    removals.insert(p.clone());
                }
            }
        }
        creates.push(path.clone());
    }
    for path in old.keys() {
        if !new.contains_key(path) {
            removals.insert(path.clone());
        }
    }
    // A kept path never lies under a removed one: its parent is a directory
    // on both sides, so kept too.
    for path in removals.iter().rev() {
        plan.ops.push(match old[path].kind {
            Kind::Dir => Op::RemoveDir(path.clone()),
            _ => Op::Remove(path.clone()),
        });
    }
    plan.ops.append(&mut meta);
    let mut linked: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    for path in &creates {
        let n = &new[path];
        let op = match &n.kind {
            Kind::Dir => Op::Mkdir(path.clone()),
            Kind::File { .. } => {
                let group = new_links.get(&n.inode).map_or(1, Vec::len);
                if group > 1 {
                    if let Some(first) = linked.get(&n.inode) {
                        plan.ops.push(Op::Link(path.clone(), first.clone()));
                        continue;
                    }
                    linked.insert(n.inode, path.clone());
                    plan.ops.push(Op::Write(path.clone()));
                    plan.ops.push(Op::LinkCount(path.clone(), group as u64));
                    meta_ops(&mut plan.ops, path, None, n);
                    continue;
                }
                Op::Write(path.clone())
            }
            Kind::Symlink(t) => Op::Symlink(path.clone(), t.clone()),
            Kind::Fifo => Op::Fifo(path.clone()),
            Kind::Char(d) => Op::Device(path.clone(), true, *d),
            Kind::Block(d) => Op::Device(path.clone(), false, *d),
            Kind::Socket => return Err(PlanError::Socket(path.clone())),
        };
        plan.ops.push(op);
        meta_ops(&mut plan.ops, path, None, n);
    }
    Ok(plan)
}

/// Paths of each hard-linked file (inodes with more than one path), sorted.
fn links(tree: &BTreeMap<PathBuf, Entry>) -> BTreeMap<(u64, u64), Vec<PathBuf>> {
    let mut by_inode: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    for (path, e) in tree {
        if matches!(e.kind, Kind::File { .. }) {
            by_inode.entry(e.inode).or_default().push(path.clone());
        }
    }
    by_inode.retain(|_, paths| paths.len() > 1);
    by_inode
}

/// Whether a file's hard links are the same paths on both sides.
fn same_links(
    path: &Path,
    o: &Entry,
    n: &Entry,
    old_links: &BTreeMap<(u64, u64), Vec<PathBuf>>,
    new_links: &BTreeMap<(u64, u64), Vec<PathBuf>>,
    old: &BTreeMap<PathBuf, Entry>,
) -> bool {
    let single = vec![path.to_owned()];
    let a = old_links.get(&o.inode).unwrap_or(&single);
    let b = new_links.get(&n.inode).unwrap_or(&single);
    a == b
        && b.iter()
            .all(|p| old.get(p).is_some_and(|e| e.inode == o.inode))
}

/// Sets what differs between `o` (none: a new inode) and `n`.
fn meta_ops(ops: &mut Vec<Op>, path: &Path, o: Option<&Entry>, n: &Entry) {
    let symlink = matches!(n.kind, Kind::Symlink(_));
    if !symlink && o.is_none_or(|o| o.perm != n.perm) {
        ops.push(Op::Mode(path.to_owned(), n.mode()));
    }
    if o.is_none_or(|o| o.uid != n.uid) {
        ops.push(Op::Uid(path.to_owned(), n.uid));
    }
    if o.is_none_or(|o| o.gid != n.gid) {
        ops.push(Op::Gid(path.to_owned(), n.gid));
    }
    let empty = BTreeMap::new();
    let before = o.map_or(&empty, |o| &o.xattrs);
    for name in before.keys() {
        if !n.xattrs.contains_key(name) {
            ops.push(Op::RemoveXattr(path.to_owned(), name.clone()));
        }
    }
    for (name, value) in &n.xattrs {
        if before.get(name) != Some(value) {
            ops.push(Op::SetXattr(path.to_owned(), name.clone(), value.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;

    /// A tree for the tests: listing entries plus each file's bytes.
    #[derive(Debug, Clone)]
    struct Tree {
        entries: BTreeMap<PathBuf, Entry>,
        bytes: BTreeMap<PathBuf, u8>,
    }

    const PATHS: [&str; 10] = [
        "a", "a/f", "a/g", "a/b", "a/b/h", "a/b/i", "c", "c/j", "k", "l",
    ];

    /// Candidate per path: 0 absent, 1 dir, 2 file, 3 symlink, 4 fifo;
    /// (inode 0..3, content 0..2, perm 0..1, owner 0..1, xattr 0..2).
    fn tree_strategy() -> impl Strategy<Value = Tree> {
        let one = (0u8..5, 0u64..3, 0u8..2, 0u32..2, 0u32..2, 0u8..3);
        proptest::collection::vec(one, PATHS.len()).prop_map(|cands| {
            let mut entries = BTreeMap::new();
            let mut bytes = BTreeMap::new();
            entries.insert(PathBuf::new(), entry(Kind::Dir, 0o755, 0, 0, (0, 0)));
            // Per inode: the bytes, permissions and owner of its first path.
            let mut inodes: BTreeMap<u64, (u8, u32, u32)> = BTreeMap::new();
            for (idx, (path, (kind, ino, content, perm, owner, xattr))) in
                PATHS.iter().zip(cands).enumerate()
            {
                let idx = idx as u64;
                let path = PathBuf::from(path);
                let parent_is_dir = path
                    .parent()
                    .and_then(|p| entries.get(p))
                    .is_some_and(|e: &Entry| e.kind == Kind::Dir);
                if !parent_is_dir {
                    continue;
                }
                let perm = if perm == 0 { 0o644 } else { 0o755 };
                let mut e = match kind {
                    0 => continue,
                    1 => entry(Kind::Dir, perm, owner, owner, (2, idx)),
                    2 => {
                        let (c, p, o) = *inodes.entry(ino).or_insert((content, perm, owner));
                        bytes.insert(path.clone(), c);
                        entry(Kind::File { size: 1 }, p, o, o, (1, ino))
                    }
                    3 => entry(
                        Kind::Symlink(PathBuf::from(format!("t{content}"))),
                        0o777,
                        owner,
                        owner,
                        (3, idx),
                    ),
                    _ => entry(Kind::Fifo, perm, owner, owner, (4, idx)),
                };
                if xattr > 0 && !matches!(e.kind, Kind::File { .. }) {
                    e.xattrs.insert(b"user.x".to_vec(), vec![xattr]);
                }
                entries.insert(path, e);
            }
            Tree { entries, bytes }
        })
    }

    fn entry(kind: Kind, perm: u32, uid: u32, gid: u32, inode: (u64, u64)) -> Entry {
        Entry {
            kind,
            perm,
            uid,
            gid,
            xattrs: BTreeMap::new(),
            inode,
        }
    }

    struct Fake<'a>(&'a Tree, &'a Tree);

    impl SameContent for Fake<'_> {
        fn same(&self, path: &Path) -> io::Result<bool> {
            Ok(self.0.bytes.get(path) == self.1.bytes.get(path))
        }
    }

    /// An inode of the simulated image.
    #[derive(Debug, Clone)]
    struct Ino {
        kind: Kind,
        mode: u32,
        uid: u32,
        gid: u32,
        xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
        bytes: Option<u8>,
        links: u64,
        original: bool,
    }

    /// Applies `ops` as debugfs would (`ln` does not count links) to the old
    /// tree; returns path → inode index and the inodes.
    fn apply(old: &Tree, new: &Tree, ops: &[Op]) -> (BTreeMap<PathBuf, usize>, Vec<Ino>) {
        let mut inos: Vec<Ino> = Vec::new();
        let mut paths: BTreeMap<PathBuf, usize> = BTreeMap::new();
        let mut by_inode: BTreeMap<(u64, u64), usize> = BTreeMap::new();
        for (path, e) in &old.entries {
            let i = *by_inode.entry(e.inode).or_insert_with(|| {
                inos.push(Ino {
                    kind: e.kind.clone(),
                    mode: e.mode(),
                    uid: e.uid,
                    gid: e.gid,
                    xattrs: e.xattrs.clone(),
                    bytes: old.bytes.get(path).copied(),
                    links: 0,
                    original: true,
                });
                inos.len() - 1
            });
            inos[i].links += 1;
            paths.insert(path.clone(), i);
        }
        let parent_ok = |paths: &BTreeMap<PathBuf, usize>, inos: &Vec<Ino>, p: &Path| {
            assert!(!paths.contains_key(p), "{}: created twice", p.display());
            let parent = &inos[paths[p.parent().unwrap()]];
            assert_eq!(
                parent.kind,
                Kind::Dir,
                "{}: parent not a directory",
                p.display()
            );
        };
        for op in ops {
            let mut create =
                |paths: &mut BTreeMap<PathBuf, usize>, p: &PathBuf, kind: Kind, bytes| {
                    parent_ok(paths, &inos, p);
                    inos.push(Ino {
                        kind,
                        mode: 0,
                        uid: 0,
                        gid: 0,
                        xattrs: BTreeMap::new(),
                        bytes,
                        links: 1,
                        original: false,
                    });
                    paths.insert(p.clone(), inos.len() - 1);
                };
            match op {
                Op::Remove(p) => {
                    let i = paths.remove(p).expect("remove: exists");
                    assert_ne!(inos[i].kind, Kind::Dir);
                    inos[i].links -= 1;
                }
                Op::RemoveDir(p) => {
                    let i = paths.remove(p).expect("rmdir: exists");
                    assert_eq!(inos[i].kind, Kind::Dir);
                    assert!(
                        !paths.keys().any(|q| q.parent() == Some(p)),
                        "rmdir: not empty"
                    );
                }
                Op::Mkdir(p) => create(&mut paths, p, Kind::Dir, None),
                Op::Write(p) => create(
                    &mut paths,
                    p,
                    Kind::File { size: 1 },
                    new.bytes.get(p).copied(),
                ),
                Op::Symlink(p, t) => create(&mut paths, p, Kind::Symlink(t.clone()), None),
                Op::Fifo(p) => create(&mut paths, p, Kind::Fifo, None),
                Op::Device(p, c, d) => {
                    create(
                        &mut paths,
                        p,
                        if *c { Kind::Char(*d) } else { Kind::Block(*d) },
                        None,
                    );
                }
                Op::Link(p, to) => {
                    parent_ok(&paths, &inos, p);
                    let i = paths[to];
                    paths.insert(p.clone(), i);
                }
                Op::LinkCount(p, n) => inos[paths[p]].links = *n,
                Op::Mode(p, m) => inos[paths[p]].mode = *m,
                Op::Uid(p, u) => inos[paths[p]].uid = *u,
                Op::Gid(p, g) => inos[paths[p]].gid = *g,
                Op::SetXattr(p, n, v) => {
                    inos[paths[p]].xattrs.insert(n.clone(), v.clone());
                }
                Op::RemoveXattr(p, n) => {
                    inos[paths[p]].xattrs.remove(n);
                }
            }
        }
        (paths, inos)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_edit_makes_the_new_tree_and_keeps_every_unchanged_inode(
            old in tree_strategy(),
            new in tree_strategy(),
        ) {
            let plan = plan(&old.entries, &new.entries, &Fake(&old, &new)).unwrap();
            let (paths, inos) = apply(&old, &new, &plan.ops);
            // Exactly the new tree's paths, each as the new tree says.
            prop_assert_eq!(paths.keys().collect::<Vec<_>>(), new.entries.keys().collect::<Vec<_>>());
            for (path, e) in &new.entries {
                let ino = &inos[paths[path]];
                prop_assert_eq!(&ino.kind, &e.kind, "{}", path.display());
                if !matches!(e.kind, Kind::Symlink(_)) {
                    prop_assert_eq!(ino.mode, e.mode(), "{}: mode", path.display());
                }
                prop_assert_eq!((ino.uid, ino.gid), (e.uid, e.gid), "{}: owner", path.display());
                prop_assert_eq!(&ino.xattrs, &e.xattrs, "{}: xattrs", path.display());
                prop_assert_eq!(ino.bytes, new.bytes.get(path).copied(), "{}: bytes", path.display());
                prop_assert_eq!(ino.original, plan.kept.contains(path), "{}: kept", path.display());
                for (other, f) in &new.entries {
                    if matches!(e.kind, Kind::File { .. }) && matches!(f.kind, Kind::File { .. }) {
                        prop_assert_eq!(paths[path] == paths[other], e.inode == f.inode,
                            "{} and {}: hard links", path.display(), other.display());
                    }
                }
                if matches!(e.kind, Kind::File { .. }) {
                    let n = paths.values().filter(|i| **i == paths[path]).count() as u64;
                    prop_assert_eq!(ino.links, n, "{}: link count", path.display());
                }
            }
            // Every path unchanged on both sides (kind, bytes, hard links)
            // keeps its inode, so its blocks: nothing is rewritten needlessly.
            for (path, e) in &new.entries {
                let Some(o) = old.entries.get(path) else { continue };
                let group = |t: &Tree, ino| t.entries.iter()
                    .filter(|(_, x)| matches!(x.kind, Kind::File { .. }) && x.inode == ino)
                    .map(|(p, _)| p.clone()).collect::<Vec<_>>();
                let unchanged = match (&o.kind, &e.kind) {
                    (Kind::Dir, Kind::Dir) => true,
                    (Kind::File { .. }, Kind::File { .. }) => {
                        old.bytes.get(path) == new.bytes.get(path) && group(&old, o.inode) == group(&new, e.inode)
                    }
                    (a, b) => a == b,
                };
                if unchanged {
                    prop_assert!(plan.kept.contains(path), "{} is unchanged but not kept", path.display());
                }
            }
        }
    }
}
