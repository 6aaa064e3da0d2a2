//! `moho-admin nodes list|show|delete|prune`.

use clap::{Args, Subcommand};
use moho_protocol::admin::{EventView, List, NodeKind, NodeView, PruneNodes, PruneResult};
use moho_protocol::names::check_node_id;

use super::{Ctx, Report, checked};
use crate::client::{Method, enc, with_query};
use crate::error::CliError;
use crate::output::{Table, ts};

/// Nodes as the server knows them.
#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// List nodes (by id), with filters.
    List(ListArgs),
    /// Show one node and its latest events.
    Show {
        /// Node id.
        id: String,
        /// How many of its latest events to show.
        #[arg(long, default_value_t = 20)]
        events: u32,
    },
    /// Forget a node (it registers again on its next check-in, possibly with
    /// a new key).
    Delete {
        /// Node id.
        id: String,
    },
    /// Forget every node not seen for a while.
    Prune {
        /// Not seen for at least this long, e.g. 30d.
        #[arg(long, value_parser = humantime::parse_duration)]
        stale: std::time::Duration,
        /// Only list the nodes that would be forgotten.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `nodes list` filters.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// Only this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Only nodes booted into this version.
    #[arg(long)]
    pub version: Option<String>,
    /// Only nodes in this agent state (idle, downloading, ...).
    #[arg(long)]
    pub state: Option<String>,
    /// Only nodes of this kind: moho (update-agent, signed reports) or
    /// flatcar (update_engine over Omaha, unsigned reports).
    #[arg(long, value_parser = ["moho", "flatcar"])]
    pub kind: Option<String>,
    /// Only nodes not seen for at least this long, e.g. 1d.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub stale: Option<std::time::Duration>,
    /// Most nodes on this page (1-1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Start after this node id (the `next_after` of the previous page).
    #[arg(long)]
    pub after: Option<String>,
    /// Every matching node, page after page.
    #[arg(long, conflicts_with_all = ["limit", "after"])]
    pub all: bool,
}

