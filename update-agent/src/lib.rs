//! The Moho node agent.
//!
//! - [`cli`]: the command-line surface and dispatch.
//! - [`config`]: the TOML drop-in configuration (raw → merged → validated).
//! - [`config_cmd`]: `update-agent config`, the resolved configuration and its sources.
//! - [`service`]: the service layer: slots, install, the disk handle.
//! - [`slots_cmd`]: `update-agent slots ...` and local `mark-good` (CLI adapter).
//! - [`slots_view`]: how the slot table is shown (text and JSON).
//! - [`state`]: the agent state machine and its persisted copy.
//! - [`atomic_file`]: crash-safe replacement of state files.
//! - [`install`]: the install path's parts (choose, plan, stream, read back).
//! - [`install_cmd`]: `update-agent install` (CLI adapter).
//! - [`fetch`]: HTTPS / file transports for the repository.
//! - [`repo_client`]: the TUF client and its persisted rollback protection.
//! - [`denylist`]: versions this node will not install again.
//! - [`os_release`]: the booted version.
//! - [`booted`]: which slot the running system booted from.
//! - [`system`]: the running system (kernel command line, root device) behind a trait.
//! - [`disk_locate`]: which disk holds the slots when `--disk` is not given.
//! - [`exit`]: exit codes.
//! - [`provision`]: first-boot provisioning: the provision document, its sources, the files it makes.
//! - [`provision_cmd`]: `update-agent provision` (CLI adapter).
//! - [`grow_state`]: `update-agent grow-state`, growing STATE (partition, then ext4 online) to fill the disk.
//! - [`daemon_cmd`]: `update-agent daemon`, wiring the daemon to the real system.
//! - [`agent_cmds`]: `status`, `check`, `reboot`, `rollback`, `cancel`, `mark-good`, `denylist`.
//! - [`daemon`]: `update-agent daemon`, the node daemon (check, install, reboot, mark good).
//! - [`dbus`]: our D-Bus interface `org.moho.Agent1` (service and client).
//! - [`node_identity`]: the node's id, key and request counter.
//! - [`boot`]: `boot-select`, the `/init` of the boot initramfs (selector and slot-initramfs roles).

pub mod agent_cmds;
pub mod atomic_file;
pub mod boot;
pub mod booted;
pub mod cli;
pub mod config;
pub mod config_cmd;
pub mod daemon;
pub mod daemon_cmd;
pub mod dbus;
pub mod denylist;
pub mod disk_locate;
pub mod exit;
pub mod fetch;
pub mod grow_state;
pub mod install;
pub mod install_cmd;
pub mod node_identity;
pub mod os_release;
pub mod provision;
pub mod provision_cmd;
pub mod repo_client;
pub mod service;
pub mod slots_cmd;
pub mod slots_view;
pub mod state;
pub mod system;
