//! `image-tools`: building what ships to the fleet.
//!
//! - [`cli`]: the command-line surface and dispatch.
//! - [`disk_create`]: `disk create`, a bootable GPT disk image in the Moho layout.
//! - [`exit`]: exit codes.

pub mod cli;
pub mod disk_create;
pub mod exit;