/// A page of nodes and where the next one starts.
#[derive(Debug, serde::Serialize)]
struct Page {
    items: Vec<NodeView>,
    /// Give as `--after` for the next page (absent on the last page).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

fn table(items: &[NodeView]) -> String {
    let mut t = Table::new(&[
        "ID",
        "KIND",
        "HOSTNAME",
        "CHANNEL",
        "GROUP",
        "VERSION",
        "SLOT",
        "STATE",
        "LAST SEEN",
    ]);
    for n in items {
        t.row(vec![
            n.id.clone(),
            n.kind.as_str().to_owned(),
            n.hostname.clone().unwrap_or_else(|| "-".into()),
            n.channel.clone(),
            n.group.clone(),
            n.version.clone(),
            n.slot.clone(),
            n.state.clone(),
            ts(n.last_seen),
        ]);
    }
    t.render()
}

fn page(ctx: &Ctx<'_>, f: &ListArgs, limit: u32, after: Option<String>) -> Result<Page, CliError> {
    let path = with_query(
        "/nodes",
        &[
            ("channel", f.channel.clone()),
            ("group", f.group.clone()),
            ("version", f.version.clone()),
            ("state", f.state.clone()),
            ("kind", f.kind.clone()),
            ("stale_secs", f.stale.map(|d| d.as_secs().to_string())),
            ("limit", Some(limit.to_string())),
            ("after", after),
        ],
    );
    let list: List<NodeView> = ctx.api.get(&path)?;
    let next_after = (list.items.len() == limit as usize)
        .then(|| list.items.last().map(|n| n.id.clone()))
        .flatten();
    Ok(Page {
        items: list.items,
        next_after,
    })
}

fn list(ctx: &Ctx<'_>, f: &ListArgs) -> Result<Page, CliError> {
    if !(1..=1000).contains(&f.limit) {
        return Err(CliError::Usage(format!(
            "invalid --limit {}: use 1 to 1000",
            f.limit
        )));
    }
    if !f.all {
        return page(ctx, f, f.limit, f.after.clone());
    }
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let p = page(ctx, f, 1000, after)?;
        all.extend(p.items);
        match p.next_after {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(Page {
        items: all,
        next_after: None,
    })
}

fn show(ctx: &Ctx<'_>, id: &str, events: u32) -> Result<Report, CliError> {
    checked(check_node_id(id))?;
    let node: NodeView = ctx.api.get(&format!("/nodes/{}", enc(id)))?;
    let ev: List<EventView> = ctx.api.get(&with_query(
        &format!("/nodes/{}/events", enc(id)),
        &[("limit", Some(events.clamp(1, 1000).to_string()))],
    ))?;
    let mut text = format!(
        "node {id}\n\
         kind:       {kind}\n\
         hostname:   {host}\n\
         channel:    {channel}\n\
         group:      {group}\n\
         board:      {board}\n\
         version:    {version} (slot {slot}; other slot: {fallback})\n\
         state:      {state}\n\
         last seen:  {seen}\n\
         registered: {registered}\n",
        kind = match node.kind {
            NodeKind::Moho => "moho (update-agent, signed reports)",
            NodeKind::Flatcar => "flatcar (update_engine over Omaha, unsigned reports)",
        },
        host = node.hostname.as_deref().unwrap_or("-"),
        channel = node.channel,
        group = node.group,
        board = node.board,
        version = node.version,
        slot = node.slot,
        fallback = node.fallback_version.as_deref().unwrap_or("-"),
        state = node.state,
        seen = ts(node.last_seen),
        registered = ts(node.registered_at),
    );
    let mut t = Table::new(&["AT", "SEVERITY", "EVENT", "VERSION", "DETAIL"]);
    for e in &ev.items {
        t.row(vec![
            ts(e.at),
            e.severity.as_str().to_owned(),
            e.kind.clone(),
            e.version.clone().unwrap_or_else(|| "-".into()),
            detail(e),
        ]);
    }
    text.push_str("\nlatest events:\n");
    text.push_str(&t.render());
    Ok(Report::new(
        &serde_json::json!({"node": node, "events": ev.items}),
        text,
    ))
}

/// The part of an event people read: an error's code and message, a
/// rollback's versions.
pub fn detail(e: &EventView) -> String {
    let s = |k: &str| e.event.get(k).and_then(|v| v.as_str()).unwrap_or("");
    match e.kind.as_str() {
        "error" => format!("{}: {}", s("code"), s("message")),
        "rollback" => format!(
            "{} failed, back on {}",
            s("failed_version"),
            s("booted_version")
        ),
        _ => String::new(),
    }
}

impl NodesCommand {
    /// Runs the command.
    pub fn run(self, ctx: &Ctx<'_>) -> Result<Report, CliError> {
        match self {
            NodesCommand::List(f) => {
                let p = list(ctx, &f)?;
                let mut text = table(&p.items);
                if let Some(n) = &p.next_after {
                    text.push_str(&format!("\n(more: --after {n})"));
                }
                Ok(Report::new(&p, text))
            }
            NodesCommand::Show { id, events } => show(ctx, &id, events),
            NodesCommand::Delete { id } => {
                checked(check_node_id(&id))?;
                ctx.api
                    .call_empty(Method::Delete, &format!("/nodes/{}", enc(&id)))?;
                Ok(Report::new(
                    &serde_json::json!({"deleted": {"node": id}}),
                    format!("deleted node {id}"),
                ))
            }
            NodesCommand::Prune { stale, dry_run } => {
                if dry_run {
                    let f = ListArgs {
                        channel: None,
                        group: None,
                        version: None,
                        state: None,
                        kind: None,
                        stale: Some(stale),
                        limit: 1000,
                        after: None,
                        all: true,
                    };
                    let p = list(ctx, &f)?;
                    let text = format!(
                        "{}\n{} node(s) would be forgotten",
                        table(&p.items),
                        p.items.len()
                    );
                    return Ok(Report::new(
                        &serde_json::json!({"dry_run": true, "items": p.items}),
                        text,
                    ));
                }
                let r: PruneResult = ctx.api.send(
                    Method::Post,
                    "/nodes/prune",
                    &PruneNodes {
                        stale_secs: stale.as_secs(),
                    },
                )?;
                let text = format!(
                    "forgot {} node(s) not seen for {}",
                    r.removed,
                    humantime::format_duration(stale)
                );
                Ok(Report::new(&r, text))
            }
        }
    }
}
