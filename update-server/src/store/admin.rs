//! Admin-side records: channels, groups and holds. Changes take the
//! transaction of an audited [`super::Change`].

use jiff::Timestamp;
use moho_protocol::admin::{GroupView, HoldView};
use moho_rollout::{Hold, HoldKind, HoldTarget};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, StoreError, Tx, from_millis, millis};

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
}
