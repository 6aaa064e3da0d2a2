//! Enrolment tokens as stored (only the SHA-256 of a secret, a public id,
//! the group and optional channel their nodes land in, expiry, use limit,
//! uses, revocation), and the registration of a node with one: the use is
//! taken by a conditional `UPDATE` in the same audited transaction as the
//! node's row, so a token's limit holds across concurrent first check-ins
//! and replicas. The rules are in `crate::enrollment`; the reads and the
//! revocation it shares with admin tokens are in `secrets.rs`.

use jiff::Timestamp;
use moho_protocol::admin::EnrollmentTokenView;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::nodes::NodeUpsert;
use super::secrets::{StoredSecret, time};
use super::{Db, StoreError, Tx, from_millis, millis};

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

impl StoredSecret for EnrollmentTokenView {
    const TABLE: &'static str = "enrollment_tokens";
    const COLUMNS: &'static str =
        "id, name, grp, channel, created_at, expires_at, max_uses, uses, revoked_at, last_used_at";

    fn from_row(r: &AnyRow) -> Result<Self, StoreError> {
        Ok(EnrollmentTokenView {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            group: r.try_get("grp")?,
            channel: r.try_get("channel")?,
            created_at: from_millis(r.try_get("created_at")?),
            expires_at: time(r, "expires_at")?,
            max_uses: r
                .try_get::<Option<i64>, _>("max_uses")?
                .map(|m| u64::try_from(m).unwrap_or(0)),
            uses: u64::try_from(r.try_get::<i64, _>("uses")?).unwrap_or(0),
            revoked_at: time(r, "revoked_at")?,
            last_used_at: time(r, "last_used_at")?,
        })
    }
}

/// The scope a node registered with a group's enrolment token was admitted
/// to: the token's group, and its channel if it named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The group.
    pub group: String,
    /// The channel, if the token fixed one.
    pub channel: Option<String>,
}

impl Pin {
    /// The scope `token` admits to.
    pub fn of(token: &EnrollmentTokenView) -> Self {
        Self {
            group: token.group.clone(),
            channel: token.channel.clone(),
        }
    }

    /// Whether a check-in naming `channel` and `group` stays in the scope.
    pub fn holds(&self, channel: &str, group: &str) -> bool {
        self.group == group && self.channel.as_deref().is_none_or(|c| c == channel)
    }
}

/// What a check-in's re-admission looks at of a stored node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledNode {
    /// Its pin, if a group's token registered it.
    pub pin: Option<Pin>,
    /// Its key.
    pub public_key: String,
    /// The last counter stored.
    pub counter: u64,
}

