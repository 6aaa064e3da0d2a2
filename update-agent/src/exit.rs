//! `update-agent` exit codes, shown in `--help` and `docs/cli.md`.

use moho_disk::DiskError;

use crate::dbus::client::ClientError;
use crate::disk_locate::LocateError;
use crate::service::slots::SlotsError;

/// Success.
pub const OK: u8 = 0;
/// Any other failure (I/O, internal).
pub const FAILED: u8 = 1;
/// Bad command line (clap's own code).
pub const USAGE: u8 = 2;
/// The disk is missing, unreadable, not a Moho disk, or has no valid GPT.
pub const DISK: u8 = 3;
/// The change was refused because it would break a slot invariant; nothing written.
pub const REFUSED: u8 = 4;
/// The command needs the booted slot and it cannot be determined.
pub const BOOTED_UNKNOWN: u8 = 5;
/// No slot is bootable.
pub const NO_BOOTABLE_SLOT: u8 = 6;

/// The configuration is invalid (the message names file, key and value).
pub const CONFIG: u8 = 7;

/// A release or repository failed verification (bad signature, expired or
/// replayed metadata, tampered bytes), or cannot be applied to this node.
pub const UNTRUSTED: u8 = 8;

/// The provision document could not be read, is bad, or makes an invalid
/// agent configuration (the message names source, key and value).
pub const PROVISION: u8 = 9;

/// The exit code table, for `--help`.
pub const HELP: &str = "Exit codes: 0 success; 1 failure; 2 bad command line; \
3 disk missing, unreadable or not a Moho disk; 4 change refused by a slot invariant \
or a daemon command refused in its current state (nothing written); \
5 booted slot unknown (pass --booted); 6 no bootable slot; 7 invalid configuration; \
8 release failed verification or does not apply to this node; 9 bad provision document.";

/// The exit code for an error chain.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<SlotsError>() {
            return match e {
                SlotsError::Disk(d) => disk_code(d),
                SlotsError::Refused { .. } => REFUSED,
                SlotsError::Booted { .. } | SlotsError::BootedUnknown { .. } => BOOTED_UNKNOWN,
                SlotsError::NoBootable { .. } => NO_BOOTABLE_SLOT,
            };
        }
        if let Some(ClientError::Refused { .. }) = cause.downcast_ref::<ClientError>() {
            return REFUSED;
        }
        if let Some(e) = cause.downcast_ref::<crate::grow_state::GrowError>() {
            use crate::grow_state::GrowError as G;
            return match e {
                G::NotABlockDevice { .. } => DISK,
                G::Disk(d) => disk_code(d),
                _ => FAILED,
            };
        }
        if cause
            .downcast_ref::<crate::provision::ProvisionError>()
            .is_some()
        {
            return PROVISION;
        }
        if let Some(d) = cause.downcast_ref::<DiskError>() {
            return disk_code(d);
        }
        if cause.downcast_ref::<LocateError>().is_some() {
            return DISK;
        }
        if cause.downcast_ref::<crate::config::ConfigError>().is_some() {
            return CONFIG;
        }
        if let Some(e) = cause.downcast_ref::<crate::install::InstallError>() {
            use crate::install::{InstallError as E, Refusal};
            return match e {
                E::Refused {
                    refusal: Refusal::Release(_),
                    ..
                } => UNTRUSTED,
                E::Refused { .. } => REFUSED,
                E::Verify(_) | E::Repo(crate::repo_client::RepoError::Verify { .. }) => UNTRUSTED,
                E::Stream {
                    source: crate::install::stream::StreamError::Rejected { .. },
                    ..
                }
                | E::ReadBack { .. } => UNTRUSTED,
                E::Disk(d) => disk_code(d),
                _ => FAILED,
            };
        }
    }
    FAILED
}

fn disk_code(e: &DiskError) -> u8 {
    match e {
        DiskError::Open { .. }
        | DiskError::NoValidTable { .. }
        | DiskError::NotMohoDisk { .. }
        | DiskError::Unsupported { .. } => DISK,
        _ => FAILED,
    }
}
