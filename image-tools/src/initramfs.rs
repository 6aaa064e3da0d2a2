//! `image-tools initramfs`: the boot initramfs, a gzip-compressed newc cpio
//! archive with `boot-select` as `/init` and the kernel modules it needs to
//! see the disk (DESIGN §4).
//!
//! Layout: `/init`; `/dev/console` (the kernel opens it for `/init`); empty
//! `/proc`, `/sys`, `/run`, `/sysroot`; the modules, uncompressed, under
//! `/lib/modules/<version>/` at their `modules.dep` paths; and
//! `/lib/moho/modules.load`, the order `boot-select` loads them in. Every
//! entry is owned by root with time 0 and the entries are sorted, so the same
//! inputs give the same bytes.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use cpio::newc::Builder;
use moho_core::boot_files::INITRAMFS_MODULES_LIST;

use crate::cli::InitramfsArgs;
use crate::kmod_deps::{KmodError, ModuleIndex, uncompressed_path};

/// The `boot-select` binary looked for beside `image-tools` when `--init`
/// is not given.
pub const DEFAULT_INIT_NAME: &str = "boot-select";

/// Why the initramfs could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// The output exists and `--force` was not given.
    #[error("{}: already exists (use --force to replace it)", path.display())]
    Exists {
        /// The output.
        path: PathBuf,
    },
    /// The init program could not be read.
    #[error("{}: cannot read the init program: {source}", path.display())]
    Init {
        /// The program.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The init program is not a 64-bit little-endian ELF executable.
    #[error("{}: not a 64-bit little-endian ELF executable", path.display())]
    InitNotElf {
        /// The program.
        path: PathBuf,
    },
    /// The init program needs a dynamic loader the initramfs does not have.
    #[error(
        "{}: dynamically linked (interpreter {interpreter}); /init must be static: \
         build boot-select with `cargo rustc -p update-agent --bin boot-select --release -- \
         -C target-feature=+crt-static`",
        path.display()
    )]
    InitDynamic {
        /// The program.
        path: PathBuf,
        /// Its `PT_INTERP`.
        interpreter: String,
    },
    /// The modules directory has no usable name for the kernel version.
    #[error("{}: expected a /lib/modules/<version> directory", dir.display())]
    NoVersion {
        /// The directory.
        dir: PathBuf,
    },
    /// Gathering the modules failed.
    #[error(transparent)]
    Kmod(#[from] KmodError),
    /// Writing the archive failed.
    #[error("{}: {op}: {source}", path.display())]
    Write {
        /// The output.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
}

impl InitramfsError {
    /// Whether the error is about what the user asked for (exit code 3).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::Exists { .. }
                | Self::InitNotElf { .. }
                | Self::InitDynamic { .. }
                | Self::NoVersion { .. }
                | Self::Kmod(KmodError::UnknownModule { .. })
        )
    }
}

/// What was written.
#[derive(Debug)]
pub struct InitramfsReport {
    /// The output.
    pub path: PathBuf,
    /// Its size in bytes (compressed).
    pub bytes: u64,
    /// The init program used.
    pub init: PathBuf,
    /// The kernel version of the modules.
    pub kernel_version: String,
    /// Module paths in load order.
    pub modules: Vec<String>,
    /// Requested names that are built into the kernel.
    pub builtin: Vec<String>,
}

impl fmt::Display for InitramfsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wrote {} ({} bytes, gzip-compressed newc cpio)",
            self.path.display(),
            self.bytes
        )?;
        writeln!(f, "  /init: {}", self.init.display())?;
        write!(
            f,
            "  {} modules for kernel {}, in load order:",
            self.modules.len(),
            self.kernel_version
        )?;
        for m in &self.modules {
            write!(f, "\n    {m}")?;
        }
        if !self.builtin.is_empty() {
            write!(f, "\n  built into the kernel: {}", self.builtin.join(", "))?;
        }
        Ok(())
    }
}

