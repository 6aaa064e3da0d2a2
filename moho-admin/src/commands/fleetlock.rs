//! `moho-admin fleetlock holders|release`: who holds a group's reboot
//! slots, and freeing one by hand (a node that died while holding it).

use clap::Subcommand;
use moho_protocol::admin::{FleetLockView, GroupView, List};
use moho_protocol::names::{check_group, check_node_id};

use super::{Ctx, Report, checked};
use crate::client::{Method, enc};
use crate::error::CliError;
use crate::output::{Table, ts};

/// FleetLock reboot slots.
#[derive(Debug, Subcommand)]
pub enum FleetLockCommand {
    /// Slots and their holders, of one group or of every group.
    Holders {
        /// Only this group.
        #[arg(long)]
        group: Option<String>,
    },
    /// Free the slot a node holds.
    Release {
        /// Group.
        group: String,
        /// Node id.
        node: String,
    },
}

impl FleetLockCommand {
    /// Runs the command.
    pub fn run(self, ctx: &Ctx<'_>) -> Result<Report, CliError> {
        match self {
            FleetLockCommand::Holders { group } => {
                let groups = match group {
                    Some(g) => {
                        checked(check_group(&g))?;
                        vec![g]
                    }
                    None => {
                        let list: List<GroupView> = ctx.api.get("/groups")?;
                        list.items.into_iter().map(|g| g.name).collect()
                    }
                };
                let mut views = Vec::new();
                for g in groups {
                    let v: FleetLockView = ctx.api.get(&format!("/fleetlock/{}", enc(&g)))?;
                    views.push(v);
                }
                let mut t = Table::new(&["GROUP", "SLOTS", "NODE", "ACQUIRED", "EXPIRES"]);
                for v in &views {
                    let used = format!("{}/{}", v.holders.len(), v.slots);
                    if v.holders.is_empty() {
                        t.row(vec![
                            v.group.clone(),
                            used.clone(),
                            "-".into(),
                            "-".into(),
                            "-".into(),
                        ]);
                    }
                    for h in &v.holders {
                        t.row(vec![
                            v.group.clone(),
                            used.clone(),
                            h.node_id.clone(),
                            ts(h.acquired_at),
                            ts(h.expires_at),
                        ]);
                    }
                }
                Ok(Report::new(&List { items: views }, t.render()))
            }
            FleetLockCommand::Release { group, node } => {
                checked(check_group(&group))?;
                checked(check_node_id(&node))?;
                ctx.api.call_empty(
                    Method::Delete,
                    &format!("/fleetlock/{}/{}", enc(&group), enc(&node)),
                )?;
                Ok(Report::new(
                    &serde_json::json!({"released": {"group": group, "node_id": node}}),
                    format!("freed the reboot slot of node {node} in group {group}"),
                ))
            }
        }
    }
}
