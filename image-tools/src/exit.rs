//! `image-tools` exit codes (also listed in `docs/cli.md`).
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the command failed (the message says why) |
//! | 2 | bad command line (clap) |
//! | 3 | bad input: a size that does not fit, a file that is not what it should be |
//! | 4 | `verify`: the repository, target or file must not be trusted (the message names the attack) |

/// The exit codes as `--help` shows them.
pub const HELP: &str = "Exit codes: 0 success; 1 failure; 2 bad command line; 3 bad input \
    (nothing written); 4 verify: the repository, target or file must not be trusted.";

/// Bad command line (clap's own code).
pub const USAGE: u8 = 2;
/// The command failed.
pub const FAILED: u8 = 1;
/// The input was refused.
pub const BAD_INPUT: u8 = 3;
/// `verify` refused the repository, target or file.
pub const REFUSED: u8 = 4;

/// The exit code for an error chain.
pub fn code_for(err: &anyhow::Error) -> u8 {
    let refused = |e: &(dyn std::error::Error + 'static)| {
        e.downcast_ref::<crate::verify::VerifyCmdError>()
            .is_some_and(|e| e.is_refusal())
    };
    let bad_input = |e: &(dyn std::error::Error + 'static)| {
        e.downcast_ref::<crate::disk_create::DiskCreateError>()
            .is_some_and(|e| e.is_bad_input())
            || e.downcast_ref::<crate::initramfs::InitramfsError>()
                .is_some_and(|e| e.is_bad_input())
            || e.downcast_ref::<moho_repo::KeyError>()
                .is_some_and(|e| e.is_bad_input())
            || e.downcast_ref::<crate::build::BuildError>()
                .is_some_and(|e| e.is_bad_input())
            || e.downcast_ref::<moho_repo::RepoError>()
                .is_some_and(|e| e.is_bad_input())
            || e.downcast_ref::<crate::repo_add::AddError>()
                .is_some_and(|e| e.is_bad_input())
            || e.downcast_ref::<crate::verify::VerifyCmdError>()
                .is_some_and(|e| e.is_bad_input())
            || e.downcast_ref::<crate::os::OsBuildError>()
                .is_some_and(|e| e.is_bad_input())
    };
    if err.chain().any(refused) {
        REFUSED
    } else if err.chain().any(bad_input) {
        BAD_INPUT
    } else {
        FAILED
    }
}
