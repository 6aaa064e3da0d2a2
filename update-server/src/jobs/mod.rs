//! Background jobs: the work the server does on its own, not in answer to a
//! request. Each job is one pass (`run_once`-style functions that tests call
//! directly with a fake clock) wrapped in a loop that [`spawn`] starts.
//!
//! - [`rollouts`]: the ticker, the one place where rollouts move on by
//!   themselves (auto-pause, ramp steps).
//! - [`refresh`]: re-signing of the online metadata before it expires.
//! - [`retention`]: forgetting nodes not seen for the configured time.
//!
//! Only the elected replica runs them ([`leader`]): every pass first looks
//! at [`AppState::is_leader`], which the lease task keeps up to date.
//! Every replica runs [`follow`]: it picks up the metadata another replica
//! published, so what this one shows about it is never stale.

pub mod follow;
pub mod leader;
pub mod refresh;
pub mod retention;
pub mod rollouts;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// How often each job runs.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Rollout ticks.
    pub tick: Duration,
    /// Checks whether the online metadata needs re-signing.
    pub refresh: Duration,
    /// Retention passes.
    pub retention: Duration,
    /// Checks (or attempts to take) the jobs' lease.
    pub lease: Duration,
    /// Checks whether another replica published new metadata (every
    /// replica).
    pub follow: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(5),
            refresh: Duration::from_secs(600),
            retention: Duration::from_secs(3600),
            lease: leader::DEFAULT_CHECK,
            follow: leader::DEFAULT_CHECK,
        }
    }
}

/// The running jobs; [`Jobs::stop`] ends them.
#[derive(Debug)]
pub struct Jobs {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    lease_stop: CancellationToken,
    lease: JoinHandle<()>,
}

/// Starts every job on the current runtime, with the lease task that says
/// whether this replica runs them.
pub fn spawn(state: &AppState, schedule: Schedule, lease: Arc<dyn leader::Lease>) -> Jobs {
    // Nobody leads until the lease said so: no pass runs before.
    state.set_leader(false);
    let stop = CancellationToken::new();
    let lease_stop = CancellationToken::new();
    Jobs {
        lease: tokio::spawn(leader::hold(
            state.clone(),
            lease,
            schedule.lease,
            lease_stop.clone(),
        )),
        lease_stop,
        tasks: vec![
            tokio::spawn(rollouts::run(state.clone(), schedule.tick, stop.clone())),
            tokio::spawn(refresh::run(state.clone(), schedule.refresh, stop.clone())),
            tokio::spawn(retention::run(
                state.clone(),
                schedule.retention,
                stop.clone(),
            )),
            tokio::spawn(follow::run(state.clone(), schedule.follow, stop.clone())),
        ],
        stop,
    }
}

impl Jobs {
    /// Asks every job to stop and waits until they ended: a pass in
    /// progress (a tick's transaction, a re-signing and its publication)
    /// finishes; no new pass starts. Then the lease is given up, so a
    /// standby takes over at its next check.
    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!("background job ended abnormally: {e}");
            }
        }
        self.lease_stop.cancel();
        if let Err(e) = self.lease.await {
            tracing::error!("the lease task ended abnormally: {e}");
        }
    }
}
