//! The 64-bit GPT partition attribute field as Moho (and ChromeOS, CoreOS,
//! Flatcar) uses it: bits 48–51 priority, 52–55 tries left, 56 successful.
//!
//! The codec only ever rewrites those nine bits; the other 55 bits (the UEFI
//! "required"/"no block IO"/"legacy boot" bits and anything a foreign tool put
//! there) pass through untouched.

use serde::{Deserialize, Serialize};

const PRIORITY_SHIFT: u32 = 48;
const TRIES_SHIFT: u32 = 52;
const SUCCESSFUL_SHIFT: u32 = 56;
const NIBBLE: u64 = 0xf;

/// Largest value the 4-bit priority and tries fields can hold.
pub const MAX_NIBBLE: u8 = 15;

/// A value that does not fit a 4-bit attribute field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value} is out of range (0-15)")]
pub struct AttrValueError {
    /// `priority` or `tries`.
    pub field: &'static str,
    /// The rejected value.
    pub value: u64,
}

/// The raw GPT entry attribute field of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SlotAttributes(u64);

impl SlotAttributes {
    /// Wraps a raw attribute field as read from a GPT entry.
    pub const fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw field, ready to be written back to the GPT entry.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Boot priority, 0 (never boot) to 15.
    pub const fn priority(self) -> u8 {
        ((self.0 >> PRIORITY_SHIFT) & NIBBLE) as u8
    }

    /// Boot attempts left before the slot counts as failed, 0 to 15.
    pub const fn tries(self) -> u8 {
        ((self.0 >> TRIES_SHIFT) & NIBBLE) as u8
    }

    /// Whether a boot of this slot was ever confirmed healthy.
    pub const fn successful(self) -> bool {
        (self.0 >> SUCCESSFUL_SHIFT) & 1 == 1
    }

    /// A copy with the priority replaced.
    pub fn with_priority(self, priority: u8) -> Result<Self, AttrValueError> {
        Ok(Self(set_nibble(
            self.0,
            PRIORITY_SHIFT,
            "priority",
            priority,
        )?))
    }

    /// A copy with the tries counter replaced.
    pub fn with_tries(self, tries: u8) -> Result<Self, AttrValueError> {
        Ok(Self(set_nibble(self.0, TRIES_SHIFT, "tries", tries)?))
    }

    /// A copy with the successful bit replaced.
    pub const fn with_successful(self, successful: bool) -> Self {
        let cleared = self.0 & !(1 << SUCCESSFUL_SHIFT);
        Self(cleared | ((successful as u64) << SUCCESSFUL_SHIFT))
    }

    /// A copy with all three Moho fields set at once.
    pub fn with_fields(
        self,
        priority: u8,
        tries: u8,
        successful: bool,
    ) -> Result<Self, AttrValueError> {
        Ok(self
            .with_priority(priority)?
            .with_tries(tries)?
            .with_successful(successful))
    }

    /// A copy with one boot attempt used up (never below zero).
    pub const fn with_one_try_used(self) -> Self {
        let tries = self.tries().saturating_sub(1);
        Self((self.0 & !(NIBBLE << TRIES_SHIFT)) | ((tries as u64) << TRIES_SHIFT))
    }

    /// The slot may be chosen at boot: priority > 0 and (tries > 0 or successful).
    pub const fn is_eligible(self) -> bool {
        self.priority() > 0 && (self.tries() > 0 || self.successful())
    }

    /// The bits Moho does not own, unchanged since they were read.
    pub const fn foreign_bits(self) -> u64 {
        self.0 & !((NIBBLE << PRIORITY_SHIFT) | (NIBBLE << TRIES_SHIFT) | (1 << SUCCESSFUL_SHIFT))
    }
}

fn set_nibble(raw: u64, shift: u32, field: &'static str, value: u8) -> Result<u64, AttrValueError> {
    if value > MAX_NIBBLE {
        return Err(AttrValueError {
            field,
            value: u64::from(value),
        });
    }
    Ok((raw & !(NIBBLE << shift)) | (u64::from(value) << shift))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_the_chromeos_layout() {
        // priority 2, tries 1, successful: 0x0112_0000_0000_0000
        let a = SlotAttributes::from_raw(0x0112_0000_0000_0000);
        assert_eq!(a.priority(), 2);
        assert_eq!(a.tries(), 1);
        assert!(a.successful());
    }

    #[test]
    fn rejects_values_above_fifteen() {
        let err = SlotAttributes::default().with_tries(16).unwrap_err();
        assert_eq!(err.to_string(), "tries 16 is out of range (0-15)");
        assert!(SlotAttributes::default().with_priority(200).is_err());
    }

    #[test]
    fn eligibility_follows_gptprio() {
        let base = SlotAttributes::default();
        assert!(!base.is_eligible());
        assert!(!base.with_fields(1, 0, false).unwrap().is_eligible());
        assert!(base.with_fields(1, 1, false).unwrap().is_eligible());
        assert!(base.with_fields(1, 0, true).unwrap().is_eligible());
        assert!(!base.with_fields(0, 5, true).unwrap().is_eligible());
    }

    proptest! {
        #[test]
        fn setters_round_trip_and_keep_foreign_bits(
            raw in any::<u64>(), p in 0u8..=15, t in 0u8..=15, s in any::<bool>()
        ) {
            let before = SlotAttributes::from_raw(raw);
            let after = before.with_fields(p, t, s).unwrap();
            prop_assert_eq!(after.priority(), p);
            prop_assert_eq!(after.tries(), t);
            prop_assert_eq!(after.successful(), s);
            prop_assert_eq!(after.foreign_bits(), before.foreign_bits());
        }
    }
}
