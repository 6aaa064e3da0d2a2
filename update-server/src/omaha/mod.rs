//! Omaha v3 for Flatcar Container Linux's `update_engine` (issue 17): the
//! XML documents ([`wire`]), the request checked into narrow types
//! ([`request`]), what its events mean ([`events`]) and change ([`plan`]),
//! a Flatcar release as registered ([`release`]),
//! the answer ([`answer`]), and the endpoint that runs them against the
//! same rollouts as Moho nodes ([`endpoint`]). Flatcar payloads are signed
//! by Flatcar's key, outside Moho's TUF chain; Omaha reports are unsigned,
//! so they can pause a rollout on failures but never count toward a health
//! gate.

pub mod answer;
pub mod endpoint;
pub mod events;
pub mod plan;
pub mod release;
pub mod request;
pub mod wire;
