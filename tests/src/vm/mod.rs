//! Virtual machines for the boot tests (DESIGN §8.3): real Debian
//! kernels, the static `boot-select`, test OS images built from busybox or Debian,
//! qemu under software emulation (`-accel tcg`) with its serial console read
//! line by line.
//!
//! - [`cache`]: where downloads and slow builds are kept between runs.
//! - [`kernel`]: the one choice of Debian kernel (generic or cloud), fetched with `apt-get download`.
//! - [`boot_select`]: building `boot-select` as a static program.
//! - [`image`]: initramfs, slot root trees and disks for the VMs.
//! - [`debian`]: a Debian root with systemd and dbus (`debootstrap`).
//! - [`node_os`]: the stock node OS by `image-tools os build`, cached per release content.
//! - [`qemu`]: starting a VM, reading its console, cutting its power.
//! - [`server`]: the real `update-server`, reachable from the guest over HTTPS.
//! - [`story`]: a systemd VM updated by its agent units from that server.
//! - [`provision`]: stock disks provisioned through each transport.

pub mod boot_select;
pub mod cache;
pub mod debian;
pub mod image;
pub mod kernel;
pub mod node_os;
pub mod provision;
pub mod qemu;
pub mod server;
pub mod story;
