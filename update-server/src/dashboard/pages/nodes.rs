//! The node table: filters (channel, group, version, state, last seen,
//! updater: Moho agent or Flatcar over Omaha; the top bar's group replaces
//! the group filter) and
//! keyset paging by node id, so every page costs the same with a million
//! nodes (no OFFSET, no COUNT).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::SignedDuration;
use maud::{Markup, html};
use moho_protocol::admin::NodeKind;
use serde::Deserialize;

use super::answer;
use crate::dashboard::error::DashError;
use crate::dashboard::layout::{Nav, live, page as frame};
use crate::dashboard::require_user;
use crate::dashboard::widgets::{kind_badge, node_link, when};
use crate::state::AppState;
use crate::store::{NodeFilter, Seen};

/// Nodes per page.
pub const PAGE: u32 = 50;

const STATES: [&str; 6] = ["idle", "updating", "staged", "rebooting", "trial", "error"];

const SEEN: [(&str, &str); 6] = [
    ("1h", "seen in the last hour"),
    ("1d", "seen in the last day"),
    ("not1h", "not seen for an hour"),
    ("not1d", "not seen for a day"),
    ("not7d", "not seen for 7 days"),
    ("not30d", "not seen for 30 days"),
];

/// Query of the node table.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct NodesQuery {
    /// Channel.
    pub channel: Option<String>,
    /// Group.
    pub group: Option<String>,
    /// Booted version.
    pub version: Option<String>,
    /// Agent state.
    pub state: Option<String>,
    /// Last seen: one of the `SEEN` keys.
    pub seen: Option<String>,
    /// Updater: `moho` or `flatcar`.
    pub kind: Option<String>,
    /// Continue after this node id.
    pub after: Option<String>,
    /// `live` for the refreshed region.
    pub part: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn seen(key: &str) -> Result<Seen, DashError> {
    let h = SignedDuration::from_hours;
    Ok(match key {
        "1h" => Seen::Within(h(1)),
        "1d" => Seen::Within(h(24)),
        "not1h" => Seen::NotWithin(h(1)),
        "not1d" => Seen::NotWithin(h(24)),
        "not7d" => Seen::NotWithin(h(24 * 7)),
        "not30d" => Seen::NotWithin(h(24 * 30)),
        other => {
            return Err(DashError::new(
                StatusCode::BAD_REQUEST,
                format!("unknown last-seen filter {other:?}"),
            ));
        }
    })
}

fn kind(key: &str) -> Result<NodeKind, DashError> {
    match key {
        "moho" => Ok(NodeKind::Moho),
        "flatcar" => Ok(NodeKind::Flatcar),
        other => Err(DashError::new(
            StatusCode::BAD_REQUEST,
            format!("unknown updater filter {other:?}: use moho or flatcar"),
        )),
    }
}

impl NodesQuery {
    fn filter(&self) -> Result<NodeFilter, DashError> {
        Ok(NodeFilter {
            channel: given(&self.channel),
            group: given(&self.group),
            version: given(&self.version),
            state: given(&self.state),
            seen: given(&self.seen).as_deref().map(seen).transpose()?,
            kind: given(&self.kind).as_deref().map(kind).transpose()?,
            after: given(&self.after),
        })
    }

