//! The Moho update server (DESIGN §5, §6): serves the signed repository,
//! answers node check-ins with rollout decisions, takes signed event
//! reports, coordinates reboots with FleetLock, and offers an admin API.
//!
//! `main.rs` only parses the command line; everything else is here so that
//! tests run the real server in-process on loopback.

pub mod app;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod decide;
pub mod error;
pub mod http;
pub mod loadgen;
pub mod metrics;
pub mod repository;
pub mod rollout_ops;
pub mod serve;
pub mod store;
