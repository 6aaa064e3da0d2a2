//! `image-tools repo migrate`: the legacy target layout to the TUF
//! specification's, in place (see `moho_repo::migrate` for the order that
//! keeps every reader working and makes it resumable).

use moho_repo::{Migration, RepoDir, RepoError};

use crate::cli::RepoMigrateArgs;

/// Runs `repo migrate`.
pub fn run(args: &RepoMigrateArgs) -> Result<Migration, RepoError> {
    moho_repo::migrate(&RepoDir::new(&args.repo), args.drop_legacy)
}
