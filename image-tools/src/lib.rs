//! `image-tools`: building what ships to the fleet.
//!
//! - [`cli`] — the command-line surface and dispatch.
//! - [`disk_create`] — `disk create`, a bootable GPT disk image in the Moho layout; [`esp`]
//!   puts systemd-boot and the boot selector on its ESP.
//! - [`keygen`] — `keygen`, the TUF role keys (key files: `moho_repo::keys`).
//! - [`build`] — `build`, a reproducible slot image ([`build_ext4`], [`build_erofs`],
//!   [`rootfs`]) with its chunk index and release manifest; [`ext4_previous`] builds it
//!   on the previous release's image (`--previous`).
//! - [`repo`] — the `repo` commands' glue to the repository library (`moho-repo`, which
//!   edits and signs): [`repo_init`], [`repo_add`], [`repo_promote`], [`repo_refresh`],
//!   [`repo_list`], [`repo_rotate`], [`repo_migrate`].
//! - [`verify`] — `verify`, a repository, target or file checked as a node would;
//!   [`repo_source`] reads repositories from directories and URLs.
//! - [`publish`] — `publish`, upload a signed repository to an update server.
//! - [`initramfs`] — `initramfs`, the boot initramfs (`boot-select` as `/init`, kernel
//!   modules gathered by [`kmod_deps`]).
//! - [`os`] — `os build`, a node OS release from Debian packages (debootstrap).
//! - [`exit`] — exit codes.

pub mod build;
pub mod build_erofs;
pub mod build_ext4;
pub mod cli;
pub mod disk_create;
pub mod esp;
pub mod exit;
pub mod ext4_previous;
pub mod initramfs;
pub mod keygen;
pub mod kmod_deps;
pub mod os;
pub mod publish;
pub mod repo;
pub mod repo_add;
pub mod repo_init;
pub mod repo_list;
pub mod repo_migrate;
pub mod repo_promote;
pub mod repo_refresh;
pub mod repo_rotate;
pub mod repo_source;
pub mod rootfs;
pub mod verify;
