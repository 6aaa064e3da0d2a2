//! The shared state of a running server: storage, clock, settings, caches,
//! metrics, the check-in batcher and the live event stream, cloned into every handler and
//! background job.

use std::sync::Arc;

use crate::cache::Caches;
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::store::Db;

/// Everything a handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Storage.
    pub db: Db,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub config: Arc<ServerConfig>,
    /// Caches of rollouts, releases and holds.
    pub caches: Arc<Caches>,
    /// Parsed node public keys.
    pub keys: Arc<crate::keys::KeyCache>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Rollback state of the served repository (after the last verification).
    pub repo_state: Arc<std::sync::Mutex<Option<moho_release::TrustedState>>>,
    /// When the served repository's metadata expires (after the last
    /// verification): `/metrics` and the dashboard's alert read it.
    pub repo_expiry: Arc<std::sync::Mutex<Option<moho_release::Expiry>>>,
    /// The served generation [`crate::jobs::follow`] last verified.
    pub followed: Arc<std::sync::Mutex<Option<i64>>>,
    /// Serialises publications.
    pub publish_lock: Arc<tokio::sync::Mutex<()>>,
    /// Batches the node writes of concurrent check-ins and reports.
    pub check_ins: crate::store::CheckInBatcher,
    /// Hot node state (counters, facts, keys) in memory.
    pub hot: Arc<crate::store::HotNodes>,
    /// The dashboard's caches.
    pub dashboard: Arc<crate::dashboard::DashboardState>,
    /// Per-source limits on unauthenticated requests.
    pub limits: Arc<crate::http::limits::RateLimits>,
    /// The live event stream's fan-out (its tailer runs from the start).
    pub live: crate::live_events::LiveEvents,
    /// Whether this replica runs the background jobs (holds the lease of
    /// [`crate::jobs::leader`]); true until a lease says otherwise.
    pub leader: Arc<std::sync::atomic::AtomicBool>,
}

impl AppState {
    /// Builds the state (starts the check-in batching task: needs a tokio
    /// runtime).
    pub fn new(db: Db, clock: Arc<dyn Clock>, config: ServerConfig) -> Self {
        // Several replicas may share a PostgreSQL database: there memory
        // only refuses (a check-in it would accept is confirmed by the
        // database's compare-and-set on the counter).
        let shared = db.backend() == crate::store::Backend::Postgres;
        let hot = Arc::new(crate::store::HotNodes::with_capacity(config.hot_nodes).shared(shared));
        let live = crate::live_events::LiveEvents::new(config.live_events_buffer);
        live.start_tailer(db.clone(), crate::live_events::TICK);
        Self {
            live,
            check_ins: crate::store::CheckInBatcher::start(db.clone(), hot.clone()),
            hot,
            db,
            clock,
            caches: Arc::default(),
            keys: Arc::default(),
            metrics: Arc::new(Metrics::new()),
            repo_state: Arc::default(),
            repo_expiry: Arc::default(),
            followed: Arc::default(),
            publish_lock: Arc::default(),
            dashboard: Arc::default(),
            limits: Arc::new(crate::http::limits::RateLimits::new(config.rate_limits)),
            leader: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            config: Arc::new(config),
        }
    }

    /// Records what the server now serves: the rollback state and the
    /// metadata's expiry of a repository it just verified.
    pub fn remember_repo(&self, repo: &moho_release::VerifiedRepository) {
        *self
            .repo_state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(repo.trusted_state());
        *self
            .repo_expiry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(repo.expiry());
    }

    /// The served generation last followed (see [`crate::jobs::follow`]).
    pub fn followed_generation(&self) -> Option<i64> {
        *self
            .followed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that generation `number` was verified and remembered.
    pub fn set_followed_generation(&self, number: i64) {
        *self
            .followed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(number);
    }

    /// Whether this replica runs the background jobs now.
    pub fn is_leader(&self) -> bool {
        self.leader.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Records whether this replica leads; returns what was recorded before.
    pub fn set_leader(&self, leading: bool) -> bool {
        self.leader
            .swap(leading, std::sync::atomic::Ordering::SeqCst)
    }

    /// When the served metadata expires, if a repository was verified.
    pub fn repo_expiry(&self) -> Option<moho_release::Expiry> {
        *self
            .repo_expiry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