/// One archive member.
#[derive(Debug)]
enum Member {
    Dir,
    File { mode: u32, bytes: Vec<u8> },
    CharDevice { major: u32, minor: u32 },
}

/// Runs `initramfs`.
pub fn run(args: &InitramfsArgs) -> Result<InitramfsReport, InitramfsError> {
    let out = &args.out;
    if out.exists() && !args.force {
        return Err(InitramfsError::Exists { path: out.clone() });
    }
    let init_path = match &args.init {
        Some(p) => p.clone(),
        None => default_init(),
    };
    let init = fs::read(&init_path).map_err(|source| InitramfsError::Init {
        path: init_path.clone(),
        source,
    })?;
    check_static(&init_path, &init)?;
    let dir = &args.kernel_modules;
    let version = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|v| !v.is_empty())
        .ok_or_else(|| InitramfsError::NoVersion { dir: dir.clone() })?;
    let index = ModuleIndex::load(dir)?;
    let (order, builtin) = index.resolve_all(&args.modules)?;

    let mut members: Vec<(String, Member)> = Vec::new();
    for d in ["dev", "proc", "sys", "run", "sysroot", "lib/moho"] {
        members.push((d.to_owned(), Member::Dir));
    }
    members.push((
        "dev/console".to_owned(),
        Member::CharDevice { major: 5, minor: 1 },
    ));
    members.push((
        "init".to_owned(),
        Member::File {
            mode: 0o755,
            bytes: init,
        },
    ));
    let mut list = String::new();
    for m in &order {
        let at = format!("lib/modules/{version}/{}", uncompressed_path(m));
        list.push_str(&format!("/{at}\n"));
        members.push((
            at,
            Member::File {
                mode: 0o644,
                bytes: index.read_uncompressed(m)?,
            },
        ));
    }
    members.push((
        INITRAMFS_MODULES_LIST.trim_start_matches('/').to_owned(),
        Member::File {
            mode: 0o644,
            bytes: list.into_bytes(),
        },
    ));
    add_parent_dirs(&mut members);
    members.sort_by(|a, b| a.0.cmp(&b.0));

    let bytes = write_archive(out, &members)?;
    Ok(InitramfsReport {
        path: out.clone(),
        bytes,
        init: init_path,
        kernel_version: version,
        modules: order.iter().map(|m| uncompressed_path(m)).collect(),
        builtin,
    })
}

/// `boot-select` beside the running `image-tools`.
pub fn default_init() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(DEFAULT_INIT_NAME)))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_INIT_NAME))
}

/// Refuses anything but a 64-bit little-endian ELF without an interpreter.
pub fn check_static(path: &Path, elf: &[u8]) -> Result<(), InitramfsError> {
    let not_elf = || InitramfsError::InitNotElf {
        path: path.to_owned(),
    };
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return Err(not_elf());
    }
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let as_usize = |v: u64| usize::try_from(v).ok();
    let phoff = u64_at(32).and_then(as_usize).ok_or_else(not_elf)?;
    let phentsize = usize::from(u16_at(54).ok_or_else(not_elf)?);
    let phnum = usize::from(u16_at(56).ok_or_else(not_elf)?);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        const PT_INTERP: u32 = 3;
        if u32_at(ph).ok_or_else(not_elf)? == PT_INTERP {
            let off = u64_at(ph + 8).and_then(as_usize).ok_or_else(not_elf)?;
            let len = u64_at(ph + 32).and_then(as_usize).ok_or_else(not_elf)?;
            let interp = elf.get(off..off.saturating_add(len)).ok_or_else(not_elf)?;
            return Err(InitramfsError::InitDynamic {
                path: path.to_owned(),
                interpreter: String::from_utf8_lossy(interp)
                    .trim_end_matches('\0')
                    .to_owned(),
            });
        }
    }
    Ok(())
}

