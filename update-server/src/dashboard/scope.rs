//! The group selector in the top bar, like the Tectonic console's namespace
//! filter: choosing a group scopes every page to it (overview figures and
//! rollouts, nodes, FleetLock, live events, the releases page's rollouts,
//! groups and holds, enrolment tokens, the audit entries that concern the
//! group, a rollout page only for a rollout to it, the forms' default
//! group) until "all groups" is chosen again. The choice is a cookie (`moho_scope`, the group's name), read on
//! every request and dropped silently if the group no longer exists;
//! choosing changes nothing on the server, so it is a plain GET that
//! redirects back to the page's section.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::SignedDuration;
use moho_protocol::names::check_group;
use serde::Deserialize;

use super::error::DashError;
use super::require_user;
use super::session::{cookie, set_cookie};
use crate::state::AppState;
use crate::store::StoreError;

/// Cookie holding the chosen group.
pub const SCOPE_COOKIE: &str = "moho_scope";

/// The group a page is scoped to, and the groups to choose from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    group: Option<String>,
    /// Every group, for the selector.
    pub groups: Vec<String>,
}

impl Scope {
    /// The scope of this request: the cookie's group if it exists.
    pub async fn of(app: &AppState, headers: &HeaderMap) -> Result<Scope, StoreError> {
        let groups: Vec<String> = app.db.groups().await?.into_iter().map(|g| g.name).collect();
        let group = cookie(headers, SCOPE_COOKIE)
            .filter(|g| check_group(g).is_ok())
            .filter(|g| groups.iter().any(|n| n == g))
            .map(str::to_owned);
        Ok(Scope { group, groups })
    }

    /// A scope of one group (tests, and pages that build their own).
    pub fn only(group: &str) -> Scope {
        Scope {
            group: Some(group.to_owned()),
            groups: vec![group.to_owned()],
        }
    }

    /// The chosen group; `None` for all groups.
    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// Whether `group` is shown in this scope.
    pub fn includes(&self, group: &str) -> bool {
        self.group.as_deref().is_none_or(|g| g == group)
    }
}

/// `GET /ui/scope?group=&back=`.
#[derive(Debug, Deserialize)]
pub struct ScopeQuery {
    /// The group; empty for all groups.
    #[serde(default)]
    pub group: String,
    /// Where to go back to (a dashboard path).
    #[serde(default)]
    pub back: String,
}

/// Where to go after choosing: a path of the dashboard, never elsewhere.
fn back_to(back: &str) -> &str {
    let ok = back.starts_with("/ui/")
        && !back.contains("//")
        && !back.contains('\\')
        && back.bytes().all(|b| b.is_ascii_graphic());
    if ok { back } else { "/ui/" }
}

/// `GET /ui/scope`: sets or clears the group cookie and goes back.
pub async fn choose(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ScopeQuery>,
) -> Result<Response, DashError> {
    require_user(&app, &headers, false).await?;
    let group = q.group.trim();
    let value = if group.is_empty() {
        None
    } else {
        check_group(group)
            .map_err(|e| DashError::new(axum::http::StatusCode::BAD_REQUEST, e.to_string()))?;
        if app.db.group(group).await?.is_none() {
            return Err(DashError::new(
                axum::http::StatusCode::NOT_FOUND,
                format!("unknown group {group:?}"),
            ));
        }
        Some(group)
    };
    let cookie = match value {
        Some(g) => set_cookie(
            SCOPE_COOKIE,
            g,
            SignedDuration::from_hours(24 * 365),
            app.config.tls,
        ),
        None => set_cookie(SCOPE_COOKIE, "", SignedDuration::ZERO, app.config.tls),
    };
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to(back_to(&q.back)),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn going_back_stays_on_the_dashboard() {
        assert_eq!(back_to("/ui/nodes"), "/ui/nodes");
        assert_eq!(back_to("https://evil.example/"), "/ui/");
        assert_eq!(back_to("//evil.example/ui/"), "/ui/");
        assert_eq!(back_to("/ui//evil.example"), "/ui/");
        assert_eq!(back_to("/ui/\\evil"), "/ui/");
        assert_eq!(back_to(""), "/ui/");
        let s = Scope::only("db");
        assert!(s.includes("db") && !s.includes("web"));
        assert!(Scope::default().includes("web"));
    }
}
