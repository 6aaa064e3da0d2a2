//! `moho-admin events [--follow]`: the fleet-wide event stream (every
//! node's download, install, reboot, healthy, rollback, error and cancel
//! events) with filters. `--follow` keeps polling with the id of the last
//! event seen and prints new events as they arrive: lines of text, or one
//! JSON object per line with `--json`.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use moho_protocol::admin::{EventPage, EventView, Severity};

use super::nodes::detail;
use super::{Ctx, Report};
use crate::client::with_query;
use crate::error::CliError;
use crate::output::{Table, ts};

/// `events` filters.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events at least this severe: info, warning, error.
    #[arg(long, value_parser = parse_severity)]
    pub severity: Option<Severity>,
    /// Only this event type (download_started, installed, rebooting,
    /// healthy, rollback, error, ...).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only nodes of this channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// Only nodes of this group.
    #[arg(long)]
    pub group: Option<String>,
    /// Only this node.
    #[arg(long)]
    pub node: Option<String>,
    /// How many of the newest events to show first (1-1000).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Keep printing events as they arrive (Ctrl-C to stop).
    #[arg(long)]
    pub follow: bool,
    /// How often to ask for new events with --follow.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// With --follow, stop after this many new events.
    #[arg(long, requires = "follow")]
    pub count: Option<u64>,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).ok_or_else(|| format!("unknown severity {s:?}: use info, warning or error"))
}

fn line(e: &EventView) -> Vec<String> {
    vec![
        ts(e.received_at),
        e.severity.as_str().to_owned(),
        e.node_id.clone(),
        e.channel.clone().unwrap_or_else(|| "-".into()),
        e.group.clone().unwrap_or_else(|| "-".into()),
        e.kind.clone(),
        e.version.clone().unwrap_or_else(|| "-".into()),
        detail(e),
    ]
}

const HEADER: [&str; 8] = [
    "RECEIVED", "SEVERITY", "NODE", "CHANNEL", "GROUP", "EVENT", "VERSION", "DETAIL",
];

impl EventsArgs {
    fn path(&self, after: Option<i64>, limit: u32) -> String {
        with_query(
            "/events",
            &[
                ("after", after.map(|a| a.to_string())),
                ("limit", Some(limit.to_string())),
                ("severity", self.severity.map(|s| s.as_str().to_owned())),
                ("kind", self.kind.clone()),
                ("channel", self.channel.clone()),
                ("group", self.group.clone()),
                ("node", self.node.clone()),
            ],
        )
    }

    /// Runs the command; with `--follow` it writes to `out` itself and
    /// returns an empty report.
    pub fn run(self, ctx: &Ctx<'_>, out: &mut dyn Write, json: bool) -> Result<Report, CliError> {
        if !(1..=1000).contains(&self.limit) {
            return Err(CliError::Usage(format!(
                "invalid --limit {}: use 1 to 1000",
                self.limit
            )));
        }
        let first: EventPage = ctx.api.get(&self.path(None, self.limit))?;
        if !self.follow {
            let mut t = Table::new(&HEADER);
            for e in first.items.iter().rev() {
                t.row(line(e));
            }
            let mut text = t.render();
            if first.truncated {
                text.push_str("\n(older events not shown)");
            }
            return Ok(Report::new(&first, text));
        }
        let write = |out: &mut dyn Write, events: &[EventView]| -> std::io::Result<()> {
            for e in events.iter().rev() {
                if json {
                    writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default())?;
                } else {
                    writeln!(out, "{}", line(e).join("  "))?;
                }
            }
            out.flush()
        };
        let io = |e: std::io::Error| CliError::File {
            path: "stdout".into(),
            source: e,
        };
        // A reader that has gone away (`| head -1`) ends the stream
        // quietly, whichever write finds it gone.
        let gone = |r: std::io::Result<()>| match r {
            Ok(()) => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
            Err(e) => Err(io(e)),
        };
        if !json && gone(writeln!(out, "{}", HEADER.join("  ")))? {
            return Ok(Report::none());
        }
        if self.count.is_none() && gone(write(out, &first.items))? {
            return Ok(Report::none());
        }
        let mut last = first.last_id;
        let mut seen = 0u64;
        loop {
            std::thread::sleep(self.interval);
            let page: EventPage = ctx.api.get(&self.path(Some(last), 1000))?;
            last = page.last_id;
            let mut items = page.items;
            if let Some(n) = self.count {
                // Oldest first, so the first `n - seen` new events are kept.
                let left = usize::try_from(n - seen).unwrap_or(usize::MAX);
                if items.len() > left {
                    items.drain(..items.len() - left);
                }
            }
            seen += items.len() as u64;
            if gone(write(out, &items))? || self.count.is_some_and(|n| seen >= n) {
                break;
            }
        }
        Ok(Report::none())
    }
}
