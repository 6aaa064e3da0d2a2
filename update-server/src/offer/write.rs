//! Step 3 of a check-in's answer: the one write the decision asks for. An
//! install that starts an attempt is recorded atomically under the
//! rollout's caps (`Db::start_attempt`, serialised per rollout across
//! replicas); every other answer writes nothing. Before an attempt starts,
//! the check-in that asked for it is in the database: one accepted from
//! memory and written behind is waited for, and refused if its row did not
//! take it (a replay through another replica, a node deleted or re-keyed
//! meanwhile), so nothing a rollout counts rests on memory alone.

use jiff::Timestamp;
use moho_rollout::offer::Offer;

use super::gather::Gathered;
use crate::state::AppState;
use crate::store::{PendingCheckIn, StoreError};

/// Whether the decision could be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded (or nothing to record).
    Done,
    /// The caps of rollout `rollout` were reached meanwhile.
    Capped {
        /// The rollout.
        rollout: i64,
    },
}

/// Records `offer` for `node_id` at `now`.
pub async fn record(
    app: &AppState,
    gathered: &Gathered,
    offer: &Offer,
    node_id: &str,
    pending: &mut Option<PendingCheckIn>,
    now: Timestamp,
) -> Result<Recorded, StoreError> {
    let Offer::Install {
        rollout,
        new_attempt: true,
        ..
    } = offer
    else {
        return Ok(Recorded::Done);
    };
    let Some(live) = gathered.rollout(*rollout) else {
        return Ok(Recorded::Capped { rollout: *rollout });
    };
    if let Some(p) = pending.take()
        && !p.stored().await?
    {
        return Err(StoreError::NotStored(node_id.to_owned()));
    }
    Ok(if app.db.start_attempt(&live.record, node_id, now).await? {
        Recorded::Done
    } else {
        Recorded::Capped { rollout: *rollout }
    })
}
