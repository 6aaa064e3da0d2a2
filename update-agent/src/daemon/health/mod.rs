//! The health of a trial boot as systemd knows it (DESIGN §3.10, §3.12):
//! whether `boot-complete.target` is active, and the state of every unit
//! it requires (the health checks). Behind [`BootHealth`] so that the
//! daemon's trial watch runs against [`fake::FakeHealth`] in tests;
//! [`systemd::SystemdHealth`] asks `org.freedesktop.systemd1` with zbus.

pub mod fake;
pub mod systemd;

/// The unit whose activation means "healthy".
pub const BOOT_COMPLETE: &str = "boot-complete.target";

/// One unit `boot-complete.target` requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitHealth {
    /// Its name (`moho-health-check.service`).
    pub name: String,
    /// `ActiveState` (`active`, `activating`, `failed`, ...).
    pub active_state: String,
    /// `SubState` (`running`, `start`, `exited`, ...).
    pub sub_state: String,
    /// A service's `Result` (`success`, `exit-code`, `timeout`, ...).
    pub result: Option<String>,
    /// A service's `StatusText` (what it told `sd_notify`), if any.
    pub status_text: Option<String>,
    /// A service's main process exit status, if it exited.
    pub exit_status: Option<i32>,
}

impl UnitHealth {
    /// "activating (start)".
    pub fn state_line(&self) -> String {
        format!("{} ({})", self.active_state, self.sub_state)
    }

    /// What to tell an operator about a failed unit: its status text, else
    /// its result and exit status.
    pub fn failure_detail(&self) -> String {
        if let Some(t) = self.status_text.as_deref().filter(|t| !t.is_empty()) {
            return t.to_owned();
        }
        let mut parts = vec![self.state_line()];
        if let Some(r) = &self.result {
            parts.push(format!("result {r}"));
        }
        if let Some(s) = self.exit_status {
            parts.push(format!("exit status {s}"));
        }
        parts.join(", ")
    }
}

/// What systemd says about the boot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthReport {
    /// `boot-complete.target` is active: every check passed.
    pub complete: bool,
    /// The units it requires, in name order.
    pub units: Vec<UnitHealth>,
}

/// systemd could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("systemd {call}: {message}")]
pub struct HealthError {
    /// The method or property.
    pub call: String,
    /// What went wrong.
    pub message: String,
}

/// Where the trial's health comes from.
pub trait BootHealth: Send {
    /// The state of `boot-complete.target` and of the units it requires.
    fn boot_health(&self) -> Result<HealthReport, HealthError>;
}
