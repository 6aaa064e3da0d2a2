//! Admin and viewer tokens as stored: only the SHA-256 of a secret is kept,
//! with a public id (its first 16 hex digits), a name, a role, an optional
//! expiry, when it was revoked and when it was last used. Revoked tokens
//! stay in the table for the list and the audit trail; the rules (unique
//! live names, the last admin) are in `crate::tokens`; the reads and the
//! revocation it shares with enrolment tokens are in `secrets.rs`.

use jiff::Timestamp;
use moho_protocol::admin::{Role, TokenView};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::secrets::{StoredSecret, time};
use super::{Db, StoreError, Tx, from_millis, millis};

impl StoredSecret for TokenView {
    const TABLE: &'static str = "tokens";
    const COLUMNS: &'static str =
        "id, name, role, created_at, expires_at, revoked_at, last_used_at";

    fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        let role: String = r.try_get("role")?;
        Ok(TokenView {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            // A role this version does not know may do nothing beyond reading.
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            created_at: from_millis(r.try_get("created_at")?),
            expires_at: time(r, "expires_at")?,
            revoked_at: time(r, "revoked_at")?,
            last_used_at: time(r, "last_used_at")?,
        })
    }
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
        self.secret_by_hash(hash).await
    }

    /// Every token (`all`) or only those live at `now`, oldest first.
    pub async fn tokens(&self, all: bool, now: Timestamp) -> Result<Vec<TokenView>, StoreError> {
        self.secrets(all, now).await
    }

    /// Every token, read inside `tx` (so a check and the change it guards
    /// see the same table).
    pub async fn tokens_tx(&self, tx: &mut Tx) -> Result<Vec<TokenView>, StoreError> {
        self.secrets_tx(tx).await
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
        self.revoke_secret::<TokenView>(tx, id, now).await
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
