//! `image-tools` exit codes (also listed in `docs/cli.md`).
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the command failed (the message says why) |
//! | 2 | bad command line (clap) |
//! | 3 | bad input: a size that does not fit, a file that is not what it should be |

/// Bad command line (clap's own code).
pub const USAGE: u8 = 2;
/// The command failed.
pub const FAILED: u8 = 1;
/// The input was refused.
pub const BAD_INPUT: u8 = 3;

/// The exit code for an error chain.
pub fn code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| {
        e.downcast_ref::<crate::disk_create::DiskCreateError>()
            .is_some_and(|e| e.is_bad_input())
    }) {
        BAD_INPUT
    } else {
        FAILED
    }
}
