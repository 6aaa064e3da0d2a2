//! The CLI commands that talk to the running daemon over D-Bus (`status`,
//! `check`, `reboot`, `rollback`, `cancel`, `mark-good`) and `denylist`,
//! which works on the state directory directly.

use std::fmt::Write as _;
use std::path::Path;

use crate::daemon::status::AgentStatus;
use crate::dbus::client::{self, ClientError, Method};
use crate::denylist::DenyList;

/// The status as text.
pub fn render_status(s: &AgentStatus) -> String {
    let mut out = String::new();
    let dash = |v: &str| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.to_owned()
        }
    };
    let _ = writeln!(out, "state:             {}", s.state);
    if matches!(s.state.as_str(), "downloading" | "verifying" | "finalizing") {
        let _ = writeln!(out, "progress:          {:.0}%", s.progress * 100.0);
    }
    let _ = writeln!(
        out,
        "booted:            slot {}, version {}",
        dash(&s.booted_slot),
        dash(&s.booted_version)
    );
    let _ = writeln!(out, "staged:            {}", dash(&s.staged_version));
    let _ = writeln!(out, "last check:        {}", dash(&s.last_check));
    let _ = writeln!(out, "reboot blocked by: {}", dash(&s.reboot_blocked_by));
    if !s.trial_deadline.is_empty() {
        let _ = writeln!(out, "trial deadline:    {}", s.trial_deadline);
    }
    let _ = write!(out, "last error:        {}", dash(&s.last_error));
    out
}

/// `update-agent status [--json] [--follow]`.
pub fn status(json: bool, follow: bool) -> anyhow::Result<()> {
    let bus = crate::dbus::system_bus().map_err(ClientError::Unreachable)?;
    let proxy = client::connect(&bus)?;
    let print = |s: &AgentStatus| -> anyhow::Result<()> {
        if json {
            // One object per line when following.
            moho_cli::outln!("{}", serde_json::to_string(s)?)?;
        } else {
            moho_cli::outln!("{}\n", render_status(s))?;
        }
        Ok(())
    };
    if follow {
        // Follow until stdout fails (e.g. its reader went away).
        let mut failed = None;
        client::follow(&proxy, |s| match print(s) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
    } else {
        print(&client::status(&proxy)?)?;
    }
    Ok(())
}

/// `update-agent check|reboot|rollback|cancel`.
pub fn call(method: Method) -> anyhow::Result<()> {
    let bus = crate::dbus::system_bus().map_err(ClientError::Unreachable)?;
    let proxy = client::connect(&bus)?;
    moho_cli::outln!("{}", client::call(&proxy, method)?)?;
    Ok(())
}

/// `update-agent mark-good`: nothing to do if the booted slot is already
/// good (`already_good` says so; the daemon is not asked, as it may be busy
/// writing an update for minutes and boot-complete must not wait for
/// that); else through the daemon when it runs (it reports the new version
/// healthy and releases the reboot lock), else directly on the disk (the
/// daemon reports it when it starts).
pub fn mark_good(
    already_good: impl FnOnce() -> anyhow::Result<Option<String>>,
    local: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    match already_good() {
        Ok(Some(m)) => {
            moho_cli::outln!("{m}")?;
            return Ok(());
        }
        Ok(None) => {}
        // The daemon (or the direct path) names the problem.
        Err(e) => tracing::debug!(error = %e, "could not tell whether the booted slot is good"),
    }
    let via_daemon = crate::dbus::system_bus()
        .map_err(ClientError::Unreachable)
        .and_then(|bus| {
            let proxy = client::connect(&bus)?;
            client::call(&proxy, Method::MarkGood)
        });
    match via_daemon {
        Ok(m) => moho_cli::outln!("{m}")?,
        Err(ClientError::Unreachable(e)) => {
            tracing::info!(error = %e, "daemon not reachable; marking good directly");
            moho_cli::outln!("{}", local()?)?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// `update-agent denylist [--clear V] [--json]`.
pub fn denylist(state_dir: &Path, clear: Option<&str>, json: bool) -> anyhow::Result<()> {
    let mut list = DenyList::load(state_dir)?;
    if let Some(v) = clear {
        if list.clear(v)? {
            moho_cli::outln!("{v} removed from the deny list")?;
        } else {
            anyhow::bail!("{v} is not on the deny list");
        }
        return Ok(());
    }
    if json {
        moho_cli::outln!("{}", serde_json::to_string_pretty(&list.entries)?)?;
    } else if list.entries.is_empty() {
        moho_cli::outln!("no denied versions")?;
    } else {
        for (v, d) in &list.entries {
            moho_cli::outln!(
                "{v}: {} (failed {} time(s), last {})",
                d.reason,
                d.count,
                d.last
            )?;
        }
    }
    Ok(())
}
