//! Enrolment tokens as stored (only the SHA-256 of a secret, a public id,
//! the group and optional channel their nodes land in, expiry, use limit,
//! uses, revocation), and the registration of a node with one: the use is
//! taken by a conditional `UPDATE` in the same audited transaction as the
//! node's row, so a token's limit holds across concurrent first check-ins
//! and replicas. The rules are in `crate::enrollment`.

use jiff::Timestamp;
use moho_protocol::admin::EnrollmentTokenView;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::nodes::NodeUpsert;
use super::{Db, StoreError, Tx, from_millis, millis};

const COLUMNS: &str =
    "id, name, grp, channel, created_at, expires_at, max_uses, uses, revoked_at, last_used_at";

/// How a registration with an enrolment token ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollmentUse {
    /// The node was registered and the use counted.
    Created,
    /// The id was registered meanwhile (nothing counted).
    Exists,
    /// The token stopped being live before its use was taken (revoked,
    /// expired or used up meanwhile); nothing stored.
    NotLive,
}

fn from_row(r: &AnyRow) -> Result<EnrollmentTokenView, StoreError> {
    let ts = |col: &str| -> Result<Option<Timestamp>, sqlx::Error> {
        Ok(r.try_get::<Option<i64>, _>(col)?.map(from_millis))
    };
    Ok(EnrollmentTokenView {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        group: r.try_get("grp")?,
        channel: r.try_get("channel")?,
        created_at: from_millis(r.try_get("created_at")?),
        expires_at: ts("expires_at")?,
        max_uses: r
            .try_get::<Option<i64>, _>("max_uses")?
            .map(|m| u64::try_from(m).unwrap_or(0)),
        uses: u64::try_from(r.try_get::<i64, _>("uses")?).unwrap_or(0),
        revoked_at: ts("revoked_at")?,
        last_used_at: ts("last_used_at")?,
    })
}

fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Db {
    /// Stores an enrolment token inside `tx` under the hash of its secret.
    pub async fn insert_enrollment_token(
        &self,
        tx: &mut Tx,
        hash: &str,
        t: &EnrollmentTokenView,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO enrollment_tokens (hash, id, name, grp, channel, created_at, expires_at, max_uses, uses)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)",
        )
        .bind(hash)
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.group)
        .bind(t.channel.as_deref())
        .bind(millis(t.created_at))
        .bind(t.expires_at.map(millis))
        .bind(t.max_uses.map(to_db))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The enrolment token whose secret hashes to `hash`, live or not.
    pub async fn enrollment_token(
        &self,
        hash: &str,
    ) -> Result<Option<EnrollmentTokenView>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM enrollment_tokens WHERE hash = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(hash)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every enrolment token (`all`) or those live at `now`, oldest first.
    pub async fn enrollment_tokens(
        &self,
        all: bool,
        now: Timestamp,
    ) -> Result<Vec<EnrollmentTokenView>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM enrollment_tokens ORDER BY created_at, name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.reader())
            .await?;
        let items: Vec<EnrollmentTokenView> =
            rows.iter().map(from_row).collect::<Result<_, _>>()?;
        Ok(items
            .into_iter()
            .filter(|t| all || t.is_live(now))
            .collect())
    }

    /// Every enrolment token, read inside `tx`.
    pub async fn enrollment_tokens_tx(
        &self,
        tx: &mut Tx,
    ) -> Result<Vec<EnrollmentTokenView>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM enrollment_tokens ORDER BY id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut **tx)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Marks enrolment token `id` revoked at `now` inside `tx`.
    pub async fn revoke_enrollment_token(
        &self,
        tx: &mut Tx,
        id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE enrollment_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(millis(now))
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Takes one use of `token` for the Flatcar node `node_id` (Omaha: its
    /// row is written with its report right after), only if the token is
    /// still live at `now`; audited as `node.enroll`. False: not live.
    pub async fn take_enrollment_use(
        &self,
        node_id: &str,
        token: &EnrollmentTokenView,
        hash: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut change = self
            .change(
                &format!("enrollment:{}", token.name),
                "node.enroll",
                format!("node/{node_id}"),
                now,
            )
            .await?;
        let taken = sqlx::query(
            "UPDATE enrollment_tokens SET uses = uses + 1, last_used_at = $2
             WHERE hash = $1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2)
               AND (max_uses IS NULL OR uses < max_uses)",
        )
        .bind(hash)
        .bind(millis(now))
        .execute(&mut **change.tx())
        .await?;
        if taken.rows_affected() != 1 {
            change.abandon().await?;
            return Ok(false);
        }
        let after = serde_json::json!({"token": token.id, "kind": "flatcar"});
        change.commit(None, Some(&after)).await?;
        Ok(true)
    }

    /// Registers node `n` with the enrolment token `token` (already judged
    /// live and in scope): takes one use — only if the token is still live
    /// at `now` — and inserts the node, audited as `node.enroll` by
    /// `enrollment:NAME`, all in one transaction.
    pub async fn enroll_node(
        &self,
        n: &NodeUpsert<'_>,
        counter: u64,
        token: &EnrollmentTokenView,
        hash: &str,
        now: Timestamp,
    ) -> Result<EnrollmentUse, StoreError> {
        let mut change = self
            .change(
                &format!("enrollment:{}", token.name),
                "node.enroll",
                format!("node/{}", n.id),
                now,
            )
            .await?;
        self.lock(change.tx(), &format!("moho-enrollment:{}", token.id))
            .await?;
        let taken = sqlx::query(
            "UPDATE enrollment_tokens SET uses = uses + 1, last_used_at = $2
             WHERE hash = $1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2)
               AND (max_uses IS NULL OR uses < max_uses)",
        )
        .bind(hash)
        .bind(millis(now))
        .execute(&mut **change.tx())
        .await?;
        if taken.rows_affected() != 1 {
            change.abandon().await?;
            return Ok(EnrollmentUse::NotLive);
        }
        if !super::nodes::insert_node(change.tx(), n, counter, now).await? {
            change.abandon().await?;
            return Ok(EnrollmentUse::Exists);
        }
        let after = serde_json::json!({
            "token": token.id,
            "channel": n.channel,
            "group": n.group,
            "board": n.board,
            "version": n.version,
        });
        change.commit(None, Some(&after)).await?;
        Ok(EnrollmentUse::Created)
    }
}
