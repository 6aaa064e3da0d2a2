//! What the kernel command line says about the booted slot.
//!
//! The boot selector passes `moho.slot=A|B` and `root=PARTUUID=<guid>` to the
//! slot kernel (DESIGN §4). Parsing is pure; reading `/proc/cmdline` is the
//! caller's job.

use uuid::Uuid;

use crate::slot_table::{SlotName, UnknownSlot};

/// The booted-slot hints found on a kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootHints {
    /// `moho.slot=` if present.
    pub slot: Option<SlotName>,
    /// `root=PARTUUID=` if present and a valid GUID.
    pub root_partuuid: Option<Uuid>,
}

/// A command-line hint with a value that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    /// `moho.slot=` names no slot.
    #[error("kernel command line: moho.slot={value:?} is not A or B")]
    BadSlot {
        /// The value found.
        value: String,
    },
    /// `root=PARTUUID=` is not a GUID.
    #[error("kernel command line: root=PARTUUID={value:?} is not a GUID")]
    BadPartuuid {
        /// The value found.
        value: String,
    },
}

/// Parses the hints; the last occurrence of a parameter wins, as in the kernel.
pub fn parse_boot_hints(cmdline: &str) -> Result<BootHints, CmdlineError> {
    let mut hints = BootHints::default();
    for word in cmdline.split_ascii_whitespace() {
        if let Some(value) = word.strip_prefix("moho.slot=") {
            hints.slot = Some(
                value
                    .parse()
                    .map_err(|UnknownSlot(value)| CmdlineError::BadSlot { value })?,
            );
        } else if let Some(value) = word.strip_prefix("root=") {
            hints.root_partuuid = match value.strip_prefix("PARTUUID=") {
                Some(guid) => {
                    Some(
                        Uuid::parse_str(guid).map_err(|_| CmdlineError::BadPartuuid {
                            value: guid.to_owned(),
                        })?,
                    )
                }
                None => None,
            };
        }
    }
    Ok(hints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_slot_and_partuuid() {
        let h = parse_boot_hints(
            "console=ttyS0 root=PARTUUID=7130c94a-213a-4e5a-8e26-6cce9662f132 ro moho.slot=B\n",
        )
        .unwrap();
        assert_eq!(h.slot, Some(SlotName::B));
        assert_eq!(
            h.root_partuuid.unwrap().to_string(),
            "7130c94a-213a-4e5a-8e26-6cce9662f132"
        );
    }

    #[test]
    fn other_root_forms_give_no_partuuid() {
        let h = parse_boot_hints("root=/dev/vda2").unwrap();
        assert_eq!(h, BootHints::default());
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            parse_boot_hints("moho.slot=C").unwrap_err().to_string(),
            "kernel command line: moho.slot=\"C\" is not A or B"
        );
        assert!(parse_boot_hints("root=PARTUUID=zz").is_err());
    }
}
