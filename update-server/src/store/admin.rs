//! Admin-side records: channels, groups, holds, API tokens and the audit log.
//! Every change an operator makes goes through [`Db::audit`] in the same
//! transaction as the change.

use jiff::Timestamp;
use moho_protocol::admin::{AuditEntry, GroupView, HoldView, Role};
use moho_rollout::{Hold, HoldKind, HoldTarget};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, StoreError, Tx, from_millis, millis};

/// A token as stored (only its SHA-256 is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Name (the audit log's actor).
    pub name: String,
    /// Role.
    pub role: Role,
}

/// A freshly created token: the secret is shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The bearer secret.
    pub secret: String,
    /// Its record.
    pub record: TokenRecord,
}

fn hold_from_row(r: &AnyRow) -> Result<HoldView, sqlx::Error> {
    let name: String = r.try_get("target_name")?;
    let target = if r.try_get::<String, _>("target_kind")? == "node" {
        HoldTarget::Node(name)
    } else {
        HoldTarget::Group(name)
    };
    let kind = match r.try_get::<Option<String>, _>("version")? {
        Some(version) if r.try_get::<String, _>("kind")? == "pin" => HoldKind::Pin { version },
        _ => HoldKind::Hold,
    };
    Ok(HoldView {
        id: r.try_get("id")?,
        target,
        kind,
        until: from_millis(r.try_get("until")?),
    })
}

fn group_from_row(r: &AnyRow) -> Result<GroupView, sqlx::Error> {
    Ok(GroupView {
        name: r.try_get("name")?,
        fleetlock_slots: u32::try_from(r.try_get::<i64, _>("fleetlock_slots")?).unwrap_or(1),
        fleetlock_lease_secs: u64::try_from(r.try_get::<i64, _>("fleetlock_lease_secs")?)
            .unwrap_or(3600),
    })
}

impl Db {
    /// Writes an audit entry inside `tx`.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit(
        &self,
        tx: &mut Tx,
        actor: &str,
        action: &str,
        subject: &str,
        before: Option<&serde_json::Value>,
        after: Option<&serde_json::Value>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (at, actor, action, subject, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(millis(now))
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(before.map(ToString::to_string))
        .bind(after.map(ToString::to_string))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, subject, before_json, after_json FROM audit ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: from_millis(r.try_get("at")?),
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                    before: parse(r.try_get("before_json")?),
                    after: parse(r.try_get("after_json")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Channel names.
    pub async fn channels(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM channels ORDER BY name")
                .fetch_all(self.reader())
                .await?,
        )
    }

    /// Whether a channel exists.
    pub async fn channel_exists(&self, name: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM channels WHERE name = $1")
            .bind(name)
            .fetch_one(self.reader())
            .await?;
        Ok(n > 0)
    }

    /// Adds a channel inside `tx`; false if it existed.
    pub async fn insert_channel(&self, tx: &mut Tx, name: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("INSERT INTO channels (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .execute(&mut **tx)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// All groups.
    pub async fn groups(&self) -> Result<Vec<GroupView>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, fleetlock_slots, fleetlock_lease_secs FROM groups ORDER BY name",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(group_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    /// One group.
    pub async fn group(&self, name: &str) -> Result<Option<GroupView>, StoreError> {
        let row = sqlx::query(
            "SELECT name, fleetlock_slots, fleetlock_lease_secs FROM groups WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref()
            .map(group_from_row)
            .transpose()
            .map_err(StoreError::from)
    }

    /// Creates or replaces a group inside `tx`.
    pub async fn upsert_group(&self, tx: &mut Tx, g: &GroupView) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO groups (name, fleetlock_slots, fleetlock_lease_secs) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET fleetlock_slots = $2, fleetlock_lease_secs = $3",
        )
        .bind(&g.name)
        .bind(i64::from(g.fleetlock_slots))
        .bind(i64::try_from(g.fleetlock_lease_secs).unwrap_or(i64::MAX))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Adds a hold inside `tx`; returns its id.
    pub async fn insert_hold(&self, tx: &mut Tx, h: &Hold) -> Result<i64, StoreError> {
        let (tk, tn) = match &h.target {
            HoldTarget::Group(g) => ("group", g.as_str()),
            HoldTarget::Node(n) => ("node", n.as_str()),
        };
        let (kind, version) = match &h.kind {
            HoldKind::Hold => ("hold", None),
            HoldKind::Pin { version } => ("pin", Some(version.clone())),
        };
        Ok(sqlx::query_scalar(
            "INSERT INTO holds (target_kind, target_name, kind, version, until) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(tk)
        .bind(tn)
        .bind(kind)
        .bind(version)
        .bind(millis(h.until))
        .fetch_one(&mut **tx)
        .await?)
    }

    /// Removes a hold inside `tx`; returns it if it existed.
    pub async fn delete_hold(&self, tx: &mut Tx, id: i64) -> Result<Option<HoldView>, StoreError> {
        let row = sqlx::query(
            "SELECT id, target_kind, target_name, kind, version, until FROM holds WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        sqlx::query("DELETE FROM holds WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(Some(hold_from_row(&row)?))
    }

    /// Holds that have not expired at `now`.
    pub async fn holds(&self, now: Timestamp) -> Result<Vec<HoldView>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, target_kind, target_name, kind, version, until FROM holds WHERE until > $1 ORDER BY id",
        )
        .bind(millis(now))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(hold_from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
    }

    /// Stores a token's hash; the secret itself is never stored.
    pub async fn insert_token(
        &self,
        hash: &str,
        record: &TokenRecord,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO tokens (hash, name, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(hash)
            .bind(&record.name)
            .bind(record.role.as_str())
            .bind(millis(now))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// The token with this hash.
    pub async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT name, role FROM tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.and_then(|r| {
            let role = Role::parse(&r.try_get::<String, _>("role").ok()?)?;
            Some(TokenRecord {
                name: r.try_get("name").ok()?,
                role,
            })
        }))
    }
}
