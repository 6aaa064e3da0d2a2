//! Kernel modules for an initramfs: find the requested modules in a
//! `/lib/modules/<version>` tree by name, add what they depend on according
//! to `modules.dep`, order them so that every module comes after its
//! dependencies, and read each one uncompressed (`.ko`, `.ko.xz`,
//! `.ko.zst`, `.ko.gz`), since a kernel without `CONFIG_MODULE_DECOMPRESS`
//! only loads plain ones.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Compression suffixes after `.ko`, in the order they are tried.
const COMPRESSED: [&str; 3] = [".xz", ".zst", ".gz"];

/// Why the modules could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum KmodError {
    /// `modules.dep` is missing or unreadable.
    #[error("{}: {source} (generate it with `depmod -b ROOT VERSION`)", path.display())]
    NoDepFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A line of `modules.dep` is not `path: deps...`.
    #[error("{}: line {line}: {text:?} is not `module.ko: dependencies`", path.display())]
    BadDepLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// No module of that name.
    #[error("{}: no module {name:?} in modules.dep (and not built into the kernel)", dir.display())]
    UnknownModule {
        /// The modules directory.
        dir: PathBuf,
        /// The name asked for.
        name: String,
    },
    /// `modules.dep` lists a dependency cycle.
    #[error("{}: modules.dep has a dependency cycle through {path}", dir.display())]
    Cycle {
        /// The modules directory.
        dir: PathBuf,
        /// A module on the cycle.
        path: String,
    },
    /// A module file could not be read or decompressed.
    #[error("{}: {op}: {source}", path.display())]
    Read {
        /// The module file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
}

/// The dependency graph of one kernel's modules.
#[derive(Debug, Clone)]
pub struct ModuleIndex {
    dir: PathBuf,
    /// Path (relative, as in `modules.dep`) → its dependencies.
    deps: BTreeMap<String, Vec<String>>,
    /// Normalised module name → path.
    by_name: BTreeMap<String, String>,
    /// Normalised names of modules built into the kernel.
    builtin: BTreeSet<String>,
}

/// What a requested name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Built into the kernel: nothing to load.
    BuiltIn(String),
    /// Module files to load, dependencies first.
    Load(Vec<String>),
}

/// `virtio-blk`, `virtio_blk.ko.xz` and `kernel/drivers/block/virtio_blk.ko`
/// all name `virtio_blk`.
pub fn module_name(path_or_name: &str) -> String {
    let base = path_or_name.rsplit('/').next().unwrap_or(path_or_name);
    let base = COMPRESSED
        .iter()
        .find_map(|c| base.strip_suffix(c))
        .unwrap_or(base);
    base.strip_suffix(".ko").unwrap_or(base).replace('-', "_")
}

/// The path a module has in the initramfs: as in `modules.dep`, without a
/// compression suffix.
pub fn uncompressed_path(path: &str) -> String {
    COMPRESSED
        .iter()
        .find_map(|c| path.strip_suffix(c))
        .unwrap_or(path)
        .to_owned()
}

