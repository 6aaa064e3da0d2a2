//! FleetLock reboot slots: one semaphore per group with expiring leases,
//! taken and released atomically across replicas.

use jiff::Timestamp;
use moho_protocol::admin::NodeKind;
use sqlx::Row;

use super::{Db, StoreError, Tx, from_millis, millis};

/// Outcome of a pre-reboot request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// The node holds a slot (newly, or it already did: lease renewed).
    Granted,
    /// All slots are held by others.
    Busy {
        /// Slots of the group.
        slots: u32,
        /// Current holders.
        holders: Vec<String>,
    },
}

/// One slot holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRow {
    /// Node id.
    pub node_id: String,
    /// When taken.
    pub acquired_at: Timestamp,
    /// When the lease runs out.
    pub expires_at: Timestamp,
    /// The updater of the registered node with this id, if any.
    pub kind: Option<NodeKind>,
}

impl Db {
    /// Slots and lease length of a group; groups that were never configured
    /// get one slot and a one-hour lease (so stock FleetLock clients work).
    pub async fn fleetlock_config(&self, group: &str) -> Result<(u32, u64), StoreError> {
        let row =
            sqlx::query("SELECT fleetlock_slots, fleetlock_lease_secs FROM groups WHERE name = $1")
                .bind(group)
                .fetch_optional(self.reader())
                .await?;
        Ok(match row {
            Some(r) => (
                u32::try_from(r.try_get::<i64, _>("fleetlock_slots")?).unwrap_or(1),
                u64::try_from(r.try_get::<i64, _>("fleetlock_lease_secs")?).unwrap_or(3600),
            ),
            None => (1, 3600),
        })
    }

    /// Takes (or renews) a reboot slot for `node_id` in `group`.
    pub async fn fleetlock_acquire(
        &self,
        group: &str,
        node_id: &str,
        now: Timestamp,
    ) -> Result<Acquire, StoreError> {
        let (slots, lease) = self.fleetlock_config(group).await?;
        let expires = millis(now) + i64::try_from(lease).unwrap_or(3600) * 1000;
        let mut tx = self.begin().await?;
        self.lock(&mut tx, &format!("fleetlock-{group}")).await?;
        sqlx::query("DELETE FROM fleetlock WHERE grp = $1 AND expires_at <= $2")
            .bind(group)
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        let holders: Vec<String> =
            sqlx::query_scalar("SELECT node_id FROM fleetlock WHERE grp = $1 ORDER BY acquired_at")
                .bind(group)
                .fetch_all(&mut *tx)
                .await?;
        if holders.iter().any(|h| h == node_id) {
            sqlx::query("UPDATE fleetlock SET expires_at = $1 WHERE grp = $2 AND node_id = $3")
                .bind(expires)
                .bind(group)
                .bind(node_id)
                .execute(&mut *tx)
                .await?;
        } else if holders.len() < usize::try_from(slots).unwrap_or(usize::MAX) {
            sqlx::query("INSERT INTO fleetlock (grp, node_id, acquired_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(group)
                .bind(node_id)
                .bind(millis(now))
                .bind(expires)
                .execute(&mut *tx)
                .await?;
        } else {
            tx.commit().await?;
            return Ok(Acquire::Busy { slots, holders });
        }
        tx.commit().await?;
        Ok(Acquire::Granted)
    }

    /// Releases `node_id`'s slot in `group` (no-op if it holds none), in
    /// `tx` when given (an operator freeing a slot: audited). Returns whether
    /// a slot was released.
    pub async fn fleetlock_release(
        &self,
        tx: Option<&mut Tx>,
        group: &str,
        node_id: &str,
    ) -> Result<bool, StoreError> {
        let q = sqlx::query("DELETE FROM fleetlock WHERE grp = $1 AND node_id = $2")
            .bind(group)
            .bind(node_id);
        let done = match tx {
            Some(tx) => q.execute(&mut **tx).await?,
            None => q.execute(self.writer()).await?,
        };
        Ok(done.rows_affected() > 0)
    }

    /// Unexpired holders of a group's slots.
    pub async fn fleetlock_holders(
        &self,
        group: &str,
        now: Timestamp,
    ) -> Result<Vec<LockRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.node_id, f.acquired_at, f.expires_at, n.kind FROM fleetlock f LEFT JOIN nodes n ON n.id = f.node_id
             WHERE f.grp = $1 AND f.expires_at > $2 ORDER BY f.acquired_at",
        )
        .bind(group)
        .bind(millis(now))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LockRow {
                    node_id: r.try_get("node_id")?,
                    acquired_at: from_millis(r.try_get("acquired_at")?),
                    expires_at: from_millis(r.try_get("expires_at")?),
                    kind: r
                        .try_get::<Option<String>, _>("kind")?
                        .as_deref()
                        .map(NodeKind::parse),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
