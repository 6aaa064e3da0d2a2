//! What an Omaha `<event>` from `update_engine` means for a rollout
//! (pure). update_engine sends, in order: `13/1` download started, `14/1`
//! download finished, `3/1` update complete (written, post-install done,
//! waiting for a reboot); after the reboot every update check carries `3/2`
//! (success after reboot, with the previous version). A failure is
//! `eventresult="0"` with `errorcode`; code 44 means the new version did not
//! come up and the machine booted back into the old one (update_engine
//! notices that it still runs the version it updated from).

use super::wire::EventRequest;

/// `eventtype` values.
pub mod event_type {
    /// Download complete (Omaha 3 generic).
    pub const DOWNLOAD_COMPLETE: u32 = 1;
    /// Install complete (Omaha 3 generic).
    pub const INSTALL_COMPLETE: u32 = 2;
    /// Update complete: after post-install, or after the reboot.
    pub const UPDATE_COMPLETE: u32 = 3;
    /// update_engine started downloading the payload.
    pub const DOWNLOAD_STARTED: u32 = 13;
    /// update_engine finished downloading the payload.
    pub const DOWNLOAD_FINISHED: u32 = 14;
}

/// `eventresult` values.
pub mod event_result {
    /// Failed (with `errorcode`).
    pub const ERROR: u32 = 0;
    /// Succeeded.
    pub const SUCCESS: u32 = 1;
    /// Succeeded and rebooted into it.
    pub const SUCCESS_REBOOT: u32 = 2;
    /// Deferred by the client's own policy.
    pub const DEFERRED: u32 = 9;
}

/// update_engine's error code for "booted back into the old version".
pub const ROLLBACK_ERROR: u32 = 44;

/// Bits 28–31 of an error code are flags (dev mode, resumed, test image,
/// test server), not part of the code.
const FLAG_BITS: u32 = 0xF000_0000;

/// The code without its flag bits (`errorcode` is a C `int`, so a set top
/// bit arrives as a negative number).
pub fn base_code(raw: i64) -> u32 {
    // The wire value is a 32-bit int: keep its low 32 bits' pattern.
    let bits = u32::try_from(raw & 0xFFFF_FFFF).unwrap_or(0);
    bits & !FLAG_BITS
}

/// What one event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// Downloading the payload.
    DownloadStarted,
    /// Payload downloaded and checked.
    DownloadFinished,
    /// Written to the other partition, post-install done: waiting for a
    /// reboot.
    Installed,
    /// Running after a reboot (sent with every update check; whether it
    /// is the new version is told by the version the request names).
    Rebooted,
    /// The new version failed and the old one booted again.
    RolledBack,
    /// Something failed with this update_engine code (flags removed).
    Failed {
        /// The code.
        code: u32,
    },
    /// Nothing a rollout counts (a deferral, an unknown type).
    Nothing,
}

/// The meaning of `e`.
pub fn meaning(e: &EventRequest) -> Meaning {
    use event_result as r;
    use event_type as t;
    match (e.event_type, e.result) {
        (_, r::ERROR) => {
            let code = e.error_code.map_or(1, base_code);
            if code == ROLLBACK_ERROR {
                Meaning::RolledBack
            } else {
                Meaning::Failed { code }
            }
        }
        (t::DOWNLOAD_STARTED, r::SUCCESS) => Meaning::DownloadStarted,
        (t::DOWNLOAD_FINISHED | t::DOWNLOAD_COMPLETE, r::SUCCESS) => Meaning::DownloadFinished,
        (t::UPDATE_COMPLETE | t::INSTALL_COMPLETE, r::SUCCESS) => Meaning::Installed,
        (t::UPDATE_COMPLETE, r::SUCCESS_REBOOT) => Meaning::Rebooted,
        _ => Meaning::Nothing,
    }
}

/// A short name for an update_engine error code (shown to operators).
pub fn error_name(code: u32) -> &'static str {
    match code {
        1 => "generic error",
        2 => "update check failed",
        3 => "update check answer not usable",
        4 | 15 | 16 => "partition copy or verification failed",
        5 => "post-install step failed",
        7 | 8 => "cannot open the install partition",
        9 => "download failed",
        10 => "payload hash mismatch",
        11 => "payload size mismatch",
        12 | 18 => "payload signature not verified",
        14 => "writing the payload failed",
        30 | 31 | 34 | 37 => "the server's answer was not usable",
        44 => "rollback: the new version did not boot",
        c if (2000..3000).contains(&c) => "the update check got an HTTP error",
        _ => "update_engine error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event_type: u32, result: u32, error_code: Option<i64>) -> EventRequest {
        EventRequest {
            event_type,
            result,
            error_code,
        }
    }

    #[test]
    fn update_engine_sequence_reads_as_its_steps() {
        assert_eq!(meaning(&ev(13, 1, None)), Meaning::DownloadStarted);
        assert_eq!(meaning(&ev(14, 1, None)), Meaning::DownloadFinished);
        assert_eq!(meaning(&ev(3, 1, None)), Meaning::Installed);
        assert_eq!(meaning(&ev(3, 2, None)), Meaning::Rebooted);
        assert_eq!(meaning(&ev(3, 9, None)), Meaning::Nothing);
        assert_eq!(meaning(&ev(99, 1, None)), Meaning::Nothing);
    }

    #[test]
    fn code_44_is_a_rollback_even_with_flag_bits_set() {
        assert_eq!(meaning(&ev(3, 0, Some(44))), Meaning::RolledBack);
        // Dev-mode flag (bit 31) makes the C int negative on the wire.
        let flagged = i64::from(44u32 | 1 << 31) - (1_i64 << 32);
        assert!(flagged < 0);
        assert_eq!(meaning(&ev(3, 0, Some(flagged))), Meaning::RolledBack);
        assert_eq!(
            meaning(&ev(3, 0, Some(10 | 1 << 30))),
            Meaning::Failed { code: 10 }
        );
        assert_eq!(meaning(&ev(3, 0, None)), Meaning::Failed { code: 1 });
        assert_eq!(error_name(10), "payload hash mismatch");
        assert_eq!(error_name(2404), "the update check got an HTTP error");
    }
}
