//! Runtime settings of a server instance, validated from the command line.

use std::path::PathBuf;

use jiff::SignedDuration;

/// Settings the request handlers read.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How often idle nodes should check in.
    pub check_interval: SignedDuration,
    /// A server-wide enrolment token: a first check-in carrying it
    /// registers in any group (the per-group tokens are in the database).
    pub enrollment_token: Option<String>,
    /// Let a node register without any enrolment token (default: closed).
    pub open_registration: bool,
    /// Directory of the TUF repository served under `/repo/`.
    pub repo_dir: PathBuf,
    /// Repository base URL told to nodes; `None`: this server's `/repo`.
    pub repo_url: Option<String>,
    /// Largest node request body, bytes.
    pub max_node_body: usize,
    /// Largest admin request body, bytes.
    pub max_admin_body: usize,
    /// How long cached rollout counters are reused.
    pub stats_ttl: SignedDuration,
    /// How long a rollout's line index is reused before it is rebuilt.
    pub index_ttl: SignedDuration,
    /// How long the dashboard's fleet summary is reused (then served stale
    /// while it is recomputed in the background).
    pub summary_ttl: SignedDuration,
    /// The repository's trusted root metadata (`1.root.json`); without it
    /// nothing can be synced or published.
    pub trusted_root: Option<Vec<u8>>,
    /// Directory with the snapshot and timestamp keys: re-sign them before
    /// expiry. `None`: someone else does (`image-tools repo refresh`).
    pub online_keys: Option<PathBuf>,
    /// How long a timestamp the server re-signs stays valid (re-signed when
    /// half of it, at most 12 h, is left).
    pub timestamp_expiry: std::time::Duration,
    /// Forget nodes not seen for this long (checked hourly); `None`: keep.
    pub node_retention: Option<SignedDuration>,
    /// Forget node events received longer ago than this; `None`: keep them.
    pub event_retention: Option<SignedDuration>,
    /// Forget audit entries older than this; `None`: keep them.
    pub audit_retention: Option<SignedDuration>,
    /// Largest uploaded repository file, bytes.
    pub max_upload: u64,
    /// Whether the server speaks TLS (for the repository URL told to nodes).
    pub tls: bool,
    /// The Omaha endpoint for Flatcar nodes; `None`: off.
    pub omaha: Option<OmahaConfig>,
    /// Per-source limits on registrations, unsigned FleetLock calls and
    /// log-ins.
    pub rate_limits: crate::http::limits::RateLimitConfig,
    /// Nodes whose hot state (counter, facts, key) is held in memory, so
    /// their check-ins are accepted without waiting for the database
    /// (`store/hot.rs`); 0: every request waits for it.
    pub hot_nodes: usize,
    /// Events the live event stream's ring holds: how far a subscriber may
    /// fall behind before it is told it missed events
    /// (`crate::live_events`).
    pub live_events_buffer: usize,
}

/// Settings of the Omaha endpoint (`POST /v1/update/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmahaConfig {
    /// Application ids answered, lower case without braces (Flatcar's by
    /// default); others get `error-unknownApplication`.
    pub app_ids: Vec<String>,
}

impl Default for OmahaConfig {
    fn default() -> Self {
        Self {
            app_ids: vec![crate::omaha::request::FLATCAR_APP_ID.to_owned()],
        }
    }
}

impl ServerConfig {
    /// Production defaults for a repository in `repo_dir`.
    pub fn new(repo_dir: PathBuf) -> Self {
        Self {
            check_interval: SignedDuration::from_mins(10),
            enrollment_token: None,
            open_registration: false,
            repo_dir,
            repo_url: None,
            max_node_body: 64 * 1024,
            max_admin_body: 1024 * 1024,
            stats_ttl: SignedDuration::from_secs(2),
            index_ttl: SignedDuration::from_mins(5),
            summary_ttl: SignedDuration::from_secs(10),
            trusted_root: None,
            online_keys: None,
            timestamp_expiry: std::time::Duration::from_secs(86_400),
            node_retention: None,
            event_retention: Some(SignedDuration::from_hours(90 * 24)),
            audit_retention: None,
            max_upload: 64 << 30,
            tls: false,
            omaha: None,
            rate_limits: crate::http::limits::RateLimitConfig::default(),
            hot_nodes: crate::store::hot::DEFAULT_CAPACITY,
            live_events_buffer: crate::live_events::DEFAULT_BUFFER,
        }
    }

    /// The re-signing margin of the timestamp for [`Self::timestamp_expiry`].
    pub fn timestamp_margin(&self) -> std::time::Duration {
        crate::repository::refresh::timestamp_margin(self.timestamp_expiry)
    }
}
