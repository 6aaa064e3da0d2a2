//! Showing install progress: a bar with rate and ETA on a terminal,
//! structured `tracing` events (every 10 %) otherwise.

use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// Receives progress of an install.
pub trait Progress: Send + Sync {
    /// The image has `total` bytes; `already` are present (resumed).
    fn start(&self, total: u64, already: u64);
    /// `bytes` more are written; `downloaded` says whether they came over the network.
    fn advance(&self, bytes: u64, downloaded: bool);
    /// A new phase begins (`verifying`, `arming`).
    fn phase(&self, name: &str);
    /// Done.
    fn finish(&self);
    /// A chunk's transfer broke off (stalled, dropped) and is tried again.
    fn retrying(&self, chunk: u64, attempt: u32, error: &str) {
        let _ = (chunk, attempt, error);
    }
}

/// Chooses the terminal bar when stderr is a terminal.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Box::new(TerminalProgress::new())
    } else {
        Box::new(LogProgress::default())
    }
}

/// An indicatif bar.
#[derive(Debug)]
pub struct TerminalProgress {
    bar: ProgressBar,
}

impl TerminalProgress {
    fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message("writing");
        Self { bar }
    }
}

impl Progress for TerminalProgress {
    fn start(&self, total: u64, already: u64) {
        self.bar.set_length(total);
        self.bar.set_position(already);
        self.bar.reset_eta();
    }
    fn advance(&self, bytes: u64, _downloaded: bool) {
        self.bar.inc(bytes);
    }
    fn phase(&self, name: &str) {
        self.bar.set_message(name.to_owned());
    }
    fn finish(&self) {
        self.bar.finish_with_message("done");
    }
}

/// `tracing` events at every 10 %.
#[derive(Debug, Default)]
pub struct LogProgress {
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    total: u64,
    done: u64,
    downloaded: u64,
    next_report: u64,
    started: Option<Instant>,
}

impl Progress for LogProgress {
    fn start(&self, total: u64, already: u64) {
        if let Ok(mut s) = self.state.lock() {
            *s = LogState {
                total,
                done: already,
                downloaded: 0,
                next_report: already + total / 10,
                started: Some(Instant::now()),
            };
        }
        tracing::info!(total, resumed = already, "writing image");
    }
    fn advance(&self, bytes: u64, downloaded: bool) {
        let Ok(mut s) = self.state.lock() else { return };
        s.done += bytes;
        if downloaded {
            s.downloaded += bytes;
        }
        if s.done >= s.next_report && s.total > 0 {
            s.next_report = s.done + s.total / 10;
            let secs = s.started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
            tracing::info!(
                percent = s.done * 100 / s.total,
                written = s.done,
                downloaded = s.downloaded,
                mib_per_s = format!("{:.0}", s.done as f64 / 1_048_576.0 / secs.max(1e-3)),
                "progress"
            );
        }
    }
    fn phase(&self, name: &str) {
        tracing::info!(phase = name, "install phase");
    }
    fn finish(&self) {}
}

/// Discards progress (tests, quiet runs).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64, _: u64) {}
    fn advance(&self, _: u64, _: bool) {}
    fn phase(&self, _: &str) {}
    fn finish(&self) {}
}
