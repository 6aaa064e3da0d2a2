//! A [`BootHealth`] that answers what a test sets and counts the calls.

use std::sync::{Arc, Mutex};

use super::{BootHealth, HealthError, HealthReport, UnitHealth};

/// What the fake answers.
#[derive(Debug, Default)]
pub struct FakeHealthState {
    /// The report (`None`: systemd cannot be reached).
    pub report: Option<HealthReport>,
    /// How often it was asked.
    pub calls: usize,
}

/// The fake; clones share state.
#[derive(Debug, Clone, Default)]
pub struct FakeHealth(pub Arc<Mutex<FakeHealthState>>);

impl FakeHealth {
    /// Runs `f` on the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut FakeHealthState) -> T) -> T {
        let mut s = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut s)
    }

    /// A boot whose checks are still running.
    pub fn pending() -> Self {
        let h = Self::default();
        h.with(|s| {
            s.report = Some(HealthReport {
                complete: false,
                units: vec![unit("moho-health-check.service", "activating", "start")],
            });
        });
        h
    }

    /// Sets the answer.
    pub fn set(&self, report: Option<HealthReport>) {
        self.with(|s| s.report = report);
    }
}

/// A unit in `active_state` (`sub_state`), with nothing else known.
pub fn unit(name: &str, active_state: &str, sub_state: &str) -> UnitHealth {
    UnitHealth {
        name: name.into(),
        active_state: active_state.into(),
        sub_state: sub_state.into(),
        result: None,
        status_text: None,
        exit_status: None,
    }
}

impl BootHealth for FakeHealth {
    fn boot_health(&self) -> Result<HealthReport, HealthError> {
        self.with(|s| {
            s.calls += 1;
            s.report.clone().ok_or_else(|| HealthError {
                call: "LoadUnit".into(),
                message: "org.freedesktop.systemd1 is not on the bus".into(),
            })
        })
    }
}
