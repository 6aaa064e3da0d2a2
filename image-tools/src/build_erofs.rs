//! erofs slot images: `mkfs.erofs` with a fixed timestamp (`-T`) and UUID,
//! which makes the output a function of the tree's content and metadata.

use std::path::Path;
use std::process::Command;

use crate::build::{BuildError, run_tool};

/// Writes an erofs image of `tree` to `image`.
pub fn make(tree: &Path, image: &Path, uuid: &str, epoch: u32) -> Result<(), BuildError> {
    let mut cmd = Command::new("mkfs.erofs");
    // -T already fixes every time; an inherited SOURCE_DATE_EPOCH would only
    // switch erofs to larger (extended) inodes.
    cmd.env_remove("SOURCE_DATE_EPOCH")
        .arg("--quiet")
        .arg(format!("-T{epoch}"))
        .arg(format!("-U{uuid}"))
        .arg(image)
        .arg(tree);
    run_tool(cmd, "mkfs.erofs", "erofs-utils")
}
