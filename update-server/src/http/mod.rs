//! HTTP handlers, one module per surface.
//!
//! - [`body`]: size-limited JSON bodies with JSON errors.
//! - [`auth`]: bearer tokens and roles of the admin API.
//! - [`node`]: signed check-ins and event reports.
//! - [`fleetlock`]: FleetLock reboot coordination.
//! - [`admin_fleet`], [`admin_rollouts`], [`admin_repo`]: the admin API.
//! - [`repo`]: static TUF repository files with Range and ETag.
//! - [`health`], [`openapi`]: probes and the API description.

pub mod admin_fleet;
pub mod admin_repo;
pub mod admin_rollouts;
pub mod auth;
pub mod body;
pub mod fleetlock;
pub mod health;
pub mod node;
pub mod openapi;
pub mod repo;
