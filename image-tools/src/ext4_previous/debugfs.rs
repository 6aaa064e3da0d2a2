//! A [`Plan`](super::plan::Plan) carried out by e2fsprogs' `debugfs` (libext2fs
//! allocates, links, and keeps bitmaps, group counts and `metadata_csum`
//! checksums right), as one command file run with `debugfs -w -f`.
//!
//! `debugfs` reports a failed command on stderr and still exits 0, so any
//! line on stderr other than its banner fails the build. Its clock is set to
//! the build epoch (`set_current_time`), which makes the superblock's write
//! time and every time it stamps the same from build to build.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::plan::Op;
use crate::build::BuildError;

/// Why a plan cannot be written as debugfs commands.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// debugfs' command parser cannot quote it.
    #[error("{}: a path, link target or attribute name that is not UTF-8 or holds a double quote or newline cannot be edited by debugfs; rename it or build without --previous", .0.display())]
    Unquotable(PathBuf),
}

/// Extended attribute values to write to files before the script runs.
pub type Values = Vec<(PathBuf, Vec<u8>)>;

/// The debugfs command file for `ops`: `tree` is where the new bytes are,
/// `values` a directory for extended attribute values (`ea_set -f`).
pub fn script(
    ops: &[Op],
    tree: &Path,
    values: &Path,
    epoch: u32,
) -> Result<(String, Values), ScriptError> {
    let mut s = format!("set_current_time @{epoch}\n");
    let mut files = Vec::new();
    let mut cwd = PathBuf::from("/");
    let q = |p: &Path| {
        quote(p.as_os_str().as_bytes()).ok_or_else(|| ScriptError::Unquotable(p.to_owned()))
    };
    let img = |p: &Path| Path::new("/").join(p);
    let mut cd = |s: &mut String, path: &Path| -> Result<String, ScriptError> {
        let parent = img(path.parent().unwrap_or(Path::new("")));
        if parent != cwd {
            let _ = writeln!(s, "cd {}", q(&parent)?);
            cwd = parent;
        }
        let name = path
            .file_name()
            .map(|n| Path::new(n).to_owned())
            .unwrap_or_default();
        q(&name)
    };
    for op in ops {
        match op {
            Op::Remove(p) => {
                let _ = writeln!(s, "rm {}", q(&img(p))?);
            }
            Op::RemoveDir(p) => {
                let _ = writeln!(s, "rmdir {}", q(&img(p))?);
            }
            Op::Mkdir(p) => {
                let _ = writeln!(s, "mkdir {}", q(&img(p))?);
            }
            Op::Write(p) => {
                let name = cd(&mut s, p)?;
                let _ = writeln!(s, "write {} {name}", q(&tree.join(p))?);
            }
            Op::Symlink(p, target) => {
                let _ = writeln!(s, "symlink {} {}", q(&img(p))?, q(target)?);
            }
            Op::Fifo(p) => {
                let name = cd(&mut s, p)?;
                let _ = writeln!(s, "mknod {name} p");
            }
            Op::Device(p, char_dev, dev) => {
                let name = cd(&mut s, p)?;
                let (major, minor) = split_dev(*dev);
                let t = if *char_dev { 'c' } else { 'b' };
                let _ = writeln!(s, "mknod {name} {t} {major} {minor}");
            }
            Op::Link(p, to) => {
                let _ = writeln!(s, "ln {} {}", q(&img(to))?, q(&img(p))?);
            }
            Op::LinkCount(p, n) => {
                let _ = writeln!(s, "sif {} links_count {n}", q(&img(p))?);
            }
            Op::Mode(p, mode) => {
                let _ = writeln!(s, "sif {} mode 0{mode:o}", q(&img(p))?);
            }
            Op::Uid(p, uid) => {
                let _ = writeln!(s, "sif {} uid {uid}", q(&img(p))?);
            }
            Op::Gid(p, gid) => {
                let _ = writeln!(s, "sif {} gid {gid}", q(&img(p))?);
            }
            Op::SetXattr(p, name, value) => {
                let file = values.join(files.len().to_string());
                files.push((file.clone(), value.clone()));
                let name = quote(name).ok_or_else(|| ScriptError::Unquotable(p.clone()))?;
                let _ = writeln!(s, "ea_set -f {} {} {name}", q(&file)?, q(&img(p))?);
            }
            Op::RemoveXattr(p, name) => {
                let name = quote(name).ok_or_else(|| ScriptError::Unquotable(p.clone()))?;
                let _ = writeln!(s, "ea_rm {} {name}", q(&img(p))?);
            }
        }
    }
    Ok((s, files))
}

