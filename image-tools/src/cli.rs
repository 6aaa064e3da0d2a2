//! The `image-tools` command line: one clap definition per command, and the
//! dispatch from a parsed command line to the module that implements it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::disk_create;

/// Build and publish Moho OS images.
#[derive(Debug, Parser)]
#[command(name = "image-tools", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Whole-disk images in the Moho layout.
    #[command(subcommand)]
    Disk(DiskCommand),
}

/// `image-tools disk ...`
#[derive(Debug, Subcommand)]
pub enum DiskCommand {
    /// Write a GPT disk image in the Moho layout (ESP, ROOT-A, ROOT-B, STATE).
    Create(DiskCreateArgs),
}

/// `image-tools disk create`
#[derive(Debug, Args)]
pub struct DiskCreateArgs {
    /// Output: a disk image file (created) or a block device (overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Whole disk size, e.g. `4G`, `2GiB`. Ignored for block devices, which
    /// keep their own size.
    #[arg(long, value_parser = parse_bytes)]
    pub size: Option<u64>,
    /// Size of each root slot, a multiple of 1 MiB.
    #[arg(long, value_parser = parse_bytes)]
    pub slot_size: u64,
    /// Size of the EFI system partition, a multiple of 1 MiB.
    #[arg(long, value_parser = parse_bytes, default_value = "64MiB")]
    pub esp_size: u64,
    /// Slot image to copy into ROOT-A (which is then marked priority 1, successful).
    #[arg(long)]
    pub slot_a: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// Parses `4G`, `512MiB`, `1048576` into bytes (binary units either way).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_size::Config::new()
        .with_binary()
        .parse_size(s)
        .map_err(|e| format!("{s:?} is not a size ({e}); use e.g. 512M, 4G, 2GiB"))
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Disk(DiskCommand::Create(args)) => {
            let report = disk_create::run(&args)?;
            println!("{report}");
            Ok(())
        }
    }
}
