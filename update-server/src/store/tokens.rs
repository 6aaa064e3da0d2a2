//! Admin and viewer tokens as stored: only the SHA-256 of a secret is kept,
//! with a public id (its first 16 hex digits), a name, a role, an optional
//! expiry, when it was revoked and when it was last used. Revoked tokens
//! stay in the table for the list and the audit trail; the rules (unique
//! live names, the last admin) are in `crate::tokens`.

use jiff::Timestamp;
use moho_protocol::admin::{Role, TokenView};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, StoreError, Tx, from_millis, millis};

const TOKEN_COLUMNS: &str = "id, name, role, created_at, expires_at, revoked_at, last_used_at";

fn token_from_row(r: &AnyRow) -> Result<TokenView, StoreError> {
    let role: String = r.try_get("role")?;
    let ts = |col: &str| -> Result<Option<Timestamp>, sqlx::Error> {
        Ok(r.try_get::<Option<i64>, _>(col)?.map(from_millis))
    };
    Ok(TokenView {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        // A role this version does not know may do nothing beyond reading.
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_at: from_millis(r.try_get("created_at")?),
        expires_at: ts("expires_at")?,
        revoked_at: ts("revoked_at")?,
        last_used_at: ts("last_used_at")?,
    })
}

/// The public id of the token whose secret hashes to `hash`.
pub fn token_id(hash: &str) -> String {
    hash.chars().take(16).collect()
}

impl Db {
    /// Stores a token inside `tx` under the hash of its secret; the secret
    /// itself is never stored.
    pub async fn insert_token(
        &self,
        tx: &mut Tx,
        hash: &str,
        t: &TokenView,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (hash, id, name, role, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(hash)
        .bind(&t.id)
        .bind(&t.name)
        .bind(t.role.as_str())
        .bind(millis(t.created_at))
        .bind(t.expires_at.map(millis))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The token whose secret hashes to `hash`, live or not.
    pub async fn token(&self, hash: &str) -> Result<Option<TokenView>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Every token (`all`) or only those live at `now`, oldest first.
    pub async fn tokens(&self, all: bool, now: Timestamp) -> Result<Vec<TokenView>, StoreError> {
        let rows = if all {
            let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, name");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(self.reader())
                .await?
        } else {
            let sql = format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens
                 WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)
                 ORDER BY created_at, name"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(millis(now))
                .fetch_all(self.reader())
                .await?
        };
        rows.iter().map(token_from_row).collect()
    }

    /// The tokens live at `now`, read inside `tx` (so a check and the change
    /// it guards see the same table).
    pub async fn live_tokens_tx(
        &self,
        tx: &mut Tx,
        now: Timestamp,
    ) -> Result<Vec<TokenView>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens
             WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1) ORDER BY id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(millis(now))
            .fetch_all(&mut **tx)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// The token with public id `id`, read inside `tx`.
    pub async fn token_by_id_tx(
        &self,
        tx: &mut Tx,
        id: &str,
    ) -> Result<Option<TokenView>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Marks token `id` revoked at `now` inside `tx`, and ends its
    /// dashboard sessions.
    pub async fn revoke_token(
        &self,
        tx: &mut Tx,
        id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM sessions WHERE token_hash IN (SELECT hash FROM tokens WHERE id = $1)",
        )
        .bind(id)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(millis(now))
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Records that the token was used at `now` (callers do it at most once
    /// a minute per token).
    pub async fn touch_token(&self, hash: &str, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE hash = $2")
            .bind(millis(now))
            .bind(hash)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
