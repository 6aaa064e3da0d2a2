//! Dashboard sessions: a browser that logged in with an API token holds a
//! random session id in a cookie; the database keeps only its SHA-256, the
//! hash of the token it was opened with (so revoking the token, or its
//! expiry, ends its sessions, and the role is always the token's current
//! one), the session's CSRF secret and its expiry.

use jiff::Timestamp;
use moho_protocol::admin::Role;
use sqlx::Row;

use super::{Db, StoreError, millis};

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The token's name (the audit log's actor).
    pub name: String,
    /// The token's role.
    pub role: Role,
    /// The secret every form of this session must carry.
    pub csrf: String,
}

impl Db {
    /// Stores a new session (and forgets expired ones).
    pub async fn insert_session(
        &self,
        id_hash: &str,
        token_hash: &str,
        csrf: &str,
        now: Timestamp,
        expires: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(token_hash)
        .bind(csrf)
        .bind(millis(now))
        .bind(millis(expires))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The unexpired session with this id hash whose token is still live
    /// (not revoked, not expired).
    pub async fn session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT t.name, t.role, s.csrf FROM sessions s JOIN tokens t ON t.hash = s.token_hash
             WHERE s.id = $1 AND s.expires_at > $2
               AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(id_hash)
        .bind(millis(now))
        .fetch_optional(self.reader())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let Some(role) = Role::parse(&r.try_get::<String, _>("role")?) else {
            return Ok(None);
        };
        Ok(Some(SessionRecord {
            name: r.try_get("name")?,
            role,
            csrf: r.try_get("csrf")?,
        }))
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(id_hash)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
