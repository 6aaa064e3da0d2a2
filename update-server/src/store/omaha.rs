//! Flatcar nodes (Omaha, unsigned): what the endpoint reads before it
//! plans (the node's attempt in flight), and the one transaction that
//! writes a request's outcome — the node row, its events, its attempt
//! change. A Flatcar request can never write to a Moho node's row: the id
//! of a node registered with a key is refused.

use jiff::Timestamp;
use moho_protocol::Event;
use moho_protocol::admin::OmahaClient;

use super::nodes::insert_events;
use super::rollouts::{advance_attempts_with, finish_attempts_with};
use super::{AttemptStatus, Db, Phase, StoreError, millis};

/// What an Omaha request says about its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatcarNode<'a> {
    /// Id (the machine id).
    pub id: &'a str,
    /// Channel.
    pub channel: &'a str,
    /// Group.
    pub group: &'a str,
    /// Board.
    pub board: &'a str,
    /// Running version.
    pub version: &'a str,
    /// State after the request.
    pub state: &'a str,
    /// Machine alias ('' if none).
    pub hostname: &'a str,
    /// Version in the other partition, as far as known.
    pub fallback_version: Option<&'a str>,
    /// Its own description.
    pub client: &'a OmahaClient,
}

/// The change to the node's attempt (see `omaha::plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptWrite<'a> {
    /// Set the phase of the attempt at `version` still in flight.
    Advance {
        /// Release version.
        version: &'a str,
        /// Phase.
        phase: Phase,
    },
    /// End the attempt at `version` still in flight.
    Finish {
        /// Release version.
        version: &'a str,
        /// Status.
        status: AttemptStatus,
        /// Phase.
        phase: Phase,
    },
}

/// How the write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlatcarWrite {
    /// Written.
    Done,
    /// The id belongs to a Moho node: nothing written.
    MohoNode,
}

impl Db {
    /// The version of the newest attempt of `node_id` still in flight: what
    /// its Omaha events are about.
    pub async fn in_flight_version(&self, node_id: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT r.version FROM attempts a JOIN rollouts r ON r.id = a.rollout_id
             WHERE a.node_id = $1 AND a.status = 'in_flight' ORDER BY a.started_at DESC LIMIT 1",
        )
        .bind(node_id)
        .fetch_optional(self.reader())
        .await?)
    }

    /// Writes one Omaha request's outcome in one transaction: registers or
    /// updates the Flatcar node, stores its events, applies the attempt
    /// change. Refuses (writing nothing) an id registered by a Moho agent.
    pub async fn record_flatcar(
        &self,
        n: &FlatcarNode<'_>,
        events: &[Event],
        attempt: Option<AttemptWrite<'_>>,
        now: Timestamp,
    ) -> Result<FlatcarWrite, StoreError> {
        let client = serde_json::to_string(n.client).map_err(|source| StoreError::Corrupt {
            what: "omaha client",
            source,
        })?;
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO nodes (id, public_key, counter, channel, grp, board, version, slot, state, last_seen, registered_at, hostname, fallback_version, kind, omaha)
             VALUES ($1, '', 0, $2, $3, $4, $5, '', $6, $7, $7, $8, $9, 'flatcar', $10)
             ON CONFLICT (id) DO UPDATE SET channel = $2, grp = $3, board = $4, version = $5, state = $6,
                 last_seen = $7, hostname = $8, fallback_version = $9, omaha = $10
             WHERE nodes.kind = 'flatcar'",
        )
        .bind(n.id)
        .bind(n.channel)
        .bind(n.group)
        .bind(n.board)
        .bind(n.version)
        .bind(n.state)
        .bind(millis(now))
        .bind(n.hostname)
        .bind(n.fallback_version)
        .bind(client)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(FlatcarWrite::MohoNode);
        }
        insert_events(&mut tx, n.id, events, now).await?;
        match attempt {
            None => {}
            Some(AttemptWrite::Advance { version, phase }) => {
                advance_attempts_with(&mut *tx, n.id, version, phase).await?;
            }
            Some(AttemptWrite::Finish {
                version,
                status,
                phase,
            }) => {
                finish_attempts_with(&mut *tx, n.id, version, status, phase, now).await?;
            }
        }
        tx.commit().await?;
        Ok(FlatcarWrite::Done)
    }
}
