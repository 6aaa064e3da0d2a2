//! `update-agent daemon`: the node daemon (DESIGN §3 steps 2–13, §7).
//!
//! - [`runner`]: the loop that carries out the decisions below.
//! - [`reboot_gate`]: may a staged update reboot now, and if not, why (pure).
//! - [`trial`]: is a trial boot healthy, coming up, or failed (pure).
//! - [`schedule`]: when to check in next, with jitter (pure).
//! - [`status`]: the properties shown on D-Bus and by `update-agent status`.
//! - [`commands`]: requests from D-Bus to the loop, and their typed answers.
//! - [`progress`]: install progress into the status and the watchdog.
//! - [`wire_events`]: state machine reports as server events.
//! - [`outbox`]: events waiting for the server, persisted.
//! - [`login`]: logind (reboot, inhibitors, sessions) behind a trait.
//! - [`health`]: systemd's view of the boot's health checks behind a trait.
//! - [`server`]: the update server and FleetLock behind traits.
//! - [`clock`]: the time, injectable.
//! - [`notify`]: telling systemd (`sd_notify`).

pub mod clock;
pub mod commands;
pub mod health;
pub mod login;
pub mod notify;
pub mod outbox;
pub mod progress;
pub mod reboot_gate;
pub mod runner;
pub mod schedule;
pub mod server;
pub mod status;
pub mod trial;
pub mod wire_events;
