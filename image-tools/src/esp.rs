//! The EFI system partition's content (DESIGN §2, §4): systemd-boot as the
//! removable-media loader `EFI/BOOT/BOOTX64.EFI`, and one loader entry that
//! starts the boot selector (a kernel and the initramfs with `boot-select`).
//!
//! | file | content |
//! |---|---|
//! | `EFI/BOOT/BOOTX64.EFI` | systemd-boot (Debian `systemd-boot-efi`) |
//! | `loader/loader.conf` | `default moho.conf`, `timeout 0` (no menu) |
//! | `loader/entries/moho.conf` | `linux /moho/vmlinuz`, `initrd /moho/initrd.img`, `options ...` |
//! | `moho/vmlinuz`, `moho/initrd.img` | the boot selector |
//!
//! Written into the FAT filesystem in place with mtools (`-i DISK@@OFFSET`),
//! so no loop device or mount is needed.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `systemd-boot-efi` puts the loader.
pub const DEFAULT_SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
/// The loader entry's file name.
pub const ENTRY_NAME: &str = "moho.conf";

/// What goes onto the ESP.
#[derive(Debug, Clone)]
pub struct EspContent {
    /// systemd-boot's EFI binary.
    pub systemd_boot: PathBuf,
    /// The boot selector's kernel.
    pub kernel: PathBuf,
    /// The boot selector's initramfs (`image-tools initramfs`).
    pub initramfs: PathBuf,
    /// The boot selector kernel's command line.
    pub cmdline: String,
}

/// Why the ESP could not be filled.
#[derive(Debug, thiserror::Error)]
pub enum EspError {
    /// An input file is missing.
    #[error("{}: {what}: {source}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// What it was for.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// mtools is not installed.
    #[error("{tool} not found: install the Debian package mtools")]
    MissingTool {
        /// The program.
        tool: &'static str,
    },
    /// An mtools command failed.
    #[error("{} (ESP at byte {offset}): {tool} {args}: {stderr}", disk.display())]
    Tool {
        /// The disk.
        disk: PathBuf,
        /// The ESP's offset.
        offset: u64,
        /// The program.
        tool: &'static str,
        /// Its arguments after the image.
        args: String,
        /// What it printed.
        stderr: String,
    },
    /// A staging file could not be written.
    #[error("{}: {source}", path.display())]
    Stage {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl EspError {
    /// Whether the error is about what the user asked for (exit code 3).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Input { .. })
    }
}

/// The text of `loader/loader.conf`.
pub fn loader_conf() -> String {
    format!("default {ENTRY_NAME}\ntimeout 0\neditor no\n")
}

/// The text of `loader/entries/moho.conf`.
pub fn entry_conf(cmdline: &str) -> String {
    let mut s =
        String::from("title Moho boot selector\nlinux /moho/vmlinuz\ninitrd /moho/initrd.img\n");
    if !cmdline.trim().is_empty() {
        s.push_str(&format!("options {}\n", cmdline.trim()));
    }
    s
}

impl EspContent {
    /// Checks that every input file is readable, before anything is written.
    pub fn check_inputs(&self) -> Result<(), EspError> {
        for (path, what) in [
            (
                &self.systemd_boot,
                "systemd-boot EFI binary (Debian package systemd-boot-efi)",
            ),
            (&self.kernel, "boot selector kernel"),
            (&self.initramfs, "boot selector initramfs"),
        ] {
            std::fs::File::open(path).map_err(|source| EspError::Input {
                path: path.clone(),
                what,
                source,
            })?;
        }
        Ok(())
    }

    /// Writes the files into the FAT filesystem at byte `offset` of `disk`.
    pub fn write(&self, disk: &Path, offset: u64) -> Result<(), EspError> {
        self.check_inputs()?;
        let stage = tempfile::tempdir().map_err(|source| EspError::Stage {
            path: std::env::temp_dir(),
            source,
        })?;
        let loader = stage.path().join("loader.conf");
        let entry = stage.path().join(ENTRY_NAME);
        for (p, text) in [
            (&loader, loader_conf()),
            (&entry, entry_conf(&self.cmdline)),
        ] {
            std::fs::write(p, text).map_err(|source| EspError::Stage {
                path: p.clone(),
                source,
            })?;
        }
        let image = format!("{}@@{offset}", disk.display());
        let mtool = |tool: &'static str, args: &[&str]| -> Result<(), EspError> {
            let out = Command::new(tool)
                .arg("-i")
                .arg(&image)
                .args(args)
                .env("MTOOLS_SKIP_CHECK", "1")
                .output()
                .map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => EspError::MissingTool { tool },
                    _ => EspError::Tool {
                        disk: disk.to_owned(),
                        offset,
                        tool,
                        args: args.join(" "),
                        stderr: e.to_string(),
                    },
                })?;
            if out.status.success() {
                Ok(())
            } else {
                Err(EspError::Tool {
                    disk: disk.to_owned(),
                    offset,
                    tool,
                    args: args.join(" "),
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                })
            }
        };
        mtool(
            "mmd",
            &[
                "::/EFI",
                "::/EFI/BOOT",
                "::/loader",
                "::/loader/entries",
                "::/moho",
            ],
        )?;
        let s = |p: &Path| p.display().to_string();
        for (from, to) in [
            (s(&self.systemd_boot), "::/EFI/BOOT/BOOTX64.EFI"),
            (s(&self.kernel), "::/moho/vmlinuz"),
            (s(&self.initramfs), "::/moho/initrd.img"),
            (s(&loader), "::/loader/loader.conf"),
            (s(&entry), "::/loader/entries/moho.conf"),
        ] {
            mtool("mcopy", &["-o", &from, to])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_starts_the_selector_without_a_menu() {
        assert_eq!(loader_conf(), "default moho.conf\ntimeout 0\neditor no\n");
        assert_eq!(
            entry_conf(" console=ttyS0 "),
            "title Moho boot selector\nlinux /moho/vmlinuz\ninitrd /moho/initrd.img\noptions console=ttyS0\n"
        );
        assert!(!entry_conf("").contains("options"));
    }

    #[test]
    fn missing_inputs_are_named_before_anything_is_written() {
        let c = EspContent {
            systemd_boot: PathBuf::from("/nonexistent/systemd-bootx64.efi"),
            kernel: PathBuf::from("/nonexistent/vmlinuz"),
            initramfs: PathBuf::from("/nonexistent/initrd.img"),
            cmdline: String::new(),
        };
        let e = c.write(Path::new("/nonexistent/disk"), 0).unwrap_err();
        assert!(e.is_bad_input());
        assert!(
            e.to_string()
                .starts_with("/nonexistent/systemd-bootx64.efi: systemd-boot EFI binary"),
            "{e}"
        );
    }
}