    /// This query's filters as a URL query, with `after`.
    fn link(&self, after: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("channel", &self.channel),
            ("group", &self.group),
            ("version", &self.version),
            ("state", &self.state),
            ("seen", &self.seen),
            ("kind", &self.kind),
        ] {
            if let Some(v) = given(v) {
                parts.push(format!("{k}={}", encode(&v)));
            }
        }
        if let Some(a) = after {
            parts.push(format!("after={}", encode(a)));
        }
        format!("/ui/nodes?{}", parts.join("&"))
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn select(name: &str, label: &str, current: Option<&str>, options: &[(String, String)]) -> Markup {
    html! {
        label { (label)
            select name=(name) {
                option value="" { "any" }
                @for (value, text) in options {
                    option value=(value) selected[current == Some(value.as_str())] { (text) }
                }
            }
        }
    }
}

/// `GET /ui/nodes`.
pub async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NodesQuery>,
) -> Result<Response, DashError> {
    let live_only = q.part.as_deref() == Some("live");
    let user = require_user(&app, &headers, live_only).await?;
    let now = app.clock.now();
    let mut filter = q.filter()?;
    // The top bar's group wins over the page's own group filter.
    if let Some(g) = user.scope.group() {
        filter.group = Some(g.to_owned());
    }
    let mut nodes = app.db.node_page(&filter, PAGE + 1, now).await?;
    let more = nodes.len() > PAGE as usize;
    nodes.truncate(PAGE as usize);
    let next = more.then(|| q.link(nodes.last().map(|n| n.id.as_str())));
    let region = live(
        now,
        html! {
            table.nodes {
                thead { tr {
                    th { "node" } th { "updater" } th { "host name" } th { "channel" } th { "group" } th { "board" }
                    th { "version" } th { "slot" } th { "state" } th { "last seen" }
                } }
                tbody {
                    @for n in &nodes {
                        tr data-node=(n.id) {
                            td { (node_link(&n.id)) }
                            td { (kind_badge(n.kind)) }
                            td.hostname { (n.hostname) }
                            td { (n.channel) } td { (n.group) } td { (n.board) }
                            td { (n.version) } td { @if n.slot.is_empty() { span.muted { "—" } } @else { (n.slot.to_uppercase()) } } td { (n.state) }
                            td { (when(now, n.last_seen)) }
                        }
                    }
                }
            }
            @if nodes.is_empty() { p.muted { "No node matches these filters." } }
            div.pager {
                @if filter.after.is_some() { a href=(q.link(None)) { "← First page" } }
                @if let Some(n) = &next { a rel="next" href=(n) { "Next page →" } }
            }
        },
    );
    let channels: Vec<(String, String)> = app
        .db
        .channels()
        .await?
        .into_iter()
        .map(|c| (c.clone(), c))
        .collect();
    let groups: Vec<(String, String)> = app
        .db
        .groups()
        .await?
        .into_iter()
        .map(|g| (g.name.clone(), g.name))
        .collect();
    let states: Vec<(String, String)> = STATES
        .iter()
        .map(|s| ((*s).to_owned(), (*s).to_owned()))
        .collect();
    let kinds: Vec<(String, String)> = [("moho", "Moho agent"), ("flatcar", "Flatcar (Omaha)")]
        .iter()
        .map(|(k, t)| ((*k).to_owned(), (*t).to_owned()))
        .collect();
    let seens: Vec<(String, String)> = SEEN
        .iter()
        .map(|(k, t)| ((*k).to_owned(), (*t).to_owned()))
        .collect();
    Ok(answer(live_only, region, |region| {
        frame(
            &user,
            Nav::Nodes,
            "Nodes",
            html! {
                form.filters method="get" action="/ui/nodes" {
                    (select("channel", "Channel", filter.channel.as_deref(), &channels))
                    @if user.scope.group().is_none() {
                        (select("group", "Group", filter.group.as_deref(), &groups))
                    }
                    label { "Version" input type="text" name="version" value=[filter.version.as_deref()] size="10"; }
                    (select("state", "State", filter.state.as_deref(), &states))
                    (select("seen", "Last seen", given(&q.seen).as_deref(), &seens))
                    (select("kind", "Updater", given(&q.kind).as_deref(), &kinds))
                    button.primary type="submit" { "Filter" }
                    a href="/ui/nodes" { "Clear" }
                }
                (region)
            },
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_filters_and_encode_values() {
        let q = NodesQuery {
            channel: Some("stable".into()),
            version: Some("1.0.0+b&x".into()),
            state: Some(String::new()),
            ..NodesQuery::default()
        };
        assert_eq!(
            q.link(Some("n 1")),
            "/ui/nodes?channel=stable&version=1.0.0%2Bb%26x&after=n%201"
        );
        assert!(
            q.filter()
                .is_ok_and(|f| f.state.is_none() && f.channel.is_some())
        );
        let bad = NodesQuery {
            seen: Some("yesterday".into()),
            ..NodesQuery::default()
        };
        assert!(bad.filter().is_err());
    }
}
