//! `moho-admin holds list|create|delete`: hold a group or a node (offer it
//! nothing) or pin it (offer nothing newer than a version) until a date. A
//! node's own hold or pin beats its group's; a hold beats a pin.

use clap::{ArgGroup, Args, Subcommand};
use jiff::Timestamp;
use moho_protocol::admin::{CreateHold, HoldView, List};
use moho_protocol::names::{check_group, check_node_id};
use moho_rollout::{HoldKind, HoldTarget};

use super::{Ctx, Report, after, checked};
use crate::client::Method;
use crate::error::CliError;
use crate::output::{Table, ts};

/// Holds and pins.
#[derive(Debug, Subcommand)]
pub enum HoldsCommand {
    /// List holds and pins that have not expired.
    List,
    /// Hold or pin a group or a node.
    Create(CreateArgs),
    /// Remove a hold or pin.
    Delete {
        /// Hold id (from `holds list`).
        id: i64,
    },
}

/// `holds create`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["group", "node"])))]
#[command(group(ArgGroup::new("end").required(true).args(["until", "for_"])))]
pub struct CreateArgs {
    /// Hold this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Hold this node.
    #[arg(long)]
    pub node: Option<String>,
    /// Pin to this version instead of holding: nothing newer is offered.
    #[arg(long, value_name = "VERSION")]
    pub pin: Option<String>,
    /// Until this time (RFC 3339, e.g. 2026-06-01T00:00:00Z).
    #[arg(long)]
    pub until: Option<Timestamp>,
    /// For this long from now, e.g. 7d, 12h.
    #[arg(long = "for", value_parser = humantime::parse_duration)]
    pub for_: Option<std::time::Duration>,
}

fn target_words(t: &HoldTarget) -> String {
    match t {
        HoldTarget::Group(g) => format!("group {g}"),
        HoldTarget::Node(n) => format!("node {n}"),
    }
}

fn kind_words(k: &HoldKind) -> String {
    match k {
        HoldKind::Hold => "hold".into(),
        HoldKind::Pin { version } => format!("pin to {version}"),
    }
}

impl HoldsCommand {
    /// Runs the command.
    pub fn run(self, ctx: &Ctx<'_>) -> Result<Report, CliError> {
        match self {
            HoldsCommand::List => {
                let list: List<HoldView> = ctx.api.get("/holds")?;
                let mut t = Table::new(&["ID", "TARGET", "KIND", "UNTIL"]);
                for h in &list.items {
                    t.row(vec![
                        h.id.to_string(),
                        target_words(&h.target),
                        kind_words(&h.kind),
                        ts(h.until),
                    ]);
                }
                Ok(Report::new(&list, t.render()))
            }
            HoldsCommand::Create(a) => {
                let target = match (a.group, a.node) {
                    (Some(g), _) => {
                        checked(check_group(&g))?;
                        HoldTarget::Group(g)
                    }
                    (None, Some(n)) => {
                        checked(check_node_id(&n))?;
                        HoldTarget::Node(n)
                    }
                    (None, None) => {
                        return Err(CliError::Usage("give --group or --node".into()));
                    }
                };
                let until = match (a.until, a.for_) {
                    (Some(t), _) => t,
                    (None, Some(d)) => after(ctx.now, d, "--for")?,
                    (None, None) => return Err(CliError::Usage("give --until or --for".into())),
                };
                let kind = match a.pin {
                    Some(version) => HoldKind::Pin { version },
                    None => HoldKind::Hold,
                };
                let h: HoldView = ctx.api.send(
                    Method::Post,
                    "/holds",
                    &CreateHold {
                        target,
                        kind,
                        until,
                    },
                )?;
                let text = format!(
                    "hold {}: {} of {} until {}",
                    h.id,
                    kind_words(&h.kind),
                    target_words(&h.target),
                    ts(h.until)
                );
                Ok(Report::new(&h, text))
            }
            HoldsCommand::Delete { id } => {
                ctx.api
                    .call_empty(Method::Delete, &format!("/holds/{id}"))?;
                Ok(Report::new(
                    &serde_json::json!({"deleted": {"hold": id}}),
                    format!("deleted hold {id}"),
                ))
            }
        }
    }
}
