//! Operator changes to a rollout, shared by the admin API and the dashboard
//! so both apply the same rules: create one (a release present in the
//! signed repository and signed for the channel), pause/resume/abort/revert through the
//! lifecycle of `moho_rollout::state`, and replacing the policy (ramp or
//! caps). Each change is saved with optimistic concurrency on the rollout's
//! revision and written to the audit log with actor, before and after in
//! the same transaction.

use moho_protocol::admin::CreateRollout;
use moho_protocol::names::{check_channel, check_group};
use moho_rollout::policy::RolloutPolicy;
use moho_rollout::state::{Action, RolloutState, apply_action};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::RolloutRecord;

/// The wire name of an action (`pause`, ...).
pub fn action_name(action: Action) -> &'static str {
    match action {
        Action::Pause => "pause",
        Action::Resume => "resume",
        Action::Abort => "abort",
        Action::Revert => "revert",
    }
}

/// Parses an action's wire name.
pub fn parse_action(s: &str) -> Option<Action> {
    [Action::Pause, Action::Resume, Action::Abort, Action::Revert]
        .into_iter()
        .find(|a| action_name(*a) == s)
}

async fn record(app: &AppState, id: i64) -> Result<RolloutRecord, ApiError> {
    app.db
        .rollout(id)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_rollout", format!("unknown rollout {id}")))
}

fn concurrent(id: i64) -> ApiError {
    ApiError::conflict(
        "concurrent_change",
        format!("rollout {id} changed meanwhile; retry"),
    )
}

/// Applies `action` to rollout `id` as `actor`; audited as `rollout.<action>`.
pub async fn act(app: &AppState, actor: &str, id: i64, action: Action) -> Result<(), ApiError> {
    let now = app.clock.now();
    let record = record(app, id).await?;
    let next = apply_action(record.state, action, now)
        .map_err(|e| ApiError::conflict("invalid_action", e.to_string()))?;
    let mut change = app
        .db
        .change(
            actor,
            &format!("rollout.{}", action_name(action)),
            format!("rollout/{id}"),
            now,
        )
        .await?;
    if !app
        .db
        .save_rollout_state(Some(change.tx()), id, record.revision, &next)
        .await?
    {
        change.abandon().await?;
        return Err(concurrent(id));
    }
    let before = serde_json::to_value(record.state).ok();
    let after = serde_json::to_value(next).ok();
    change.commit(before.as_ref(), after.as_ref()).await?;
    app.caches.clear();
    Ok(())
}

/// Whether the rollout `req` describes may be created: only a release
/// present in the signed repository and signed for the channel can be
/// rolled out, to a channel and group that exist. [`create`] checks it
/// again; the dashboard asks first to show the refusal before the
/// confirmation step.
pub async fn check_new(app: &AppState, req: &CreateRollout) -> Result<(), ApiError> {
    check_channel(&req.channel)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()).field("channel"))?;
    check_group(&req.group)
        .map_err(|e| ApiError::bad_request("invalid_name", e.to_string()).field("group"))?;
    if !app.db.channel_exists(&req.channel).await? {
        return Err(ApiError::unprocessable(
            "unknown_channel",
            format!("unknown channel {:?}", req.channel),
        )
        .field("channel"));
    }
    if app.db.group(&req.group).await?.is_none() {
        return Err(ApiError::unprocessable(
            "unknown_group",
            format!("unknown group {:?}", req.group),
        )
        .field("group"));
    }
    let release = app
        .db
        .release(&req.version, &req.board)
        .await?
        .filter(|r| r.present)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "unknown_release",
                format!(
                    "release {} for board {:?} is not in the signed repository",
                    req.version, req.board
                ),
            )
            .field("version")
        })?;
    if !release.channels.contains(&req.channel) {
        return Err(ApiError::unprocessable(
            "not_signed_for_channel",
            format!(
                "release {} is signed for {:?}, not for channel {:?}",
                req.version, release.channels, req.channel
            ),
        )
        .field("channel"));
    }
    Ok(())
}

/// Creates the rollout `req` describes as `actor` (see [`check_new`]),
/// returning its id; audited as `rollout.create`.
pub async fn create(app: &AppState, actor: &str, req: &CreateRollout) -> Result<i64, ApiError> {
    check_new(app, req).await?;
    let now = app.clock.now();
    let record = RolloutRecord {
        id: 0,
        version: req.version.clone(),
        board: req.board.clone(),
        channel: req.channel.clone(),
        group: req.group.clone(),
        policy: req.policy.clone(),
        state: RolloutState::new(now),
        revision: 0,
        created_at: now,
    };
    let mut change = app
        .db
        .change(actor, "rollout.create", "rollout", now)
        .await?;
    let id = app.db.insert_rollout(change.tx(), &record).await?;
    change.set_subject(format!("rollout/{id}"));
    let after = serde_json::json!({
        "version": req.version, "board": req.board, "channel": req.channel, "group": req.group,
        "policy": req.policy, "state": record.state,
    });
    change.commit(None, Some(&after)).await?;
    app.caches.clear();
    Ok(id)
}

/// The state after a policy change: the step index stays, but never past
/// the new ramp's last step.
pub fn state_for_policy(state: RolloutState, policy: &RolloutPolicy) -> RolloutState {
    RolloutState {
        step: state.step.min(policy.steps.len().saturating_sub(1)),
        ..state
    }
}

/// Replaces the policy of rollout `id` as `actor`; audited as
/// `rollout.policy` with the old and new policy. Only active or paused
/// rollouts can change.
pub async fn change_policy(
    app: &AppState,
    actor: &str,
    id: i64,
    policy: RolloutPolicy,
) -> Result<(), ApiError> {
    use moho_rollout::RolloutStatus;
    let now = app.clock.now();
    let record = record(app, id).await?;
    if matches!(
        record.state.status,
        RolloutStatus::Aborted | RolloutStatus::Reverted
    ) {
        return Err(ApiError::conflict(
            "invalid_action",
            format!("rollout {id} is stopped; its policy can no longer change"),
        ));
    }
    let state = state_for_policy(record.state, &policy);
    let mut change = app
        .db
        .change(actor, "rollout.policy", format!("rollout/{id}"), now)
        .await?;
    if !app
        .db
        .save_rollout_policy(change.tx(), id, record.revision, &policy, &state)
        .await?
    {
        change.abandon().await?;
        return Err(concurrent(id));
    }
    let before = serde_json::json!({"policy": record.policy, "state": record.state});
    let after = serde_json::json!({"policy": policy, "state": state});
    change.commit(Some(&before), Some(&after)).await?;
    app.caches.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip_and_steps_stay_in_range() {
        for a in [Action::Pause, Action::Resume, Action::Abort, Action::Revert] {
            assert_eq!(parse_action(action_name(a)), Some(a));
            // Same spelling as the API's JSON.
            assert_eq!(
                serde_json::to_value(a).ok(),
                Some(serde_json::json!(action_name(a)))
            );
        }
        assert_eq!(parse_action("explode"), None);
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap_or_default();
        let mut s = RolloutState::new(t0);
        s.step = 3;
        let two: RolloutPolicy = serde_json::from_value(
            serde_json::json!({"steps": [{"percent": 10}, {"percent": 100}]}),
        )
        .unwrap_or_else(|_| RolloutPolicy::immediate());
        assert_eq!(state_for_policy(s, &two).step, 1);
    }
}