/// Counts one use of the token with `hash` if it is live at `now`: a
/// conditional `UPDATE`, so a use limit holds across concurrent
/// registrations and replicas. False: revoked, expired or used up (nothing
/// written).
async fn take_use(tx: &mut Tx, hash: &str, now: Timestamp) -> Result<bool, StoreError> {
    let taken = sqlx::query(
        "UPDATE enrollment_tokens SET uses = uses + 1, last_used_at = $2
         WHERE hash = $1 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > $2)
           AND (max_uses IS NULL OR uses < max_uses)",
    )
    .bind(hash)
    .bind(millis(now))
    .execute(&mut **tx)
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Records the scope a node was admitted to (`None`: free to move).
async fn set_pin(tx: &mut Tx, node_id: &str, pin: Option<&Pin>) -> Result<(), StoreError> {
    sqlx::query("UPDATE nodes SET enrolled_group = $1, enrolled_channel = $2 WHERE id = $3")
        .bind(pin.map(|p| p.group.clone()))
        .bind(pin.and_then(|p| p.channel.clone()))
        .bind(node_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
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
        self.secret_by_hash(hash).await
    }

    /// Every enrolment token (`all`) or those live at `now`, oldest first.
    pub async fn enrollment_tokens(
        &self,
        all: bool,
        now: Timestamp,
    ) -> Result<Vec<EnrollmentTokenView>, StoreError> {
        self.secrets(all, now).await
    }

    /// Every enrolment token, read inside `tx`.
    pub async fn enrollment_tokens_tx(
        &self,
        tx: &mut Tx,
    ) -> Result<Vec<EnrollmentTokenView>, StoreError> {
        self.secrets_tx(tx).await
    }

    /// Marks enrolment token `id` revoked at `now` inside `tx`.
    pub async fn revoke_enrollment_token(
        &self,
        tx: &mut Tx,
        id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.revoke_secret::<EnrollmentTokenView>(tx, id, now).await
    }

    /// Opens the audited `node.enroll` change of node `node_id` by
    /// `enrollment:NAME` and takes one use of `token` in it (under the
    /// token's lock); `None` (nothing written) if the token is no longer
    /// live at `now`.
    async fn begin_enrollment(
        &self,
        node_id: &str,
        token: &EnrollmentTokenView,
        hash: &str,
        now: Timestamp,
    ) -> Result<Option<super::Change>, StoreError> {
        let mut change = self
            .change(
                &format!("enrollment:{}", token.name),
                "node.enroll",
                format!("node/{node_id}"),
                now,
            )
            .await?;
        self.lock(change.tx(), &format!("moho-enrollment:{}", token.id))
            .await?;
        if !take_use(change.tx(), hash, now).await? {
            change.abandon().await?;
            return Ok(None);
        }
        Ok(Some(change))
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
        let Some(change) = self.begin_enrollment(node_id, token, hash, now).await? else {
            return Ok(false);
        };
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
        let Some(mut change) = self.begin_enrollment(n.id, token, hash, now).await? else {
            return Ok(EnrollmentUse::NotLive);
        };
        if !super::nodes::insert_node(change.tx(), n, counter, now).await? {
            change.abandon().await?;
            return Ok(EnrollmentUse::Exists);
        }
        set_pin(change.tx(), n.id, Some(&Pin::of(token))).await?;
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

impl Db {
    /// Node `node_id`'s pin, key and counter, if it exists.
    pub async fn enrolled_node(&self, node_id: &str) -> Result<Option<EnrolledNode>, StoreError> {
        let row: Option<(Option<String>, Option<String>, String, i64)> = sqlx::query_as(
            "SELECT enrolled_group, enrolled_channel, public_key, counter FROM nodes WHERE id = $1",
        )
        .bind(node_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(
            row.map(|(group, channel, public_key, counter)| EnrolledNode {
                pin: group.map(|group| Pin { group, channel }),
                public_key,
                counter: u64::try_from(counter).unwrap_or(0),
            }),
        )
    }

    /// Admits enrolled node `node_id` to another scope: with `token`, takes
    /// one of its uses and pins the node to its scope; without (open
    /// registration, the server-wide token), unpins it. Audited as
    /// `node.move` by `actor`, before and after the pin. False (nothing
    /// written): the token stopped being live meanwhile.
    pub async fn move_enrolled_node(
        &self,
        node_id: &str,
        from: &Pin,
        token: Option<(&EnrollmentTokenView, &str)>,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut change = self
            .change(actor, "node.move", format!("node/{node_id}"), now)
            .await?;
        let to = token.map(|(t, _)| Pin::of(t));
        if let Some((t, hash)) = token {
            self.lock(change.tx(), &format!("moho-enrollment:{}", t.id))
                .await?;
            if !take_use(change.tx(), hash, now).await? {
                change.abandon().await?;
                return Ok(false);
            }
        }
        set_pin(change.tx(), node_id, to.as_ref()).await?;
        let before =
            serde_json::json!({"enrolled_group": from.group, "enrolled_channel": from.channel});
        let after = serde_json::json!({
            "token": token.map(|(t, _)| t.id.clone()),
            "enrolled_group": to.as_ref().map(|p| p.group.clone()),
            "enrolled_channel": to.and_then(|p| p.channel),
        });
        change.commit(Some(&before), Some(&after)).await?;
        Ok(true)
    }
}
