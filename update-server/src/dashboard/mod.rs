//! The channel dashboard (issue 7): server-rendered HTML pages under `/ui/`
//! on the same port as the API, reading the same store and changing
//! rollouts through the same operations ([`crate::rollout_ops`]) with the
//! same roles as the admin API. Logging in exchanges an admin or viewer
//! token for a session cookie ([`session`]); every form carries a CSRF
//! secret; viewers get no action buttons and a 403 if they post anyway.
//! Every string is escaped by the template engine (`maud`), and the
//! Content-Security-Policy allows only this server's own script and
//! stylesheet ([`headers`]). Pages refresh their figures by asking for
//! their live fragment every few seconds (`static/app.js`).
//!
//! - [`pages`]: one module per page; [`actions`]: confirmation pages and
//!   the forms that change a rollout; [`policy_form`]: the "change ramp or
//!   caps" form; [`changes`]: the forms that create rollouts, channels,
//!   groups, holds and pins, remove holds, free FleetLock slots, and
//!   create and revoke enrolment tokens.
//! - [`summary`]: the cached fleet summary behind the overview;
//!   [`progress`], [`timeline`]: a rollout's figures and chart data.
//! - [`scope`]: the top bar's group selector.
//! - [`charts`], [`format`], [`words`], [`widgets`], [`layout`]: drawing.

pub mod actions;
pub mod assets;
pub mod changes;
pub mod charts;
pub mod error;
pub mod format;
pub mod headers;
pub mod layout;
pub mod pages;
pub mod policy_form;
pub mod progress;
pub mod scope;
pub mod session;
pub mod summary;
pub mod timeline;
pub mod widgets;
pub mod words;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::response::Redirect;
use axum::routing::{get, post};

use crate::state::AppState;
use error::DashError;
use session::User;

/// The dashboard's state inside [`AppState`].
#[derive(Debug, Default)]
pub struct DashboardState {
    /// The overview's fleet summary.
    pub summary: summary::SummaryCache,
}

/// The logged-in user, or the refusal to send (`fragment`: a live
/// refresh, which gets 401 instead of a redirect).
pub async fn require_user(
    app: &AppState,
    headers: &HeaderMap,
    fragment: bool,
) -> Result<User, DashError> {
    let mut user = session::current_user(app, headers)
        .await?
        .ok_or(DashError::LoggedOut { fragment })?;
    user.scope = scope::Scope::of(app, headers).await?;
    Ok(user)
}

/// The user, if it is an admin whose form carried this session's CSRF
/// secret: the check every change goes through.
pub async fn require_admin_form(
    app: &AppState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<User, DashError> {
    let user = require_user(app, headers, false).await?;
    if !session::same_secret(&user.csrf, csrf) {
        return Err(DashError::csrf());
    }
    if !user.is_admin() {
        return Err(DashError::viewer());
    }
    Ok(user)
}

/// The routes under `/ui/` (and `/` → `/ui/`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::overview::page))
        .route(
            "/ui/login",
            get(pages::login::form).post(pages::login::submit),
        )
        .route("/ui/logout", post(pages::login::logout))
        .route("/ui/rollouts/{id}", get(pages::rollout::page))
        .route("/ui/rollouts/{id}/confirm", get(actions::confirm_action))
        .route("/ui/rollouts/{id}/action", post(actions::do_action))
        .route("/ui/rollouts/{id}/change", get(actions::confirm_policy))
        .route("/ui/rollouts/{id}/policy", post(actions::do_policy))
        .route("/ui/nodes", get(pages::nodes::page))
        .route("/ui/nodes/{id}", get(pages::node::page))
        .route("/ui/releases", get(pages::releases::page))
        .route("/ui/fleetlock", get(pages::fleetlock::page))
        .route("/ui/audit", get(pages::audit::page))
        .route("/ui/events", get(pages::events::page))
        .route("/ui/groups", get(pages::groups::page))
        .route("/ui/enrollment", get(pages::enrollment::page))
        .route("/ui/changes/{kind}/confirm", get(changes::confirm))
        .route(
            "/ui/changes/{kind}",
            post(changes::carry_out).layer(DefaultBodyLimit::max(changes::MAX_FORM)),
        )
        .route("/ui/scope", get(scope::choose))
        .route("/ui/static/app.css", get(assets::css))
        .route("/ui/static/app.js", get(assets::js))
        .layer(axum::middleware::from_fn(headers::secure))
}
