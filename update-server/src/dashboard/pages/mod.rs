//! One module per dashboard page. Each handler checks the session, reads
//! what it shows, and answers either the whole page or, for `?part=live`,
//! only the region the script refreshes.

pub mod audit;
pub mod enrollment;
pub mod events;
pub mod fleetlock;
pub mod groups;
pub mod login;
pub mod node;
pub mod nodes;
pub mod overview;
pub mod releases;
pub mod rollout;

use axum::response::{IntoResponse, Response};
use maud::Markup;

/// The whole page, or only its live region.
pub fn answer(live_only: bool, live: Markup, whole: impl FnOnce(Markup) -> Markup) -> Response {
    if live_only {
        live.into_response()
    } else {
        whole(live).into_response()
    }
}
