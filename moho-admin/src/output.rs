//! What a command prints: every command returns a [`Report`] holding both
//! renderings, the JSON document (`--json`: the API's own shapes) and the
//! text for people (aligned tables, one line per change).

use std::io::Write;

use jiff::Timestamp;
use serde::Serialize;

/// A command's result in both renderings.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// For `--json`.
    pub json: serde_json::Value,
    /// For people.
    pub text: String,
}

impl Report {
    /// A report of `value` (its JSON) with `text` for people.
    pub fn new(value: &impl Serialize, text: impl Into<String>) -> Self {
        Self {
            json: serde_json::to_value(value).unwrap_or_default(),
            text: text.into(),
        }
    }

    /// A report that prints nothing (the command wrote its output itself).
    pub fn none() -> Self {
        Self {
            json: serde_json::Value::Null,
            text: String::new(),
        }
    }

    /// Writes the chosen rendering, ending with a newline.
    pub fn write(&self, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
        if self.json.is_null() && self.text.is_empty() {
            Ok(())
        } else if json {
            let s = serde_json::to_string_pretty(&self.json).unwrap_or_default();
            writeln!(out, "{s}")
        } else if self.text.is_empty() {
            Ok(())
        } else {
            writeln!(out, "{}", self.text.trim_end_matches('\n'))
        }
    }
}

/// A table with a header row, columns aligned with elastic tabstops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (tabs and newlines in cells become spaces).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| c.replace(['\t', '\n', '\r'], " "))
                .collect(),
        );
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The aligned text (just the header line when empty).
    pub fn render(&self) -> String {
        let mut tw = tabwriter::TabWriter::new(Vec::new()).padding(2);
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let _ = writeln!(tw, "{}", line.join("\t"));
        }
        let bytes = tw.into_inner().unwrap_or_default();
        String::from_utf8_lossy(&bytes).trim_end().to_owned()
    }
}

/// A timestamp to the second, e.g. `2026-03-02T10:00:00Z`.
pub fn ts(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

/// An optional timestamp, `-` when absent.
pub fn opt_ts(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), ts)
}

/// A duration in seconds as people write it (`1h`, `90m`, `2d`).
pub fn secs(s: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(s))
        .to_string()
        .replace(' ', "")
}

/// A byte count with a binary unit (`64 MiB`, `1.5 KiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut div = 1u64;
    while unit + 1 < UNITS.len() && n >= div.saturating_mul(1024) {
        div *= 1024;
        unit += 1;
    }
    if n.is_multiple_of(div) {
        format!("{} {}", n / div, UNITS[unit])
    } else {
        #[allow(clippy::cast_precision_loss)]
        let v = n as f64 / div as f64;
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_reports_render_both_ways() {
        let mut t = Table::new(&["NAME", "SLOTS"]);
        t.row(vec!["default".into(), "1".into()]);
        t.row(vec!["db\tx".into(), "12".into()]);
        assert_eq!(t.render(), "NAME     SLOTS\ndefault  1\ndb x     12");
        let r = Report::new(&serde_json::json!({"a": 1}), "done");
        let mut out = Vec::new();
        r.write(true, &mut out).unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&out), "{\n  \"a\": 1\n}\n");
        let mut out = Vec::new();
        r.write(false, &mut out).unwrap_or_default();
        assert_eq!(String::from_utf8_lossy(&out), "done\n");
        assert_eq!(secs(3600), "1h");
        assert_eq!(secs(5400), "1h30m");
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(20_000_000), "19.1 MiB");
        assert_eq!(bytes(12), "12 B");
    }
}
