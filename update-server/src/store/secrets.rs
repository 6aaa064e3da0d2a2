//! What admin tokens (table `tokens`) and enrolment tokens (table
//! `enrollment_tokens`) share as stored: one row per secret under its
//! SHA-256, with a public id, a name and its created, expiry, revoked and
//! last-used times. The reads (by hash; every one, or the live ones; every
//! one inside a transaction) and the revocation are written once here over
//! [`StoredSecret`], which each kind implements with its table, columns and
//! row mapping (`tokens.rs`, `enrollment.rs`).

use jiff::Timestamp;
use moho_protocol::secret::NamedSecret;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, StoreError, Tx, from_millis, millis};

/// A kind of stored secret.
pub(super) trait StoredSecret: NamedSecret + Sized {
    /// Its table (a constant, formatted into SQL).
    const TABLE: &'static str;
    /// The columns [`Self::from_row`] reads (a constant).
    const COLUMNS: &'static str;
    /// The secret of a row.
    fn from_row(r: &AnyRow) -> Result<Self, StoreError>;
}

/// The optional time in column `col` of `r`.
pub(super) fn time(r: &AnyRow, col: &str) -> Result<Option<Timestamp>, sqlx::Error> {
    Ok(r.try_get::<Option<i64>, _>(col)?.map(from_millis))
}

impl Db {
    /// The secret of kind `S` whose value hashes to `hash`, live or not.
    pub(super) async fn secret_by_hash<S: StoredSecret>(
        &self,
        hash: &str,
    ) -> Result<Option<S>, StoreError> {
        let sql = format!("SELECT {} FROM {} WHERE hash = $1", S::COLUMNS, S::TABLE);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(S::from_row).transpose()
    }

    /// Every secret of kind `S` (`all`) or only those live at `now`, oldest
    /// first (then by name).
    pub(super) async fn secrets<S: StoredSecret>(
        &self,
        all: bool,
        now: Timestamp,
    ) -> Result<Vec<S>, StoreError> {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY created_at, name",
            S::COLUMNS,
            S::TABLE
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.reader())
            .await?;
        let items: Vec<S> = rows.iter().map(S::from_row).collect::<Result<_, _>>()?;
        Ok(items
            .into_iter()
            .filter(|t| all || t.standing(now).is_live())
            .collect())
    }

    /// Every secret of kind `S`, read inside `tx` (so a check and the
    /// change it guards see the same table), by id.
    pub(super) async fn secrets_tx<S: StoredSecret>(
        &self,
        tx: &mut Tx,
    ) -> Result<Vec<S>, StoreError> {
        let sql = format!("SELECT {} FROM {} ORDER BY id", S::COLUMNS, S::TABLE);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut **tx)
            .await?;
        rows.iter().map(S::from_row).collect()
    }

    /// Marks the secret of kind `S` with id `id` revoked at `now` inside
    /// `tx` (a revoked one keeps its first revocation time).
    pub(super) async fn revoke_secret<S: StoredSecret>(
        &self,
        tx: &mut Tx,
        id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE {} SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            S::TABLE
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(millis(now))
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
