//! The repository as it is before an edit: loaded through the nodes' own
//! client workflow (`moho-release`), from wherever the caller keeps the
//! metadata (a directory, the server's store, memory).
//!
//! Every check a node makes applies — root chain, thresholds, snapshot and
//! timestamp consistency, safe target names, well-formed release metadata —
//! except expiry: a publisher must be able to read expired metadata to
//! renew it.

use moho_release::{MetadataSource, VerifiedRepository, VerifyError, load_for_publishing};
use tough::schema::{Metafile, Root, Signed, Snapshot, Targets, Timestamp};

use crate::error::RepoError;

/// The signed roles an edit starts from.
#[derive(Debug, Clone)]
pub struct Current {
    repo: VerifiedRepository,
    trusted_root: Vec<u8>,
    targets_meta: Metafile,
}

impl Current {
    /// Loads the metadata of `source` trusting `trusted_root` (normally the
    /// repository's `1.root.json`). `what` names the repository in errors.
    pub fn load(
        source: &dyn MetadataSource,
        trusted_root: &[u8],
        what: &str,
    ) -> Result<Self, RepoError> {
        let refused = |e| RepoError::Load {
            what: what.to_owned(),
            source: Box::new(e),
        };
        let repo = load_for_publishing(source, trusted_root).map_err(refused)?;
        // The load already refused a snapshot without it.
        let targets_meta = repo
            .signed_snapshot()
            .signed
            .meta
            .get("targets.json")
            .cloned()
            .ok_or_else(|| {
                refused(VerifyError::Malformed {
                    file: "snapshot.json".to_owned(),
                    reason: "meta does not list targets.json".to_owned(),
                })
            })?;
        Ok(Self {
            repo,
            trusted_root: trusted_root.to_vec(),
            targets_meta,
        })
    }

    /// The root the load started from.
    pub fn trusted_root(&self) -> &[u8] {
        &self.trusted_root
    }

    /// Everything the load verified.
    pub fn verified(&self) -> &VerifiedRepository {
        &self.repo
    }

    /// The newest root.
    pub fn root(&self) -> &Signed<Root> {
        self.repo.signed_root()
    }

    /// The targets metadata.
    pub fn targets(&self) -> &Signed<Targets> {
        self.repo.signed_targets()
    }

    /// The snapshot metadata.
    pub fn snapshot(&self) -> &Signed<Snapshot> {
        self.repo.signed_snapshot()
    }

    /// The timestamp metadata.
    pub fn timestamp(&self) -> &Signed<Timestamp> {
        self.repo.signed_timestamp()
    }

    /// The snapshot's entry for the current `targets.json` (length, hash,
    /// version): what a new snapshot over unchanged targets lists again.
    pub fn targets_meta(&self) -> &Metafile {
        &self.targets_meta
    }
}
