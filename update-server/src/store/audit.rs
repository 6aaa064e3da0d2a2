//! The audit log, and the one way to change what an operator (or a
//! background job acting as `system`) changes: [`Db::change`] opens a write
//! transaction that knows its actor, action and subject; the change is made
//! through [`Change::tx`]; [`Change::commit`] writes the audit entry with
//! before/after and commits both together. A `Change` cannot be committed
//! without its entry, and one dropped unfinished rolls back, so a change is
//! never stored without its audit entry nor audited without being stored.

use jiff::Timestamp;
use moho_protocol::admin::{AuditEntry, AuditQuery};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, StoreError, Tx, from_millis, millis};

/// An audited change in progress (a write transaction).
#[derive(Debug)]
pub struct Change {
    tx: Tx,
    actor: String,
    action: String,
    subject: String,
    at: Timestamp,
}

impl Db {
    /// Starts a change that `actor` makes to `subject` (e.g. `rollout/7`),
    /// logged as `action` (e.g. `rollout.pause`) at `now`.
    pub async fn change(
        &self,
        actor: &str,
        action: &str,
        subject: impl Into<String>,
        now: Timestamp,
    ) -> Result<Change, StoreError> {
        Ok(Change {
            tx: self.begin().await?,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.into(),
            at: now,
        })
    }

    /// The audit log, newest first, filtered by `q`.
    pub async fn audit_log(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conds = vec!["id < $1".to_owned()];
        let mut texts: Vec<String> = Vec::new();
        for (column, value) in [("actor", &q.actor), ("subject", &q.subject)] {
            if let Some(v) = value {
                texts.push(v.clone());
                conds.push(format!("{column} = ${}", texts.len() + 1));
            }
        }
        if let Some(a) = &q.action {
            if a.ends_with('.') {
                // `rollout.` matches `rollout.pause`, ...: a prefix compared
                // with substr, not LIKE, so that `_` and `%` mean nothing.
                texts.push(a.clone());
                conds.push(format!(
                    "substr(action, 1, {}) = ${}",
                    a.chars().count(),
                    texts.len() + 1
                ));
            } else {
                texts.push(a.clone());
                conds.push(format!("action = ${}", texts.len() + 1));
            }
        }
        let limit = texts.len() + 2;
        // Only column names, lengths and parameter numbers are formatted in.
        let sql = format!(
            "SELECT id, at, actor, action, subject, before_json, after_json FROM audit
             WHERE {} ORDER BY id DESC LIMIT ${limit}",
            conds.join(" AND ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(q.before.unwrap_or(i64::MAX));
        for t in texts {
            query = query.bind(t);
        }
        let rows = query
            .bind(i64::from(q.limit.unwrap_or(100).clamp(1, 1000)))
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(audit_from_row)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

impl Change {
    /// The transaction to make the change in.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Names the subject once it is known (the id of a row the change
    /// inserted).
    pub fn set_subject(&mut self, subject: impl Into<String>) {
        self.subject = subject.into();
    }

    /// Writes the audit entry (`before` and `after` as JSON) and commits it
    /// together with the change.
    pub async fn commit(
        mut self,
        before: Option<&serde_json::Value>,
        after: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (at, actor, action, subject, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(millis(self.at))
        .bind(&self.actor)
        .bind(&self.action)
        .bind(&self.subject)
        .bind(before.map(ToString::to_string))
        .bind(after.map(ToString::to_string))
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Gives the change up: nothing of it is stored, nothing audited.
    pub async fn abandon(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

/// One audit entry from its row (`before_json`/`after_json` parsed).
pub(super) fn audit_from_row(r: &AnyRow) -> Result<AuditEntry, sqlx::Error> {
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    Ok(AuditEntry {
        id: r.try_get("id")?,
        at: from_millis(r.try_get("at")?),
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        before: parse(r.try_get("before_json")?),
        after: parse(r.try_get("after_json")?),
    })
}
