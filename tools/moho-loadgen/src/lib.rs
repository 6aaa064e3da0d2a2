//! The load generator behind `moho-loadgen`, a benchmark tool kept out of
//! the shipped crates (`scripts/bench-server.sh`, `scripts/bench-dashboard.sh`):
//! a simulated fleet whose keys are derived from the node index, so millions
//! of nodes need no key storage. It seeds through the server's storage
//! library and drives the real server over HTTP.
//!
//! - [`fleet`]: deterministic node ids and keys, and the bulk seeding of the
//!   database with N registered nodes.
//! - [`dashboard`]: server and wall time of dashboard pages, logged in
//!   like a browser.
//! - [`drive`]: concurrent signed check-ins (and some event reports)
//!   against a running server, with throughput and latency percentiles.

pub mod dashboard;
pub mod drive;
pub mod fleet;
