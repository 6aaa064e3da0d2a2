//! The two root slots of a Moho disk, as read from its partition table.
//!
//! A [`SlotTable`] is a plain value: the disk layer builds one from the GPT,
//! the pure functions in [`crate::selection`] and [`crate::transitions`]
//! compute a new one, and the disk layer writes it back in one commit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::slot_attrs::SlotAttributes;

/// One of the two root slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SlotName {
    /// `ROOT-A`, partition 2 in the standard layout.
    A,
    /// `ROOT-B`, partition 3 in the standard layout.
    B,
}

impl SlotName {
    /// The slot that is not `self`.
    pub const fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }

    /// `"A"` or `"B"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::B => "B",
        }
    }

    /// Both slots, A first.
    pub const ALL: [Self; 2] = [Self::A, Self::B];
}

impl fmt::Display for SlotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown slot {0:?} (expected A or B)")]
pub struct UnknownSlot(pub String);

impl FromStr for SlotName {
    type Err = UnknownSlot;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "A" | "a" => Ok(Self::A),
            "B" | "b" => Ok(Self::B),
            other => Err(UnknownSlot(other.to_owned())),
        }
    }
}

/// One slot's partition entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotEntry {
    /// GPT partition number (1-based).
    pub partition: u32,
    /// GPT partition name, `ROOT-A` or `ROOT-B`.
    pub label: String,
    /// The unique partition GUID (what `root=PARTUUID=` names).
    pub partuuid: Uuid,
    /// The attribute field.
    pub attrs: SlotAttributes,
}

/// Both slots of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotTable {
    /// Slot A.
    pub a: SlotEntry,
    /// Slot B.
    pub b: SlotEntry,
}

impl SlotTable {
    /// The entry of `name`.
    pub const fn get(&self, name: SlotName) -> &SlotEntry {
        match name {
            SlotName::A => &self.a,
            SlotName::B => &self.b,
        }
    }

    /// The entry of `name`, mutably.
    pub const fn get_mut(&mut self, name: SlotName) -> &mut SlotEntry {
        match name {
            SlotName::A => &mut self.a,
            SlotName::B => &mut self.b,
        }
    }

    /// The attributes of `name`.
    pub const fn attrs(&self, name: SlotName) -> SlotAttributes {
        self.get(name).attrs
    }

    /// The slot whose partition GUID is `partuuid`, if any.
    pub fn slot_by_partuuid(&self, partuuid: Uuid) -> Option<SlotName> {
        SlotName::ALL
            .into_iter()
            .find(|&n| self.get(n).partuuid == partuuid)
    }

    /// The slot on partition number `partition`, if any.
    pub fn slot_by_partition(&self, partition: u32) -> Option<SlotName> {
        SlotName::ALL
            .into_iter()
            .find(|&n| self.get(n).partition == partition)
    }

    /// Which slots differ between `self` and `newer` (for logs and fakes).
    pub fn changed_slots(&self, newer: &Self) -> Vec<SlotName> {
        SlotName::ALL
            .into_iter()
            .filter(|&n| self.attrs(n) != newer.attrs(n))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A table shaped like `image-tools disk create` makes it.
    pub fn table(a: (u8, u8, bool), b: (u8, u8, bool)) -> SlotTable {
        let entry = |partition: u32, label: &str, (p, t, s): (u8, u8, bool)| SlotEntry {
            partition,
            label: label.to_owned(),
            partuuid: Uuid::from_u128(u128::from(partition)),
            attrs: SlotAttributes::default().with_fields(p, t, s).unwrap(),
        };
        SlotTable {
            a: entry(2, "ROOT-A", a),
            b: entry(3, "ROOT-B", b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_parse_and_print() {
        assert_eq!("A".parse::<SlotName>().unwrap(), SlotName::A);
        assert_eq!("b".parse::<SlotName>().unwrap(), SlotName::B);
        assert_eq!(
            "C".parse::<SlotName>().unwrap_err().to_string(),
            "unknown slot \"C\" (expected A or B)"
        );
        assert_eq!(SlotName::A.other(), SlotName::B);
    }

    #[test]
    fn finds_slots_by_partuuid_and_partition() {
        let t = fixtures::table((1, 0, true), (0, 0, false));
        assert_eq!(t.slot_by_partuuid(Uuid::from_u128(3)), Some(SlotName::B));
        assert_eq!(t.slot_by_partition(2), Some(SlotName::A));
        assert_eq!(t.slot_by_partition(4), None);
    }
}
