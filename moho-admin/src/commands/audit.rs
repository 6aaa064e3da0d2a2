//! `moho-admin audit`: the audit log, newest first, with filters.

use clap::Args;
use moho_protocol::admin::{AuditEntry, List};

use super::{Ctx, Report};
use crate::client::with_query;
use crate::error::CliError;
use crate::output::{Table, ts};

/// `audit` filters.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Most entries (1-1000).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Only entries older than this id (the next page).
    #[arg(long)]
    pub before: Option<i64>,
    /// Only this actor (a token name, `system` or `local`).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action (rollout.pause), or a family ending in a dot
    /// (rollout.).
    #[arg(long)]
    pub action: Option<String>,
    /// Only this subject (rollout/3, group/db, token/ID).
    #[arg(long)]
    pub subject: Option<String>,
}

/// What changed, in one short line: the fields whose value differs.
fn change(e: &AuditEntry) -> String {
    let (Some(serde_json::Value::Object(b)), Some(serde_json::Value::Object(a))) =
        (&e.before, &e.after)
    else {
        return match (&e.before, &e.after) {
            (None, Some(_)) => "created".into(),
            (Some(_), None) => "removed".into(),
            _ => String::new(),
        };
    };
    let keys: Vec<&str> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.as_str())
        .collect();
    if keys.is_empty() {
        "no change".into()
    } else {
        format!("changed {}", keys.join(", "))
    }
}

impl AuditArgs {
    /// Runs the command.
    pub fn run(self, ctx: &Ctx<'_>) -> Result<Report, CliError> {
        if !(1..=1000).contains(&self.limit) {
            return Err(CliError::Usage(format!(
                "invalid --limit {}: use 1 to 1000",
                self.limit
            )));
        }
        let path = with_query(
            "/audit",
            &[
                ("limit", Some(self.limit.to_string())),
                ("before", self.before.map(|b| b.to_string())),
                ("actor", self.actor),
                ("action", self.action),
                ("subject", self.subject),
            ],
        );
        let list: List<AuditEntry> = ctx.api.get(&path)?;
        let mut t = Table::new(&["ID", "AT", "ACTOR", "ACTION", "SUBJECT", "CHANGE"]);
        for e in &list.items {
            t.row(vec![
                e.id.to_string(),
                ts(e.at),
                e.actor.clone(),
                e.action.clone(),
                e.subject.clone(),
                change(e),
            ]);
        }
        Ok(Report::new(&list, t.render()))
    }
}
