//! The Moho update server (DESIGN §5, §6): serves the signed repository,
//! answers node check-ins with rollout decisions, takes signed event
//! reports, coordinates reboots with FleetLock, and offers an admin API.
//!
//! `main.rs` only parses the command line; everything else is here so that
//! tests run the real server in-process on loopback.

pub mod backup_cmd;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod enrollment;
pub mod enrollment_cmd;
pub mod error;
pub mod fleet_ops;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod live_events;
pub mod metrics;
pub mod offer;
pub mod omaha;
pub mod repository;
pub mod rollout_ops;
pub mod router;
pub mod serve;
pub mod service;
pub mod state;
pub mod store;
pub mod token_cmd;
pub mod tokens;
