//! `image-tools disk create`: a whole disk in the Moho layout (DESIGN §2).
//!
//! Plans the partitions (pure, `moho_core::layout`), writes the GPT
//! (`moho_disk::create`), formats the ESP as FAT32 and STATE as ext4 in
//! place, puts systemd-boot and the boot selector on the ESP when given
//! (`crate::esp`), and copies a slot image into ROOT-A, which is then the one
//! bootable, successful slot. A file output is built under a temporary name
//! and renamed when complete, so a failure never leaves a half-made image
//! under the requested name; `--format qcow2|vhd|vmdk` converts that raw
//! file with `qemu-img`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use moho_core::layout::{DiskPlan, LayoutError, LayoutRequest, PartitionPlan, plan_disk};
use moho_core::slot_attrs::SlotAttributes;
use moho_disk::DiskError;
use moho_disk::create::{DiskGuids, InitialSlots, create_layout};

use crate::cli::{DiskCreateArgs, DiskFormat};
use crate::esp::{EspContent, EspError};

/// Why a disk could not be created.
#[derive(Debug, thiserror::Error)]
pub enum DiskCreateError {
    /// The output file exists and `--force` was not given.
    #[error("{}: already exists (use --force to replace it)", path.display())]
    Exists {
        /// The output.
        path: PathBuf,
    },
    /// A file output needs `--size`.
    #[error("{}: --size is required when creating a disk image file", path.display())]
    SizeRequired {
        /// The output.
        path: PathBuf,
    },
    /// The sizes do not make a layout.
    #[error("{}: {source}", path.display())]
    Layout {
        /// The output.
        path: PathBuf,
        /// Why.
        source: LayoutError,
    },
    /// The slot image is larger than a slot.
    #[error(
        "{}: slot image is {image_size} bytes but a slot is {slot_size} bytes",
        image.display()
    )]
    ImageTooBig {
        /// The slot image.
        image: PathBuf,
        /// Its size.
        image_size: u64,
        /// The slot size.
        slot_size: u64,
    },
    /// A file could not be read or written.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why.
        source: io::Error,
    },
    /// Writing the partition table failed.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// A formatting tool is not installed.
    #[error("{tool} not found: install the Debian package {package}")]
    MissingTool {
        /// The program.
        tool: &'static str,
        /// The package that has it.
        package: &'static str,
    },
    /// The ESP content could not be written.
    #[error(transparent)]
    Esp(#[from] EspError),
    /// An image format asked for a block device.
    #[error("{}: --format {format} makes an image file; a block device is always written raw", path.display(), format = format.name())]
    FormatOnBlockDevice {
        /// The format asked for.
        format: DiskFormat,
        /// The device.
        path: PathBuf,
    },
    /// A formatting tool failed.
    #[error("{tool} failed on {} ({status}): {stderr}", path.display())]
    Format {
        /// The program.
        tool: &'static str,
        /// The disk.
        path: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        stderr: String,
    },
}

impl DiskCreateError {
    /// Whether the error is about what the user asked for (exit code 3).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::Exists { .. }
                | Self::SizeRequired { .. }
                | Self::Layout { .. }
                | Self::ImageTooBig { .. }
                | Self::FormatOnBlockDevice { .. }
        ) || matches!(self, Self::Esp(e) if e.is_bad_input())
    }
}

/// What was made.
#[derive(Debug)]
pub struct DiskCreateReport {
    /// The output.
    pub path: PathBuf,
    /// Where the partitions are.
    pub plan: DiskPlan,
    /// Their GUIDs.
    pub guids: DiskGuids,
    /// Bytes copied into ROOT-A.
    pub slot_a_bytes: Option<u64>,
    /// Whether systemd-boot and the boot selector are on the ESP.
    pub bootable_esp: bool,
    /// The file format.
    pub format: DiskFormat,
}

impl fmt::Display for DiskCreateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ss = self.plan.request.sector_size;
        writeln!(
            f,
            "created {} ({} bytes{})",
            self.path.display(),
            self.plan.request.disk_size,
            match self.format {
                DiskFormat::Raw => String::new(),
                other => format!(", {}", other.name()),
            }
        )?;
        for (p, guid) in self.plan.partitions.iter().zip(self.guids.partitions) {
            writeln!(
                f,
                "  {} {:<10} start {:>12} size {:>12} partuuid {guid}",
                p.number,
                p.label,
                p.offset(ss),
                p.size(ss)
            )?;
        }
        if self.bootable_esp {
            writeln!(
                f,
                "  EFI-SYSTEM holds systemd-boot (EFI/BOOT/BOOTX64.EFI) and the boot selector \
                 (loader/entries/moho.conf)"
            )?;
        }
        match self.slot_a_bytes {
            Some(n) => write!(f, "  ROOT-A holds a {n}-byte image: priority 1, successful"),
            None => write!(
                f,
                "  no slot image given: both slots are empty and not bootable"
            ),
        }
    }
}