fn add_parent_dirs(members: &mut Vec<(String, Member)>) {
    let mut dirs: Vec<String> = Vec::new();
    for (name, _) in members.iter() {
        let mut p = Path::new(name).parent();
        while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
            dirs.push(d.to_string_lossy().into_owned());
            p = d.parent();
        }
    }
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        if !members.iter().any(|(n, _)| *n == d) {
            members.push((d, Member::Dir));
        }
    }
}

fn write_archive(out: &Path, members: &[(String, Member)]) -> Result<u64, InitramfsError> {
    let err = |op| {
        let path = out.to_owned();
        move |source| InitramfsError::Write { path, op, source }
    };
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(err("creating a temporary file"))?;
    let gz =
        flate2::write::GzEncoder::new(BufWriter::new(tmp.as_file()), flate2::Compression::best());
    let mut w = gz;
    for (ino, (name, member)) in (1u32..).zip(members) {
        let b = Builder::new(name).ino(ino).uid(0).gid(0).mtime(0);
        w = match member {
            Member::Dir => b.mode(0o040_755).nlink(2).write(w, 0).finish(),
            Member::CharDevice { major, minor } => b
                .mode(0o020_600)
                .nlink(1)
                .rdev_major(*major)
                .rdev_minor(*minor)
                .write(w, 0)
                .finish(),
            Member::File { mode, bytes } => {
                let len = u32::try_from(bytes.len()).map_err(|_| {
                    err("adding a file")(io::Error::other(format!(
                        "{name} is larger than a newc archive member may be (4 GiB)"
                    )))
                })?;
                let mut fw = b.mode(0o100_000 | mode).nlink(1).write(w, len);
                fw.write_all(bytes).map_err(err("writing the archive"))?;
                fw.finish()
            }
        }
        .map_err(err("writing the archive"))?;
    }
    let w = cpio::newc::trailer(w).map_err(err("writing the archive"))?;
    let mut buf = w.finish().map_err(err("compressing the archive"))?;
    buf.flush().map_err(err("writing the archive"))?;
    drop(buf);
    tmp.as_file().sync_all().map_err(err("fsync"))?;
    let file = tmp
        .persist(out)
        .map_err(|e| err("renaming into place")(e.error))?;
    let len = file.metadata().map_err(err("reading the size"))?.len();
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err("fsync of the directory"))?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header with `phnum` program headers of `types`.
    pub(crate) fn elf(types: &[u32], interp: &str) -> Vec<u8> {
        let mut e = vec![0u8; 64];
        e[..4].copy_from_slice(b"\x7fELF");
        e[4] = 2;
        e[5] = 1;
        e[32..40].copy_from_slice(&64u64.to_le_bytes());
        e[54..56].copy_from_slice(&56u16.to_le_bytes());
        e[56..58].copy_from_slice(&u16::try_from(types.len()).unwrap().to_le_bytes());
        let data_at = 64 + 56 * types.len();
        for t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            ph[8..16].copy_from_slice(&(data_at as u64).to_le_bytes());
            ph[32..40].copy_from_slice(&(interp.len() as u64).to_le_bytes());
            e.extend(ph);
        }
        e.extend(interp.as_bytes());
        e
    }

    #[test]
    fn only_static_elf_programs_pass() {
        let p = Path::new("/x/boot-select");
        assert!(check_static(p, &elf(&[1, 1], "")).is_ok());
        let e = check_static(p, &elf(&[6, 3, 1], "/lib64/ld-linux-x86-64.so.2\0")).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "/x/boot-select: dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)"
            ),
            "{e}"
        );
        assert!(matches!(
            check_static(p, b"#!/bin/sh\n"),
            Err(InitramfsError::InitNotElf { .. })
        ));
        let mut truncated = elf(&[3], "/ld");
        truncated.truncate(80);
        assert!(matches!(
            check_static(p, &truncated),
            Err(InitramfsError::InitNotElf { .. })
        ));
    }
}
