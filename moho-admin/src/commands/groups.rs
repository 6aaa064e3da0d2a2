//! `moho-admin groups list|show|create|update`: node groups and their
//! FleetLock reboot slots.

use clap::{Args, Subcommand};
use moho_protocol::admin::{GroupSpec, GroupView, List};
use moho_protocol::names::check_group;

use super::{Ctx, Report, checked};
use crate::client::{Method, enc};
use crate::error::CliError;
use crate::output::{Table, secs};

/// Node groups.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List groups.
    List,
    /// Show one group.
    Show {
        /// Group name.
        name: String,
    },
    /// Create a group.
    Create {
        /// Group name (a-z 0-9 - _).
        name: String,
        /// FleetLock settings.
        #[command(flatten)]
        fleetlock: FleetLockArgs,
    },
    /// Change a group's FleetLock slots or lease.
    Update {
        /// Group name.
        name: String,
        /// FleetLock settings.
        #[command(flatten)]
        fleetlock: FleetLockArgs,
    },
}

/// A group's FleetLock settings.
#[derive(Debug, Args)]
pub struct FleetLockArgs {
    /// Nodes of the group that may reboot at once (default 1).
    #[arg(long)]
    pub fleetlock_slots: Option<u32>,
    /// How long a reboot slot is held unless released, e.g. 1h (default 1h).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub fleetlock_lease: Option<std::time::Duration>,
}

fn table(groups: &[GroupView]) -> String {
    let mut t = Table::new(&["NAME", "FLEETLOCK SLOTS", "LEASE"]);
    for g in groups {
        t.row(vec![
            g.name.clone(),
            g.fleetlock_slots.to_string(),
            secs(g.fleetlock_lease_secs),
        ]);
    }
    t.render()
}

fn spec(name: Option<String>, f: &FleetLockArgs) -> GroupSpec {
    GroupSpec {
        name,
        fleetlock_slots: f.fleetlock_slots,
        fleetlock_lease_secs: f.fleetlock_lease.map(|d| d.as_secs()),
    }
}

impl GroupsCommand {
    /// Runs the command.
    pub fn run(self, ctx: &Ctx<'_>) -> Result<Report, CliError> {
        match self {
            GroupsCommand::List => {
                let list: List<GroupView> = ctx.api.get("/groups")?;
                Ok(Report::new(&list, table(&list.items)))
            }
            GroupsCommand::Show { name } => {
                checked(check_group(&name))?;
                let g: GroupView = ctx.api.get(&format!("/groups/{}", enc(&name)))?;
                let text = table(std::slice::from_ref(&g));
                Ok(Report::new(&g, text))
            }
            GroupsCommand::Create { name, fleetlock } => {
                checked(check_group(&name))?;
                let g: GroupView =
                    ctx.api
                        .send(Method::Post, "/groups", &spec(Some(name), &fleetlock))?;
                let text = format!(
                    "created group {} ({} FleetLock slot(s), lease {})",
                    g.name,
                    g.fleetlock_slots,
                    secs(g.fleetlock_lease_secs)
                );
                Ok(Report::new(&g, text))
            }
            GroupsCommand::Update { name, fleetlock } => {
                checked(check_group(&name))?;
                if fleetlock.fleetlock_slots.is_none() && fleetlock.fleetlock_lease.is_none() {
                    return Err(CliError::Usage(
                        "nothing to change: give --fleetlock-slots and/or --fleetlock-lease".into(),
                    ));
                }
                let g: GroupView = ctx.api.send(
                    Method::Patch,
                    &format!("/groups/{}", enc(&name)),
                    &spec(None, &fleetlock),
                )?;
                let text = format!(
                    "group {}: {} FleetLock slot(s), lease {}",
                    g.name,
                    g.fleetlock_slots,
                    secs(g.fleetlock_lease_secs)
                );
                Ok(Report::new(&g, text))
            }
        }
    }
}
