//! Property test of the slot state machine as a whole (issue 2, DESIGN §3):
//! for any sequence of agent operations, each possibly cut off part-way by a
//! power loss, and any number of boots in between, the selector only ever
//! boots a slot whose image was completely written and verified, or the last
//! good slot.
//!
//! The model keeps, beside the slot table, what is really on each slot
//! (a complete image of some version, or a partial one). Table commits are
//! atomic here; torn GPT writes are covered by the disk layer's own tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use moho_core::SlotAttributes;
use moho_core::selection::{BootReason, select_boot};
use moho_core::slot_table::{SlotEntry, SlotName, SlotTable};
use moho_core::transitions::{
    abandon_trial, arm_inactive, cancel_armed, clear_inactive, mark_good, rollback,
};
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Image {
    Complete(u32),
    Partial,
}

#[derive(Debug, Clone)]
enum Op {
    /// The install path, cut off after `steps` of its 4 steps.
    Install {
        steps: u8,
        tries: u8,
    },
    MarkGood,
    Rollback,
    Cancel,
    /// The agent's self-rescue of a failed trial.
    Abandon,
    Boot,
}

#[derive(Debug)]
struct Machine {
    table: SlotTable,
    images: [Image; 2],
    booted: SlotName,
    next_version: u32,
    boots: u32,
}

fn idx(n: SlotName) -> usize {
    match n {
        SlotName::A => 0,
        SlotName::B => 1,
    }
}

impl Machine {
    fn new() -> Self {
        let entry = |partition: u32, label: &str, attrs: SlotAttributes| SlotEntry {
            partition,
            label: label.to_owned(),
            partuuid: Uuid::from_u128(u128::from(partition)),
            attrs,
        };
        let good = SlotAttributes::default().with_fields(1, 0, true).unwrap();
        Self {
            table: SlotTable {
                a: entry(2, "ROOT-A", good),
                b: entry(3, "ROOT-B", SlotAttributes::default()),
            },
            // Slot B holds whatever was on the disk before: not an image.
            images: [Image::Complete(1), Image::Partial],
            booted: SlotName::A,
            next_version: 2,
            boots: 0,
        }
    }

    fn apply(&mut self, op: &Op) {
        let booted = self.booted;
        let inactive = booted.other();
        match *op {
            Op::Install { steps, tries } => {
                // Step 1: clear the inactive slot, committed before any byte.
                if steps < 1 {
                    return;
                }
                let Ok(t) = clear_inactive(&self.table, booted) else {
                    return; // refused: the booted slot is unblessed
                };
                self.table = t;
                // Step 2: stream the image (possibly cut off: partial).
                if steps < 2 {
                    return;
                }
                self.images[idx(inactive)] = Image::Partial;
                // Step 3: read back and verify: now complete.
                if steps < 3 {
                    return;
                }
                self.images[idx(inactive)] = Image::Complete(self.next_version);
                self.next_version += 1;
                // Step 4: arm.
                if steps < 4 {
                    return;
                }
                if let Ok(t) = arm_inactive(&self.table, booted, tries) {
                    self.table = t;
                }
            }
            Op::MarkGood => {
                if let Ok(t) = mark_good(&self.table, Some(booted), booted) {
                    self.table = t;
                }
            }
            Op::Rollback => {
                if let Ok(t) = rollback(&self.table, booted) {
                    self.table = t;
                }
            }
            Op::Cancel => {
                if let Ok(t) = cancel_armed(&self.table, booted) {
                    self.table = t;
                }
            }
            Op::Abandon => {
                if let Ok(t) = abandon_trial(&self.table, booted) {
                    self.table = t;
                }
            }
            Op::Boot => self.boot(),
        }
    }

    fn boot(&mut self) {
        let choice = select_boot(&self.table)
            .unwrap_or_else(|e| panic!("machine left unbootable after {} boots: {e}", self.boots));
        let image = self.images[idx(choice.slot)];
        assert!(
            matches!(image, Image::Complete(_)),
            "selector chose slot {} holding a {image:?} image; table {:?}",
            choice.slot,
            self.table
        );
        if choice.reason == BootReason::FallbackLastGood {
            assert!(self.table.attrs(choice.slot).successful());
        }
        self.table = choice.table;
        self.booted = choice.slot;
        self.boots += 1;
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..=4, 1u8..=3).prop_map(|(steps, tries)| Op::Install { steps, tries }),
        2 => Just(Op::MarkGood),
        1 => Just(Op::Rollback),
        1 => Just(Op::Cancel),
        1 => Just(Op::Abandon),
        4 => Just(Op::Boot),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn selector_only_boots_complete_images(ops in prop::collection::vec(op(), 0..60), extra_boots in 0usize..6) {
        let mut m = Machine::new();
        for op in &ops {
            m.apply(op);
        }
        for _ in 0..extra_boots {
            m.boot();
        }
        // There is always a successful slot with a complete image to fall back to.
        let good: Vec<SlotName> = SlotName::ALL
            .into_iter()
            .filter(|&n| m.table.attrs(n).successful())
            .collect();
        prop_assert!(!good.is_empty());
        for n in good {
            prop_assert!(matches!(m.images[idx(n)], Image::Complete(_)));
        }
    }
}

#[test]
fn an_abandoned_trial_falls_back_at_once_whatever_its_tries() {
    let mut m = Machine::new();
    m.apply(&Op::Install { steps: 4, tries: 3 });
    m.boot();
    assert_eq!(m.booted, SlotName::B);
    m.apply(&Op::Abandon);
    m.boot();
    assert_eq!(m.booted, SlotName::A, "no second try of an abandoned trial");
    m.boot();
    assert_eq!(m.booted, SlotName::A);
}

#[test]
fn a_failed_update_falls_back_after_its_tries() {
    let mut m = Machine::new();
    m.apply(&Op::Install { steps: 4, tries: 2 });
    m.boot();
    assert_eq!(m.booted, SlotName::B);
    m.boot();
    assert_eq!(m.booted, SlotName::B);
    m.boot();
    assert_eq!(m.booted, SlotName::A, "after two failed tries, back to A");
    m.boot();
    assert_eq!(m.booted, SlotName::A);
}
