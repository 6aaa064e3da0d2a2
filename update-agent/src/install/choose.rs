//! Which release to install (pure): the one asked for by target name or
//! version, or else the newest one signed for this node's board and channel
//! that is newer than the booted version and not on the deny list.

use moho_release::{NodeContext, VerifiedRelease, VerifiedRepository};
use semver::Version;

use super::error::Refusal;
use crate::denylist::DenyList;

/// What the operator asked for.
#[derive(Debug, Clone, Default)]
pub struct InstallRequest {
    /// A target name (`<board>/<version>/<file>`).
    pub target: Option<String>,
    /// A version.
    pub version: Option<Version>,
}

/// The release to install, `None` when nothing newer is available.
pub fn choose(
    repo: &VerifiedRepository,
    request: &InstallRequest,
    node: &NodeContext,
    deny: &DenyList,
) -> Result<Option<VerifiedRelease>, Refusal> {
    let name = if let Some(t) = &request.target {
        t.clone()
    } else if let Some(v) = &request.version {
        repo.releases()
            .find(|r| r.version() == v && r.custom().board == node.board)
            .map(|r| r.image().name().to_owned())
            .ok_or_else(|| Refusal::NoSuchVersion {
                version: v.to_string(),
                board: node.board.clone(),
            })?
    } else {
        let best = repo
            .releases()
            .filter(|r| r.custom().board == node.board)
            .filter(|r| r.custom().channels.contains(&node.channel))
            .filter(|r| {
                node.current_version
                    .as_ref()
                    .is_none_or(|c| r.version() > c)
            })
            .filter(|r| deny.get(&r.version().to_string()).is_none())
            .filter(|r| match (r.min_version(), &node.current_version) {
                (Some(min), Some(cur)) => cur >= min,
                _ => true,
            })
            .max_by(|a, b| a.version().cmp(b.version()));
        match best {
            Some(r) => r.image().name().to_owned(),
            None => return Ok(None),
        }
    };
    let release = repo.release_for(&name, node).map_err(Refusal::Release)?;
    if let Some(d) = deny.get(&release.version().to_string()) {
        return Err(Refusal::Denied {
            version: release.version().to_string(),
            reason: d.reason.clone(),
            count: d.count,
        });
    }
    Ok(Some(release))
}
