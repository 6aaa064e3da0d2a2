//! `moho-admin channels list|create`.

use clap::Subcommand;
use moho_protocol::admin::{ChannelView, CreateChannel, List};
use moho_protocol::names::check_channel;

use super::{Ctx, Report, checked};
use crate::client::Method;
use crate::error::CliError;
use crate::output::Table;

/// Channels (alpha, beta, stable, ...).
#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// List channels.
    List,
    /// Create a channel.
    Create {
        /// Channel name (a-z 0-9 - _).
        name: String,
    },
}

impl ChannelsCommand {
    /// Runs the command.
    pub fn run(self, ctx: &Ctx<'_>) -> Result<Report, CliError> {
        match self {
            ChannelsCommand::List => {
                let list: List<ChannelView> = ctx.api.get("/channels")?;
                let mut t = Table::new(&["NAME"]);
                for c in &list.items {
                    t.row(vec![c.name.clone()]);
                }
                Ok(Report::new(&list, t.render()))
            }
            ChannelsCommand::Create { name } => {
                checked(check_channel(&name))?;
                let c: ChannelView =
                    ctx.api
                        .send(Method::Post, "/channels", &CreateChannel { name })?;
                let text = format!("created channel {}", c.name);
                Ok(Report::new(&c, text))
            }
        }
    }
}
