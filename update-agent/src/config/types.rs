//! Stage 3's output: the validated agent configuration as narrow types.
//! Everything here has already been checked; code that holds an
//! [`AgentConfig`] never re-validates.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use url::Url;

/// A channel, group or board name: `[a-z0-9][a-z0-9._-]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Name(pub(super) String);

impl Name {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct AgentConfig {
    /// The update server; absent means "repository only" (air-gapped installs).
    pub server: Option<ServerConfig>,
    /// The signed repository.
    pub repository: RepositoryConfig,
    /// Who this node is.
    pub node: NodeConfig,
    /// Where the agent keeps its state (metadata cache, progress, deny list).
    pub state_dir: PathBuf,
    /// Install behaviour.
    pub update: UpdateConfig,
    /// When to reboot into a staged update.
    pub reboot: RebootConfig,
    /// How long a trial boot may take to become healthy.
    pub health: HealthConfig,
}

/// `[health]`
#[derive(Debug, Clone, Serialize)]
pub struct HealthConfig {
    /// A trial boot that has not reached `boot-complete.target` this long
    /// after the agent first saw it fails, and the node reboots into its
    /// fallback (DESIGN §3.12).
    #[serde(serialize_with = "as_humantime")]
    pub deadline: Duration,
}

/// `[server]`
#[derive(Debug, Clone, Serialize)]
pub struct ServerConfig {
    /// Base URL (`https://...`).
    pub url: Url,
    /// Extra CA certificate (PEM) to trust for this server.
    pub ca_cert: Option<PathBuf>,
    /// Token presented on first check-in, if the server requires one.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "redact")]
    pub enrollment_token: Option<String>,
}

/// `[repository]`
#[derive(Debug, Clone, Serialize)]
pub struct RepositoryConfig {
    /// Where TUF metadata is fetched (`https://`, `http://` on loopback, `file://`).
    pub metadata_url: Url,
    /// Where targets are fetched.
    pub targets_url: Url,
    /// The trusted root metadata shipped with the OS.
    pub root: PathBuf,
    /// Extra CA certificate (PEM) to trust for the repository.
    pub ca_cert: Option<PathBuf>,
}

/// `[node]`
#[derive(Debug, Clone, Serialize)]
pub struct NodeConfig {
    /// Release channel.
    pub channel: Name,
    /// Node group (rollouts and reboot leases are per group).
    pub group: Name,
    /// Board; only images for it are installed.
    pub board: Name,
    /// os-release file of the booted system (its `VERSION_ID` is the booted version).
    pub os_release: PathBuf,
    /// The disk holding the slots, if not discovered.
    pub disk: Option<PathBuf>,
    /// The node id the server knows this node by (default: the machine id,
    /// else one generated once and kept in the state directory).
    pub id: Option<String>,
}

/// `[update]`
#[derive(Debug, Clone, Serialize)]
pub struct UpdateConfig {
    /// How often to ask the server.
    #[serde(serialize_with = "as_humantime")]
    pub check_interval: Duration,
    /// Boot attempts a freshly installed slot gets (1–15).
    pub tries: u8,
    /// Attempts per chunk before a broken download is given up.
    pub download_attempts: u32,
    /// Wait before the first download retry (doubled each time).
    #[serde(serialize_with = "as_humantime")]
    pub download_backoff: Duration,
    /// The longest wait for a response or for the next bytes of one.
    #[serde(serialize_with = "as_humantime")]
    pub read_timeout: Duration,
    /// A transfer slower than this (bytes per second) over `stall_window`
    /// is broken off and resumed (a retry).
    pub min_bytes_per_sec: u64,
    /// The window `min_bytes_per_sec` is measured over.
    #[serde(serialize_with = "as_humantime")]
    pub stall_window: Duration,
}

/// `[reboot]`
#[derive(Debug, Clone, Serialize)]
pub struct RebootConfig {
    /// The strategy.
    #[serde(flatten)]
    pub strategy: RebootStrategy,
    /// How long logged-in users may delay a reboot.
    #[serde(serialize_with = "as_humantime")]
    pub max_user_delay: Duration,
    /// How long block inhibitors (logind) may delay a reboot.
    #[serde(serialize_with = "as_humantime")]
    pub max_inhibitor_wait: Duration,
}

/// When a staged update may reboot the node.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum RebootStrategy {
    /// As soon as the update is staged.
    Immediate,
    /// Only inside one of these weekly windows.
    Windows {
        /// The windows.
        windows: Vec<WindowSpec>,
    },
    /// After taking a FleetLock slot.
    FleetLock {
        /// The FleetLock server.
        url: Url,
        /// Lock group (defaults to the node group).
        group: Name,
    },
    /// Stage only; reboot on `update-agent reboot`.
    Off,
}

/// A weekly window as configured (validated: days, time, length, zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowSpec {
    /// Lower-case three-letter day names.
    pub days: Vec<String>,
    /// `HH:MM`, local time in `time_zone`.
    pub start: String,
    /// Length.
    #[serde(serialize_with = "as_humantime")]
    pub length: Duration,
    /// IANA time zone name.
    pub time_zone: String,
}

impl WindowSpec {
    /// The window as the shared window maths sees it.
    pub fn to_window(
        &self,
    ) -> Result<moho_rollout::window::Window, moho_rollout::window::WindowError> {
        moho_rollout::window::Window::from_spec(&moho_rollout::window::WindowSpec {
            days: self.days.clone(),
            start: self.start.clone(),
            length: format!("{}s", self.length.as_secs()),
            time_zone: self.time_zone.clone(),
        })
    }
}

fn as_humantime<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn redact<S: serde::Serializer>(_: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("(set)")
}