/// Runs `disk create`.
pub fn run(args: &DiskCreateArgs) -> Result<DiskCreateReport, DiskCreateError> {
    let out = &args.out;
    let is_block = fs::metadata(out).is_ok_and(|m| m.file_type().is_block_device());
    if is_block && args.format != DiskFormat::Raw {
        return Err(DiskCreateError::FormatOnBlockDevice {
            format: args.format,
            path: out.clone(),
        });
    }
    let esp = match (&args.boot_kernel, &args.boot_initramfs) {
        (Some(kernel), Some(initramfs)) => {
            let c = EspContent {
                systemd_boot: args.systemd_boot.clone(),
                kernel: kernel.clone(),
                initramfs: initramfs.clone(),
                cmdline: args.boot_cmdline.clone(),
            };
            c.check_inputs()?;
            Some(c)
        }
        _ => None,
    };
    let image_size = match &args.slot_a {
        Some(image) => Some(
            fs::metadata(image)
                .map_err(|source| DiskCreateError::Io {
                    path: image.clone(),
                    op: "reading the slot image",
                    source,
                })?
                .len(),
        ),
        None => None,
    };
    let disk_size = if is_block {
        block_device_size(out)?
    } else {
        if out.exists() && !args.force {
            return Err(DiskCreateError::Exists { path: out.clone() });
        }
        args.size
            .ok_or_else(|| DiskCreateError::SizeRequired { path: out.clone() })?
    };
    let plan = plan_disk(LayoutRequest {
        disk_size,
        esp_size: args.esp_size,
        slot_size: args.slot_size,
        sector_size: 512,
    })
    .map_err(|source| DiskCreateError::Layout {
        path: out.clone(),
        source,
    })?;
    if let (Some(image), Some(size)) = (&args.slot_a, image_size)
        && size > args.slot_size
    {
        return Err(DiskCreateError::ImageTooBig {
            image: image.clone(),
            image_size: size,
            slot_size: args.slot_size,
        });
    }

    let target = if is_block {
        out.clone()
    } else {
        temp_path(out, ".partial")
    };
    let result = build(
        &target,
        &plan,
        args.slot_a.as_deref(),
        esp.as_ref(),
        is_block,
    )
    .and_then(|made| {
        if args.format != DiskFormat::Raw {
            let qcow2 = temp_path(out, &format!(".{}.partial", args.format.name()));
            let converted = convert(&target, args.format, &qcow2);
            let _ = fs::remove_file(&target);
            converted.inspect_err(|_| {
                let _ = fs::remove_file(&qcow2);
            })?;
            Ok((made, qcow2))
        } else {
            Ok((made, target.clone()))
        }
    });
    match result {
        Ok(((guids, slot_a_bytes), finished)) => {
            if !is_block {
                fs::rename(&finished, out).map_err(|source| DiskCreateError::Io {
                    path: out.clone(),
                    op: "renaming the finished image into place",
                    source,
                })?;
            }
            Ok(DiskCreateReport {
                path: out.clone(),
                plan,
                guids,
                slot_a_bytes,
                bootable_esp: esp.is_some(),
                format: args.format,
            })
        }
        Err(e) => {
            if !is_block {
                let _ = fs::remove_file(&target);
            }
            Err(e)
        }
    }
}

/// Converts a finished raw image into `format` with `qemu-img`.
pub fn convert(raw: &Path, format: DiskFormat, to: &Path) -> Result<(), DiskCreateError> {
    let mut args: Vec<String> = vec!["convert".into(), "-q".into(), "-f".into(), "raw".into()];
    args.extend(format.qemu_img_args().iter().map(|a| (*a).to_owned()));
    args.push(raw.display().to_string());
    args.push(to.display().to_string());
    run_tool("qemu-img", "qemu-utils", to, &args)
}

fn temp_path(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    out.with_file_name(name)
}

