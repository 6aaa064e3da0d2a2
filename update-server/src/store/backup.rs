//! Backups of the database. SQLite: a consistent copy taken while the
//! server runs (`VACUUM INTO`, one read transaction: writers go on), and the
//! check a restore makes before it puts a copy in place (integrity, and
//! that it is a Moho database). PostgreSQL is backed up with its own
//! tools (`pg_dump`), see `crate::backup_cmd`.

use std::path::Path;

use sqlx::Row;
use sqlx::any::AnyPoolOptions;

use super::{Backend, Db, StoreError};

impl Db {
    /// Writes a consistent copy of the SQLite database to `out` (which must
    /// not exist). `None` on PostgreSQL, which this cannot copy.
    pub async fn backup_sqlite(&self, out: &Path) -> Result<Option<()>, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        sqlx::query("VACUUM INTO $1")
            .bind(out.display().to_string())
            .execute(&self.read)
            .await?;
        Ok(Some(()))
    }
}

/// What a restore found in a backup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// The schema version it was made with.
    pub schema_version: i64,
    /// Registered nodes in it.
    pub nodes: i64,
    /// Rollouts in it.
    pub rollouts: i64,
}

/// Opens `file` read-only as SQLite and checks that it is an intact Moho
/// database: `PRAGMA integrity_check` says ok and the schema table is there.
pub async fn check_sqlite_backup(file: &Path) -> Result<BackupInfo, StoreError> {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=ro", file.display());
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let result = async {
        let ok: String = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await?
            .try_get(0)?;
        if ok != "ok" {
            return Err(StoreError::Backup(format!(
                "{} fails the integrity check: {ok}",
                file.display()
            )));
        }
        let schema_version: i64 = sqlx::query("SELECT MAX(version) FROM moho_schema")
            .fetch_one(&pool)
            .await
            .map_err(|e| {
                StoreError::Backup(format!(
                    "{} is not a Moho database (no schema version: {e})",
                    file.display()
                ))
            })?
            .try_get(0)?;
        let count = |table: &'static str| {
            let pool = pool.clone();
            async move {
                let n: i64 =
                    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                        .fetch_one(&pool)
                        .await?
                        .try_get(0)?;
                Ok::<_, StoreError>(n)
            }
        };
        Ok(BackupInfo {
            schema_version,
            nodes: count("nodes").await?,
            rollouts: count("rollouts").await?,
        })
    }
    .await;
    pool.close().await;
    result
}
