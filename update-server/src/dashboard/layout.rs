//! The frame of every dashboard page: head (stylesheet, script, no inline
//! code so the Content-Security-Policy can forbid it), the navigation with
//! the group selector, the user's name and role, the log-out form, and the
//! live region that the script refreshes without reloading the page.

use jiff::Timestamp;
use maud::{DOCTYPE, Markup, html};

use super::charts;
use super::format::utc;
use super::session::User;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// Overview.
    Overview,
    /// Nodes.
    Nodes,
    /// Releases.
    Releases,
    /// FleetLock.
    FleetLock,
    /// Audit log.
    Audit,
    /// Live events.
    Events,
    /// Channels, groups, holds and pins.
    Groups,
    /// Enrolment tokens.
    Enrollment,
}

const NAV: [(Nav, &str, &str); 8] = [
    (Nav::Overview, "/ui/", "Overview"),
    (Nav::Events, "/ui/events", "Events"),
    (Nav::Nodes, "/ui/nodes", "Nodes"),
    (Nav::Releases, "/ui/releases", "Releases"),
    (Nav::Groups, "/ui/groups", "Groups & holds"),
    (Nav::Enrollment, "/ui/enrollment", "Enrolment"),
    (Nav::FleetLock, "/ui/fleetlock", "FleetLock"),
    (Nav::Audit, "/ui/audit", "Audit log"),
];

fn href(nav: Nav) -> &'static str {
    NAV.iter()
        .find(|(n, _, _)| *n == nav)
        .map_or("/ui/", |(_, h, _)| h)
}

/// The group selector: every page is scoped to the chosen group.
fn scope_selector(user: &User, nav: Nav) -> Markup {
    let current = user.scope.group();
    html! {
        form.scope method="get" action="/ui/scope" {
            input type="hidden" name="back" value=(href(nav));
            label { "Group "
                select #scope name="group" data-autosubmit {
                    option value="" selected[current.is_none()] { "all groups" }
                    @for g in &user.scope.groups {
                        option value=(g) selected[current == Some(g.as_str())] { (g) }
                    }
                }
            }
            button.scope-go type="submit" { "Show" }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Moho" }
            link rel="stylesheet" href="/ui/static/app.css";
            script src="/ui/static/app.js" defer {}
        }
    }
}

/// A page without navigation (login, errors).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                main { (body) }
            }
        }
    }
}

/// A page with navigation for a logged-in user.
pub fn page(user: &User, nav: Nav, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                (charts::defs())
                header.top {
                    a.brand href="/ui/" { "Moho" }
                    nav {
                        @for (n, href, label) in NAV {
                            a href=(href) aria-current=[(n == nav).then_some("page")] { (label) }
                        }
                    }
                    (scope_selector(user, nav))
                    div.who {
                        span.user data-user=(user.name) { (user.name) }
                        " "
                        span.role data-role=(user.role.as_str()) {
                            @if user.is_admin() { "admin" } @else { "viewer · read only" }
                        }
                        form.logout method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(user.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                div #signed-out .banner hidden { "You were logged out. " a href="/ui/login" { "Log in again" } }
                main {
                    h1 { (title) }
                    @if let Some(g) = user.scope.group() {
                        p.scoped data-scope=(g) { "Showing group " strong { (g) } " only. "
                            a href=(format!("/ui/scope?group=&back={}", href(nav))) { "Show all groups" } }
                    }
                    (body)
                }
            }
        }
    }
}

/// The region the script refreshes: the page handler answers `?part=live`
/// with exactly this fragment.
pub fn live(now: Timestamp, content: Markup) -> Markup {
    html! {
        div #live data-live="5" {
            (content)
            p.asof { "Figures as of " time datetime=(now.to_string()) { (utc(now)) } }
        }
    }
}

/// Whether a request asked for the live fragment only.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Part {
    /// `live` for the fragment.
    pub part: Option<String>,
}

impl Part {
    /// True for `?part=live`.
    pub fn is_live(&self) -> bool {
        self.part.as_deref() == Some("live")
    }
}
