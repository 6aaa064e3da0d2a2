//! How the slot table is shown: a fixed-column text table for people and the
//! documented JSON shape for scripts (`update-agent slots --json`).

use std::fmt;

use moho_core::selection::next_boot;
use moho_core::slot_table::{SlotName, SlotTable};
use moho_disk::TableHealth;
use serde::Serialize;

use crate::booted::Booted;

/// `update-agent slots --json`.
#[derive(Debug, Clone, Serialize)]
pub struct SlotsView {
    /// The disk.
    pub disk: String,
    /// The slot the selector would boot next, or `null` if none.
    pub next: Option<SlotName>,
    /// Both slots.
    pub slots: Vec<SlotView>,
    /// How the booted slot was found, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booted_from: Option<String>,
    /// State of the two GPT copies.
    pub gpt: String,
}

/// One slot in [`SlotsView`].
#[derive(Debug, Clone, Serialize)]
pub struct SlotView {
    /// `A` or `B`.
    pub name: SlotName,
    /// GPT partition number.
    pub partition: u32,
    /// GPT partition label.
    pub label: String,
    /// Unique partition GUID.
    pub partuuid: String,
    /// 0–15.
    pub priority: u8,
    /// 0–15.
    pub tries: u8,
    /// Successful bit.
    pub successful: bool,
    /// Whether the running system booted from it.
    pub booted: bool,
}

impl SlotsView {
    /// Builds the view of `table`.
    pub fn new(
        disk: &str,
        table: &SlotTable,
        booted: Option<Booted>,
        health: &TableHealth,
    ) -> Self {
        Self {
            disk: disk.to_owned(),
            next: next_boot(table).ok(),
            slots: SlotName::ALL
                .into_iter()
                .map(|n| {
                    let e = table.get(n);
                    SlotView {
                        name: n,
                        partition: e.partition,
                        label: e.label.clone(),
                        partuuid: e.partuuid.to_string(),
                        priority: e.attrs.priority(),
                        tries: e.attrs.tries(),
                        successful: e.attrs.successful(),
                        booted: booted.is_some_and(|b| b.slot == n),
                    }
                })
                .collect(),
            booted_from: booted.map(|b| b.source.to_string()),
            gpt: health.to_string(),
        }
    }
}

impl fmt::Display for SlotsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "disk {} (GPT {})", self.disk, self.gpt)?;
        writeln!(
            f,
            "{:<4} {:>4}  {:<7} {:<36}  {:>8} {:>5}  {:<10} BOOTED",
            "SLOT", "PART", "LABEL", "PARTUUID", "PRIORITY", "TRIES", "SUCCESSFUL"
        )?;
        for s in &self.slots {
            writeln!(
                f,
                "{:<4} {:>4}  {:<7} {:<36}  {:>8} {:>5}  {:<10} {}",
                s.name.as_str(),
                s.partition,
                s.label,
                s.partuuid,
                s.priority,
                s.tries,
                if s.successful { "yes" } else { "no" },
                if s.booted { "*" } else { "" }
            )?;
        }
        match self.next {
            Some(n) => write!(f, "next boot: {n}"),
            None => write!(f, "next boot: none (no eligible or successful slot)"),
        }
    }
}
