//! Promoting a published version to one more channel: only the `channels` of
//! its image targets change; the bytes and every other field stay as signed
//! before (DESIGN §5: promotion is a re-signing of targets).

use std::fmt;
use std::time::SystemTime;

use moho_core::release::ImageTargetCustom;

use crate::add::{check_channel, custom_map};
use crate::current::Current;
use crate::error::RepoError;
use crate::keys::KeyRing;
use crate::publication::Publication;
use crate::sign::{Expiries, expires_at, next_version};

/// What `promote` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promoted {
    /// The image targets now signed for the channel.
    pub names: Vec<String>,
    /// The channel.
    pub channel: String,
    /// The new targets version.
    pub targets_version: u64,
}

impl fmt::Display for Promoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} now signed for {}; targets version {}",
            self.names.join(", "),
            self.channel,
            self.targets_version
        )
    }
}

/// Signs `version` (of `board`, or of every board) for `channel` too.
pub fn promote(
    current: &Current,
    version: &str,
    board: Option<&str>,
    channel: &str,
    keys: &KeyRing,
    expiries: &Expiries,
    now: SystemTime,
) -> Result<(Publication, Promoted), RepoError> {
    check_channel(channel)?;
    let mut targets = current.targets().signed.clone();
    let mut matching = Vec::new();
    let mut changed = Vec::new();
    for (name, target) in &mut targets.targets {
        if target.custom.is_empty() {
            continue;
        }
        let object = serde_json::Value::Object(target.custom.clone().into_iter().collect());
        let Ok(mut custom) = serde_json::from_value::<ImageTargetCustom>(object) else {
            continue;
        };
        if custom.version != version || board.is_some_and(|b| b != custom.board) {
            continue;
        }
        matching.push(name.raw().to_owned());
        if custom.channels.insert(channel.to_owned()) {
            target.custom = custom_map(&custom);
            changed.push(name.raw().to_owned());
        }
    }
    if matching.is_empty() {
        return Err(RepoError::UnknownRelease {
            version: version.to_owned(),
            board: board.map(str::to_owned),
        });
    }
    if changed.is_empty() {
        matching.sort();
        return Err(RepoError::AlreadyOnChannel {
            names: matching.join(", "),
            channel: channel.to_owned(),
        });
    }
    changed.sort();
    targets.version = next_version(targets.version);
    targets.expires = expires_at(now, expiries.targets);
    let targets_version = targets.version;
    let publication = Publication::of_targets(targets, Vec::new(), current, keys, expiries, now)?;
    Ok((
        publication,
        Promoted {
            names: changed,
            channel: channel.to_owned(),
            targets_version: targets_version.get(),
        },
    ))
}
