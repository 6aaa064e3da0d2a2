//! HTTP handlers, one module per surface.
//!
//! - [`body`]: size-limited JSON bodies with JSON errors.
//! - [`auth`]: bearer tokens and roles of the admin API.
//! - [`node`]: signed check-ins and event reports.
//! - [`fleetlock`]: FleetLock reboot coordination.
//! - [`limits`]: per-source rate limits on unauthenticated requests.
//! - [`admin_fleet`], [`admin_rollouts`], [`admin_repo`], [`admin_tokens`],
//!   [`admin_events`], [`admin_flatcar`], [`admin_enrollment`]: the admin API.
//! - [`repo`]: static TUF repository files with Range and ETag; [`file_body`]:
//!   their bodies, in large bounded reads.
//! - [`health`], [`openapi`]: probes and the API description.

pub mod admin_enrollment;
pub mod admin_events;
pub mod admin_flatcar;
pub mod admin_fleet;
pub mod admin_repo;
pub mod admin_rollouts;
pub mod admin_tokens;
pub mod auth;
pub mod body;
pub mod file_body;
pub mod fleetlock;
pub mod health;
pub mod limits;
pub mod node;
pub mod openapi;
pub mod repo;
