//! `moho-admin rollouts list|show|create|pause|resume|abort|revert|policy`.

use clap::{Args, Subcommand};
use moho_protocol::admin::{
    CreateRollout, List, ReleaseView, RolloutActionRequest, RolloutView, UpdateRollout,
};
use moho_protocol::names::{check_channel, check_group};
use moho_rollout::state::{PauseReason, RolloutStatus};
use moho_rollout::{Action, RolloutPolicy};

use super::policy_args::PolicyArgs;
use super::{Ctx, Report, checked};
use crate::client::Method;
use crate::error::CliError;
use crate::output::{Table, ts};

/// Rollouts of releases to a channel and group.
#[derive(Debug, Subcommand)]
pub enum RolloutsCommand {
    /// List rollouts with their live counters.
    List(ListArgs),
    /// Show one rollout: state, policy and counters.
    Show {
        /// Rollout id.
        id: i64,
    },
    /// Roll a release out to a channel and group with a policy.
    Create(CreateArgs),
    /// Stop offering the release (nodes mid-update finish).
    Pause {
        /// Rollout id.
        id: i64,
    },
    /// Offer the release again after a pause (also an automatic one).
    Resume {
        /// Rollout id.
        id: i64,
    },
    /// Stop for good; staged nodes are told to cancel.
    Abort {
        /// Rollout id.
        id: i64,
    },
    /// Stop, and send Moho nodes that took the release back to their previous slot (Flatcar
    /// nodes are only no longer offered it: Omaha cannot switch partitions).
    Revert {
        /// Rollout id.
        id: i64,
    },
    /// Change the policy (ramp, caps, windows, auto-pause, health gate);
    /// flags not given keep their current value.
    Policy {
        /// Rollout id.
        id: i64,
        /// The changes.
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

/// `rollouts list` filters.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this status: active, paused, aborted, reverted.
    #[arg(long)]
    pub status: Option<String>,
    /// Only this channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// Only this group.
    #[arg(long)]
    pub group: Option<String>,
}

/// `rollouts create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Release version.
    pub version: String,
    /// Board of the release (default: the only board that has this version).
    #[arg(long)]
    pub board: Option<String>,
    /// Channel (the release must be signed for it).
    #[arg(long)]
    pub channel: String,
    /// Group.
    #[arg(long, default_value = "default")]
    pub group: String,
    /// The policy.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// A status in one word (`paused` says why).
pub fn status_word(s: &RolloutStatus) -> String {
    match s {
        RolloutStatus::Active => "active".into(),
        RolloutStatus::Paused {
            reason: PauseReason::Operator,
        } => "paused".into(),
        RolloutStatus::Paused {
            reason: PauseReason::FailureRate { failed, finished },
        } => format!("auto-paused ({failed}/{finished} failed)"),
        RolloutStatus::Aborted => "aborted".into(),
        RolloutStatus::Reverted => "reverted".into(),
    }
}

fn status_key(s: &RolloutStatus) -> &'static str {
    match s {
        RolloutStatus::Active => "active",
        RolloutStatus::Paused { .. } => "paused",
        RolloutStatus::Aborted => "aborted",
        RolloutStatus::Reverted => "reverted",
    }
}

fn table(items: &[RolloutView]) -> String {
    let mut t = Table::new(&[
        "ID",
        "VERSION",
        "BOARD",
        "CHANNEL",
        "GROUP",
        "STATUS",
        "STEP",
        "OFFERED",
        "IN FLIGHT",
        "HEALTHY",
        "FAILED",
    ]);
    for r in items {
        t.row(vec![
            r.id.to_string(),
            r.version.clone(),
            r.board.clone(),
            r.channel.clone(),
            r.group.clone(),
            status_word(&r.state.status),
            format!(
                "{}/{} ({}%)",
                r.state.step + 1,
                r.policy.steps.len(),
                r.current_percent
            ),
            format!("{}/{}", r.stats.offered, r.stats.scope_size),
            r.stats.in_flight.to_string(),
            r.stats.healthy.to_string(),
            r.stats.failed.to_string(),
        ]);
    }
    t.render()
}

fn details(r: &RolloutView) -> String {
    let policy = serde_json::to_string_pretty(&r.policy).unwrap_or_default();
    format!(
        "rollout {id}: {version} ({board}) to {channel}/{group}\n\
         status:     {status}\n\
         step:       {step} of {steps} ({pct}% of {scope} nodes), since {since}\n\
         offered:    {offered}\n\
         in flight:  {in_flight}\n\
         healthy:    {healthy}\n\
         failed:     {failed}\n\
         created:    {created}\n\
         policy:\n{policy}",
        id = r.id,
        version = r.version,
        board = r.board,
        channel = r.channel,
        group = r.group,
        status = status_word(&r.state.status),
        step = r.state.step + 1,
        steps = r.policy.steps.len(),
        pct = r.current_percent,
        scope = r.stats.scope_size,
        since = ts(r.state.step_started),
        offered = r.stats.offered,
        in_flight = r.stats.in_flight,
        healthy = r.stats.healthy,
        failed = r.stats.failed,
        created = ts(r.created_at),
    )
}