impl ModuleIndex {
    /// Reads `dir/modules.dep` (and `dir/modules.builtin` if present).
    pub fn load(dir: &Path) -> Result<Self, KmodError> {
        let dep_path = dir.join("modules.dep");
        let text = fs::read_to_string(&dep_path).map_err(|source| KmodError::NoDepFile {
            path: dep_path.clone(),
            source,
        })?;
        let mut deps = BTreeMap::new();
        let mut by_name = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Some((module, rest)) = line.split_once(':') else {
                return Err(KmodError::BadDepLine {
                    path: dep_path,
                    line: i + 1,
                    text: line.to_owned(),
                });
            };
            let module = module.trim().to_owned();
            by_name.insert(module_name(&module), module.clone());
            deps.insert(
                module,
                rest.split_ascii_whitespace().map(str::to_owned).collect(),
            );
        }
        let builtin = fs::read_to_string(dir.join("modules.builtin"))
            .unwrap_or_default()
            .lines()
            .map(module_name)
            .collect();
        Ok(Self {
            dir: dir.to_owned(),
            deps,
            by_name,
            builtin,
        })
    }

    /// The files to load for module `name`, dependencies first.
    pub fn resolve(&self, name: &str) -> Result<Resolved, KmodError> {
        let key = module_name(name);
        let Some(path) = self.by_name.get(&key) else {
            if self.builtin.contains(&key) {
                return Ok(Resolved::BuiltIn(key));
            }
            return Err(KmodError::UnknownModule {
                dir: self.dir.clone(),
                name: name.to_owned(),
            });
        };
        let mut order = Vec::new();
        self.visit(path, &mut order, &mut Vec::new())?;
        Ok(Resolved::Load(order))
    }

    /// The load order for all of `names`: each module once, every module
    /// after its dependencies; built-in names are returned separately.
    pub fn resolve_all(&self, names: &[String]) -> Result<(Vec<String>, Vec<String>), KmodError> {
        let mut order: Vec<String> = Vec::new();
        let mut builtin = Vec::new();
        for name in names {
            match self.resolve(name)? {
                Resolved::BuiltIn(n) => builtin.push(n),
                Resolved::Load(files) => {
                    for f in files {
                        if !order.contains(&f) {
                            order.push(f);
                        }
                    }
                }
            }
        }
        Ok((order, builtin))
    }

    fn visit(
        &self,
        path: &str,
        order: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) -> Result<(), KmodError> {
        if order.iter().any(|p| p == path) {
            return Ok(());
        }
        if stack.iter().any(|p| p == path) {
            return Err(KmodError::Cycle {
                dir: self.dir.clone(),
                path: path.to_owned(),
            });
        }
        stack.push(path.to_owned());
        for dep in self.deps.get(path).map(Vec::as_slice).unwrap_or_default() {
            self.visit(dep, order, stack)?;
        }
        stack.pop();
        order.push(path.to_owned());
        Ok(())
    }

    /// The module at `path` (relative, as in `modules.dep`), uncompressed.
    pub fn read_uncompressed(&self, path: &str) -> Result<Vec<u8>, KmodError> {
        let file = self.dir.join(path);
        let err = |op| {
            let path = file.clone();
            move |source| KmodError::Read { path, op, source }
        };
        let raw = fs::read(&file).map_err(err("reading"))?;
        let mut out = Vec::new();
        if path.ends_with(".xz") {
            lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))
                .map_err(err("decompressing xz"))?;
        } else if path.ends_with(".zst") {
            ruzstd::decoding::StreamingDecoder::new(raw.as_slice())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                .and_then(|mut d| d.read_to_end(&mut out))
                .map_err(err("decompressing zstd"))?;
        } else if path.ends_with(".gz") {
            flate2::read::GzDecoder::new(raw.as_slice())
                .read_to_end(&mut out)
                .map_err(err("decompressing gzip"))?;
        } else {
            return Ok(raw);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(dep: &str, builtin: &str) -> (tempfile::TempDir, ModuleIndex) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("modules.dep"), dep).unwrap();
        fs::write(dir.path().join("modules.builtin"), builtin).unwrap();
        let idx = ModuleIndex::load(dir.path()).unwrap();
        (dir, idx)
    }

    const DEP: &str = "\
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko.xz: kernel/net/core/failover.ko.zst
kernel/net/core/failover.ko.zst:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.zst kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
";

    #[test]
    fn names_are_normalised() {
        assert_eq!(module_name("virtio-blk"), "virtio_blk");
        assert_eq!(module_name("kernel/net/core/failover.ko.zst"), "failover");
        assert_eq!(uncompressed_path("kernel/a/b.ko.xz"), "kernel/a/b.ko");
        assert_eq!(uncompressed_path("kernel/a/b.ko"), "kernel/a/b.ko");
    }

    #[test]
    fn dependencies_come_first_and_each_module_once() {
        let (_d, idx) = index(DEP, "kernel/fs/ext4/ext4.ko\n");
        let (order, builtin) = idx
            .resolve_all(&["virtio-net".into(), "virtio_blk".into(), "ext4".into()])
            .unwrap();
        assert_eq!(
            order,
            [
                "kernel/net/core/failover.ko.zst",
                "kernel/drivers/net/net_failover.ko.xz",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/drivers/net/virtio_net.ko",
                "kernel/drivers/block/virtio_blk.ko",
            ]
        );
        assert_eq!(builtin, ["ext4"]);
        for (i, m) in order.iter().enumerate() {
            for d in &idx.deps[m] {
                let at = order.iter().position(|o| o == d).unwrap();
                assert!(at < i, "{d} must come before {m}");
            }
        }
    }

    #[test]
    fn unknown_modules_cycles_and_bad_lines_are_named() {
        let (d, idx) = index(DEP, "");
        let e = idx.resolve("nvme").unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: no module \"nvme\" in modules.dep (and not built into the kernel)",
                d.path().display()
            )
        );
        let (_d, idx) = index("a.ko: b.ko\nb.ko: a.ko\n", "");
        assert!(
            idx.resolve("a")
                .unwrap_err()
                .to_string()
                .contains("dependency cycle")
        );
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("modules.dep"), "a.ko b.ko\n").unwrap();
        let e = ModuleIndex::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("line 1: \"a.ko b.ko\" is not `module.ko: dependencies`"),
            "{e}"
        );
        let e = ModuleIndex::load(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("depmod -b ROOT VERSION"), "{e}");
    }

    #[test]
    fn compressed_modules_are_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut payload.as_slice(), &mut xz).unwrap();
        fs::write(dir.path().join("a.ko.xz"), &xz).unwrap();
        let zst = ruzstd::encoding::compress_to_vec(
            payload.as_slice(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        fs::write(dir.path().join("b.ko.zst"), &zst).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &payload).unwrap();
        fs::write(dir.path().join("c.ko.gz"), gz.finish().unwrap()).unwrap();
        fs::write(dir.path().join("d.ko"), &payload).unwrap();
        fs::write(dir.path().join("e.ko.xz"), b"not xz").unwrap();
        fs::write(
            dir.path().join("modules.dep"),
            "a.ko.xz:\nb.ko.zst:\nc.ko.gz:\nd.ko:\ne.ko.xz:\n",
        )
        .unwrap();
        let idx = ModuleIndex::load(dir.path()).unwrap();
        for m in ["a.ko.xz", "b.ko.zst", "c.ko.gz", "d.ko"] {
            assert_eq!(idx.read_uncompressed(m).unwrap(), payload, "{m}");
        }
        let e = idx.read_uncompressed("e.ko.xz").unwrap_err().to_string();
        assert!(e.contains("e.ko.xz: decompressing xz"), "{e}");
    }
}
