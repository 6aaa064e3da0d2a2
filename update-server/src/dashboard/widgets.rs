//! Small pieces shared by the pages: rollout status and node kind badges, times with
//! their exact value on hover, links to nodes and audit subjects, alerts.

use jiff::Timestamp;
use maud::{Markup, html};
use moho_protocol::admin::NodeKind;
use moho_rollout::{RolloutState, RolloutStatus};

use super::format::{ago, utc};
use super::words::status_in_words;

/// The rollout status as a badge with its words.
pub fn status_badge(s: &RolloutState) -> Markup {
    let class = match s.status {
        RolloutStatus::Active => "status-active",
        RolloutStatus::Paused { .. } => "status-paused",
        RolloutStatus::Aborted => "status-aborted",
        RolloutStatus::Reverted => "status-reverted",
    };
    let key = match s.status {
        RolloutStatus::Active => "active",
        RolloutStatus::Paused { .. } => "paused",
        RolloutStatus::Aborted => "aborted",
        RolloutStatus::Reverted => "reverted",
    };
    html! { span.badge.(class) data-status=(key) { (status_in_words(s)) } }
}

/// "5 min ago", with the exact time as the element's title.
pub fn when(now: Timestamp, t: Timestamp) -> Markup {
    html! { time datetime=(t.to_string()) title=(utc(t)) { (ago(now, t)) } }
}

/// Which updater a node runs, as a badge: Flatcar nodes (Omaha) send
/// unsigned reports, which the badge's title says.
pub fn kind_badge(kind: NodeKind) -> Markup {
    match kind {
        NodeKind::Moho => {
            html! { span.badge data-kind="moho" title="update-agent: signed reports" { "Moho" } }
        }
        NodeKind::Flatcar => html! {
            span.badge.kind-flatcar data-kind="flatcar"
                title="Flatcar update_engine over Omaha: unsigned reports (they can pause a rollout, never advance a health gate)" { "Flatcar" }
        },
    }
}

/// A link to a node's page.
pub fn node_link(id: &str) -> Markup {
    html! { a.mono href=(format!("/ui/nodes/{id}")) { (id) } }
}

/// An audit subject, linked when it names a page.
pub fn subject_link(subject: &str) -> Markup {
    let href = if let Some(id) = subject.strip_prefix("rollout/") {
        id.parse::<i64>()
            .ok()
            .map(|id| format!("/ui/rollouts/{id}"))
    } else {
        subject
            .strip_prefix("node/")
            .filter(|id| moho_protocol::names::check_node_id(id).is_ok())
            .map(|id| format!("/ui/nodes/{id}"))
    };
    html! {
        @if let Some(h) = href { a.mono href=(h) { (subject) } } @else { span.mono { (subject) } }
    }
}

/// An alert box: `kind` is `warn`, `bad` or `ok`.
pub fn alert(kind: &str, text: impl AsRef<str>) -> Markup {
    html! { p.alert.(kind) role="status" data-alert=(kind) { (text.as_ref()) } }
}
