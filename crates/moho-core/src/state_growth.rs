//! How far the `STATE` partition grows on first boot (DESIGN §2: "the first
//! boot grows `STATE` to fill the disk"), pure: partition extents and the
//! last usable LBA in, a decision out.
//!
//! `STATE` is the partition labelled `STATE` with the Linux filesystem type.
//! It grows only when it is the last partition on the disk, up to the last
//! usable LBA (just before the backup entry array), as `plan_disk` makes it on
//! a new disk. Anything after it (an operator's own partition) is left alone
//! and reported, never overwritten. The caller commits the new end with the
//! table's usual ordered write and then grows the filesystem; both steps are
//! idempotent, so a power cut between or during them is finished by the next
//! boot.

use uuid::Uuid;

use crate::layout::{STATE_LABEL, STATE_TYPE};

/// One partition as the growth decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionExtent {
    /// GPT partition number.
    pub number: u32,
    /// Partition name.
    pub label: String,
    /// Type GUID.
    pub type_guid: Uuid,
    /// First sector.
    pub first_lba: u64,
    /// Last sector (inclusive).
    pub last_lba: u64,
}

/// What to do with `STATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateGrowth {
    /// It already ends at the last usable LBA.
    AlreadyFull {
        /// Its partition number.
        number: u32,
        /// Its last LBA.
        last_lba: u64,
    },
    /// Move its end from `from_last_lba` to `to_last_lba`.
    Grow {
        /// Its partition number.
        number: u32,
        /// Its first LBA (unchanged).
        first_lba: u64,
        /// Its last LBA now.
        from_last_lba: u64,
        /// Its last LBA afterwards.
        to_last_lba: u64,
    },
}

impl StateGrowth {
    /// The partition number of `STATE`.
    pub const fn number(&self) -> u32 {
        match self {
            Self::AlreadyFull { number, .. } | Self::Grow { number, .. } => *number,
        }
    }

    /// Its last LBA once the decision is carried out.
    pub const fn final_last_lba(&self) -> u64 {
        match self {
            Self::AlreadyFull { last_lba, .. } => *last_lba,
            Self::Grow { to_last_lba, .. } => *to_last_lba,
        }
    }
}

/// Why `STATE` cannot be grown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateGrowthError {
    /// No partition is labelled `STATE` with the Linux filesystem type.
    #[error("no partition labelled {STATE_LABEL} with type {STATE_TYPE}")]
    Missing,
    /// Several are.
    #[error("more than one partition labelled {STATE_LABEL}: partitions {0:?}")]
    Duplicate(Vec<u32>),
    /// Another partition lies after `STATE`.
    #[error(
        "partition {after} (LBA {after_first}..) lies after {STATE_LABEL} (partition {state}); \
         {STATE_LABEL} is only grown when it is the last partition"
    )]
    NotLast {
        /// `STATE`'s number.
        state: u32,
        /// The partition after it.
        after: u32,
        /// Where that one starts.
        after_first: u64,
    },
    /// `STATE` already reaches past the last usable LBA (a table that does
    /// not fit its disk; the disk layer refuses it before this).
    #[error(
        "{STATE_LABEL} (partition {number}) ends at LBA {last_lba}, past the last usable LBA {last_usable}"
    )]
    PastEnd {
        /// `STATE`'s number.
        number: u32,
        /// Its last LBA.
        last_lba: u64,
        /// The table's last usable LBA.
        last_usable: u64,
    },
}

