//! The Moho node agent.
//!
//! - [`cli`]: the command-line surface and dispatch.
//! - [`config`]: the TOML drop-in configuration (raw → merged → validated).
//! - [`config_cmd`]: `update-agent config`, the resolved configuration and its sources.
//! - [`slots_cmd`]: `update-agent slots ...`, reading and changing the slot table.
//! - [`slots_view`]: how the slot table is shown (text and JSON).
//! - [`booted`]: which slot the running system booted from.
//! - [`system`]: the running system (kernel command line, root device) behind a trait.
//! - [`disk_locate`]: which disk holds the slots when `--disk` is not given.
//! - [`exit`]: exit codes.

pub mod booted;
pub mod cli;
pub mod config;
pub mod config_cmd;
pub mod disk_locate;
pub mod exit;
pub mod slots_cmd;
pub mod slots_view;
pub mod system;