/// `"…"` for debugfs' parser, or none for bytes it cannot carry.
fn quote(bytes: &[u8]) -> Option<String> {
    if bytes.iter().any(|b| matches!(b, b'"' | b'\n' | 0)) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    Some(format!("\"{text}\""))
}

/// Linux's `major`/`minor` of a `dev_t`.
fn split_dev(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// Runs the command file on `image`, failing on any error debugfs reports.
pub fn run(image: &Path, script: &str, values: &[(PathBuf, Vec<u8>)]) -> Result<(), BuildError> {
    let io = |path: &Path, op: &'static str| {
        let path = path.to_owned();
        move |source| BuildError::Io { path, op, source }
    };
    for (file, value) in values {
        fs::write(file, value).map_err(io(file, "write"))?;
    }
    let cmds = PathBuf::from(format!("{}.debugfs", image.display()));
    fs::write(&cmds, script).map_err(io(&cmds, "write"))?;
    let out = Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&cmds)
        .arg(image)
        .output();
    let _ = fs::remove_file(&cmds);
    let out = out.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BuildError::MissingTool {
                tool: "debugfs",
                package: "e2fsprogs",
            }
        } else {
            BuildError::Io {
                path: PathBuf::from("debugfs"),
                op: "run",
                source: e,
            }
        }
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            let l = l.trim();
            !(l.is_empty() || l.starts_with("debugfs ") || l.starts_with("Setting current time"))
        })
        .collect();
    if !out.status.success() || !errors.is_empty() {
        let detail = errors
            .iter()
            .take(20)
            .copied()
            .collect::<Vec<_>>()
            .join("\n");
        let s = detail.to_lowercase();
        if s.contains("could not allocate") || s.contains("no free space") || s.contains("no space")
        {
            return Err(BuildError::TooSmall {
                detail: format!("debugfs ran out of space or inodes: {detail}"),
            });
        }
        return Err(BuildError::ToolFailed {
            tool: "debugfs",
            status: out.status.to_string(),
            stderr: detail,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_split_as_linux_does() {
        // makedev(1, 3) (/dev/null) and makedev(259, 70000).
        assert_eq!(split_dev(0x103), (1, 3));
        let dev = ((259u64 & 0xfff) << 8) | ((70000u64 & 0xff) | ((70000u64 & !0xff) << 12));
        assert_eq!(split_dev(dev), (259, 70000));
    }

    #[test]
    fn paths_are_quoted_and_unquotable_ones_refused() {
        assert_eq!(quote(b"/usr/a b").as_deref(), Some("\"/usr/a b\""));
        assert_eq!(quote(b"/a\"b"), None);
        assert_eq!(quote(b"/a\nb"), None);
        let ops = [Op::Remove(PathBuf::from("etc/x\"y"))];
        assert!(matches!(
            script(&ops, Path::new("/t"), Path::new("/v"), 0),
            Err(ScriptError::Unquotable(_))
        ));
    }

    #[test]
    fn files_and_nodes_are_made_in_their_directory() {
        let ops = [
            Op::Write(PathBuf::from("usr/bin/jq")),
            Op::Fifo(PathBuf::from("usr/bin/p")),
            Op::Device(PathBuf::from("dev/null"), true, 0x103),
            Op::Mode(PathBuf::from("usr/bin/jq"), 0o100_755),
        ];
        let (s, _) = script(&ops, Path::new("/t"), Path::new("/v"), 7).unwrap();
        assert_eq!(
            s,
            "set_current_time @7\ncd \"/usr/bin\"\nwrite \"/t/usr/bin/jq\" \"jq\"\n\
             mknod \"p\" p\ncd \"/dev\"\nmknod \"null\" c 1 3\nsif \"/usr/bin/jq\" mode 0100755\n"
        );
    }
}