fn block_device_size(path: &Path) -> Result<u64, DiskCreateError> {
    File::open(path)
        .and_then(|mut f| f.seek(SeekFrom::End(0)))
        .map_err(|source| DiskCreateError::Io {
            path: path.to_owned(),
            op: "reading the block device size",
            source,
        })
}

fn build(
    target: &Path,
    plan: &DiskPlan,
    slot_a: Option<&Path>,
    esp_content: Option<&EspContent>,
    is_block: bool,
) -> Result<(DiskGuids, Option<u64>), DiskCreateError> {
    if !is_block {
        let f = File::create(target).map_err(|source| DiskCreateError::Io {
            path: target.to_owned(),
            op: "creating the image file",
            source,
        })?;
        f.set_len(plan.request.disk_size)
            .map_err(|source| DiskCreateError::Io {
                path: target.to_owned(),
                op: "sizing the image file",
                source,
            })?;
    }
    let good = SlotAttributes::default()
        .with_fields(1, 0, true)
        .map_err(|e| DiskCreateError::Io {
            path: target.to_owned(),
            op: "setting slot attributes",
            source: io::Error::other(e),
        })?;
    let slots = InitialSlots {
        a: if slot_a.is_some() {
            good
        } else {
            SlotAttributes::default()
        },
        b: SlotAttributes::default(),
    };
    let guids = DiskGuids::random();
    // Filesystems first, then the slot image, then the partition table that
    // makes slot A bootable: a crash part-way leaves nothing claiming a slot.
    let [esp, a, _b, state] = &plan.partitions;
    let ss = plan.request.sector_size;
    format_esp(target, esp, ss)?;
    if let Some(content) = esp_content {
        content.write(target, esp.offset(ss))?;
    }
    format_state(target, state, ss)?;
    let slot_a_bytes = match slot_a {
        Some(image) => Some(copy_into(image, target, a.offset(ss))?),
        None => None,
    };
    create_layout(target, plan, slots, guids)?;
    Ok((guids, slot_a_bytes))
}

fn run_tool(
    tool: &'static str,
    package: &'static str,
    path: &Path,
    args: &[String],
) -> Result<(), DiskCreateError> {
    let output = Command::new(tool).args(args).output().map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            DiskCreateError::MissingTool { tool, package }
        } else {
            DiskCreateError::Io {
                path: path.to_owned(),
                op: "running a formatting tool",
                source: e,
            }
        }
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(DiskCreateError::Format {
            tool,
            path: path.to_owned(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

fn format_esp(target: &Path, esp: &PartitionPlan, ss: u64) -> Result<(), DiskCreateError> {
    let args = vec![
        "-F".into(),
        "32".into(),
        "-s".into(),
        "1".into(),
        "-n".into(),
        "EFI-SYSTEM".into(),
        "--offset".into(),
        (esp.offset(ss) / 512).to_string(),
        target.display().to_string(),
        (esp.size(ss) / 1024).to_string(),
    ];
    run_tool("mkfs.fat", "dosfstools", target, &args)
}

fn format_state(target: &Path, state: &PartitionPlan, ss: u64) -> Result<(), DiskCreateError> {
    let args = vec![
        "-t".into(),
        "ext4".into(),
        "-F".into(),
        "-q".into(),
        "-L".into(),
        "STATE".into(),
        "-E".into(),
        format!("offset={}", state.offset(ss)),
        target.display().to_string(),
        format!("{}k", state.size(ss) / 1024),
    ];
    run_tool("mke2fs", "e2fsprogs", target, &args)
}

fn copy_into(image: &Path, target: &Path, offset: u64) -> Result<u64, DiskCreateError> {
    let io_err = |path: &Path, op: &'static str| {
        let path = path.to_owned();
        move |source| DiskCreateError::Io { path, op, source }
    };
    let mut src = File::open(image).map_err(io_err(image, "opening the slot image"))?;
    let mut dst = OpenOptions::new()
        .write(true)
        .open(target)
        .map_err(io_err(target, "opening the disk"))?;
    dst.seek(SeekFrom::Start(offset))
        .map_err(io_err(target, "seeking to ROOT-A"))?;
    let mut buf = vec![0u8; 4 * 1024 * 1024];
    let mut total = 0u64;
    loop {
        let n = src
            .read(&mut buf)
            .map_err(io_err(image, "reading the slot image"))?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])
            .map_err(io_err(target, "writing ROOT-A"))?;
        total += n as u64;
    }
    dst.sync_all().map_err(io_err(target, "fsync"))?;
    Ok(total)
}