/// Decides how far `STATE` grows on a table whose last usable LBA is
/// `last_usable` (after the backup GPT was placed at the end of the disk).
pub fn plan_state_growth(
    partitions: &[PartitionExtent],
    last_usable: u64,
) -> Result<StateGrowth, StateGrowthError> {
    let states: Vec<&PartitionExtent> = partitions
        .iter()
        .filter(|p| p.label == STATE_LABEL && p.type_guid == STATE_TYPE)
        .collect();
    let state = match states.as_slice() {
        [] => return Err(StateGrowthError::Missing),
        [one] => *one,
        many => {
            return Err(StateGrowthError::Duplicate(
                many.iter().map(|p| p.number).collect(),
            ));
        }
    };
    if let Some(after) = partitions
        .iter()
        .filter(|p| p.number != state.number && p.last_lba > state.last_lba)
        .min_by_key(|p| p.first_lba)
    {
        return Err(StateGrowthError::NotLast {
            state: state.number,
            after: after.number,
            after_first: after.first_lba,
        });
    }
    match state.last_lba.cmp(&last_usable) {
        std::cmp::Ordering::Equal => Ok(StateGrowth::AlreadyFull {
            number: state.number,
            last_lba: state.last_lba,
        }),
        std::cmp::Ordering::Less => Ok(StateGrowth::Grow {
            number: state.number,
            first_lba: state.first_lba,
            from_last_lba: state.last_lba,
            to_last_lba: last_usable,
        }),
        std::cmp::Ordering::Greater => Err(StateGrowthError::PastEnd {
            number: state.number,
            last_lba: state.last_lba,
            last_usable,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{
        ESP_LABEL, ESP_TYPE, LayoutRequest, SLOT_A_LABEL, SLOT_B_LABEL, SLOT_TYPE, plan_disk,
    };

    const MIB: u64 = 1024 * 1024;

    fn extents_of(disk: u64) -> Vec<PartitionExtent> {
        plan_disk(LayoutRequest {
            disk_size: disk,
            esp_size: 64 * MIB,
            slot_size: 128 * MIB,
            sector_size: 512,
        })
        .unwrap()
        .partitions
        .iter()
        .map(|p| PartitionExtent {
            number: p.number,
            label: p.label.to_owned(),
            type_guid: p.type_guid,
            first_lba: p.first_lba,
            last_lba: p.last_lba,
        })
        .collect()
    }

    #[test]
    fn a_fresh_disk_is_already_full() {
        let parts = extents_of(512 * MIB);
        let last_usable = 512 * MIB / 512 - 34;
        assert_eq!(
            plan_state_growth(&parts, last_usable).unwrap(),
            StateGrowth::AlreadyFull {
                number: 4,
                last_lba: last_usable
            }
        );
    }

    #[test]
    fn state_grows_to_the_last_usable_lba_of_a_grown_disk_and_keeps_its_start() {
        let parts = extents_of(512 * MIB);
        let grown_last_usable = 4 * 512 * MIB / 512 - 34;
        let g = plan_state_growth(&parts, grown_last_usable).unwrap();
        assert_eq!(
            g,
            StateGrowth::Grow {
                number: 4,
                first_lba: parts[3].first_lba,
                from_last_lba: 512 * MIB / 512 - 34,
                to_last_lba: grown_last_usable,
            }
        );
        assert_eq!(g.final_last_lba(), grown_last_usable);
        assert_eq!(g.number(), 4);
        // Once written, the same table is full: growing twice does nothing.
        let mut after = parts;
        after[3].last_lba = grown_last_usable;
        assert!(matches!(
            plan_state_growth(&after, grown_last_usable).unwrap(),
            StateGrowth::AlreadyFull { .. }
        ));
    }

    #[test]
    fn state_is_found_by_label_and_type_not_by_number() {
        let mut parts = extents_of(512 * MIB);
        parts.rotate_left(1); // order in the table does not matter
        parts.iter_mut().for_each(|p| {
            if p.label == STATE_LABEL {
                p.number = 9;
            }
        });
        let g = plan_state_growth(&parts, 10_000_000).unwrap();
        assert_eq!(g.number(), 9);
        let mut wrong_type = extents_of(512 * MIB);
        wrong_type[3].type_guid = SLOT_TYPE;
        assert_eq!(
            plan_state_growth(&wrong_type, 10_000_000),
            Err(StateGrowthError::Missing)
        );
    }

    #[test]
    fn a_partition_after_state_is_never_overwritten() {
        let mut parts = extents_of(512 * MIB);
        let state_end = parts[3].last_lba;
        parts[3].last_lba = state_end - 4096;
        parts.push(PartitionExtent {
            number: 5,
            label: "mine".into(),
            type_guid: STATE_TYPE,
            first_lba: state_end - 2048,
            last_lba: state_end,
        });
        let err = plan_state_growth(&parts, 4 * state_end).unwrap_err();
        assert_eq!(
            err,
            StateGrowthError::NotLast {
                state: 4,
                after: 5,
                after_first: state_end - 2048
            }
        );
        assert!(err.to_string().contains("partition 5"), "{err}");
    }

    #[test]
    fn missing_duplicate_and_past_the_end_are_refused() {
        let no_state: Vec<_> = extents_of(512 * MIB)
            .into_iter()
            .filter(|p| p.label != STATE_LABEL)
            .collect();
        assert_eq!(
            plan_state_growth(&no_state, 1 << 30),
            Err(StateGrowthError::Missing)
        );
        let mut two = extents_of(512 * MIB);
        let mut copy = two[3].clone();
        copy.number = 7;
        two.push(copy);
        assert_eq!(
            plan_state_growth(&two, 1 << 30),
            Err(StateGrowthError::Duplicate(vec![4, 7]))
        );
        let parts = extents_of(512 * MIB);
        let end = parts[3].last_lba;
        assert_eq!(
            plan_state_growth(&parts, end - 1),
            Err(StateGrowthError::PastEnd {
                number: 4,
                last_lba: end,
                last_usable: end - 1
            })
        );
        // The other Moho partitions are never candidates.
        for p in &parts[..3] {
            assert!([ESP_LABEL, SLOT_A_LABEL, SLOT_B_LABEL].contains(&p.label.as_str()));
            assert!([ESP_TYPE, SLOT_TYPE].contains(&p.type_guid));
        }
    }
}