fn board_of(ctx: &Ctx<'_>, version: &str) -> Result<String, CliError> {
    let list: List<ReleaseView> = ctx.api.get("/releases")?;
    let boards: Vec<String> = list
        .items
        .into_iter()
        .filter(|r| r.version == version && r.present)
        .map(|r| r.board)
        .collect();
    match boards.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(CliError::Usage(format!(
            "release {version} is not in the signed repository (see `moho-admin releases list`)"
        ))),
        many => Err(CliError::Usage(format!(
            "release {version} exists for boards {}: choose one with --board",
            many.join(", ")
        ))),
    }
}

fn action(ctx: &Ctx<'_>, id: i64, action: Action, done: &str) -> Result<Report, CliError> {
    let r: RolloutView = ctx.api.send(
        Method::Post,
        &format!("/rollouts/{id}/actions"),
        &RolloutActionRequest { action },
    )?;
    let text = format!("rollout {id} {done}: now {}", status_word(&r.state.status));
    Ok(Report::new(&r, text))
}

impl RolloutsCommand {
    /// Runs the command.
    pub fn run(self, ctx: &Ctx<'_>) -> Result<Report, CliError> {
        match self {
            RolloutsCommand::List(f) => {
                let mut list: List<RolloutView> = ctx.api.get("/rollouts")?;
                if let Some(s) = &f.status
                    && !["active", "paused", "aborted", "reverted"].contains(&s.as_str())
                {
                    return Err(CliError::Usage(format!(
                        "invalid --status {s:?}: use active, paused, aborted or reverted"
                    )));
                }
                list.items.retain(|r| {
                    f.status
                        .as_deref()
                        .is_none_or(|s| status_key(&r.state.status) == s)
                        && f.channel.as_ref().is_none_or(|c| &r.channel == c)
                        && f.group.as_ref().is_none_or(|g| &r.group == g)
                });
                Ok(Report::new(&list, table(&list.items)))
            }
            RolloutsCommand::Show { id } => {
                let r: RolloutView = ctx.api.get(&format!("/rollouts/{id}"))?;
                let text = details(&r);
                Ok(Report::new(&r, text))
            }
            RolloutsCommand::Create(a) => {
                checked(check_channel(&a.channel))?;
                checked(check_group(&a.group))?;
                let policy: RolloutPolicy = a.policy.apply(None)?;
                let board = match a.board {
                    Some(b) => b,
                    None => board_of(ctx, &a.version)?,
                };
                let req = CreateRollout {
                    version: a.version,
                    board,
                    channel: a.channel,
                    group: a.group,
                    policy,
                };
                let r: RolloutView = ctx.api.send(Method::Post, "/rollouts", &req)?;
                let text = format!(
                    "created rollout {}: {} ({}) to {}/{}, starting at {}% of {} nodes",
                    r.id,
                    r.version,
                    r.board,
                    r.channel,
                    r.group,
                    r.current_percent,
                    r.stats.scope_size
                );
                Ok(Report::new(&r, text))
            }
            RolloutsCommand::Pause { id } => action(ctx, id, Action::Pause, "paused"),
            RolloutsCommand::Resume { id } => action(ctx, id, Action::Resume, "resumed"),
            RolloutsCommand::Abort { id } => action(ctx, id, Action::Abort, "aborted"),
            RolloutsCommand::Revert { id } => action(ctx, id, Action::Revert, "reverted"),
            RolloutsCommand::Policy { id, policy } => {
                if policy.is_empty() {
                    return Err(CliError::Usage(
                        "nothing to change: give --policy FILE or policy flags (see --help)".into(),
                    ));
                }
                let current: RolloutView = ctx.api.get(&format!("/rollouts/{id}"))?;
                let next = policy.apply(Some(&current.policy))?;
                let r: RolloutView = ctx.api.send(
                    Method::Patch,
                    &format!("/rollouts/{id}"),
                    &UpdateRollout { policy: next },
                )?;
                let text = format!(
                    "rollout {id}: policy changed; step {} of {} ({}%)",
                    r.state.step + 1,
                    r.policy.steps.len(),
                    r.current_percent
                );
                Ok(Report::new(&r, text))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Api, FakeTransport};

    #[test]
    fn create_finds_the_only_board_and_sends_the_validated_policy() {
        let fake = FakeTransport::default();
        fake.reply(
            200,
            serde_json::json!({"items": [
                {"version": "1.2.0", "board": "arm64-generic", "target": "t", "channels": ["beta"], "present": false},
                {"version": "1.2.0", "board": "amd64-generic", "target": "t", "channels": ["beta"], "present": true}
            ]}),
        );
        fake.reply(
            500,
            serde_json::json!({"error": {"code": "boom", "message": "m"}}),
        );
        let ctx = Ctx {
            api: Api::new(&fake),
            now: jiff::Timestamp::UNIX_EPOCH,
        };
        let cmd = RolloutsCommand::Create(CreateArgs {
            version: "1.2.0".into(),
            board: None,
            channel: "beta".into(),
            group: "default".into(),
            policy: PolicyArgs {
                ramp: Some("5:1h,100".into()),
                ..PolicyArgs::default()
            },
        });
        let err = cmd.run(&ctx).err();
        assert!(
            matches!(err, Some(CliError::Api { status: 500, .. })),
            "{err:?}"
        );
        let sent = fake.sent();
        assert_eq!(sent.len(), 2);
        let body = sent[1].body.clone().unwrap_or_default();
        assert_eq!(body["board"], "amd64-generic");
        assert_eq!(body["policy"]["steps"][0]["hold"], "1h");
        assert_eq!(sent[1].method, Method::Post);
    }
}
