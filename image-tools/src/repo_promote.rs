//! `image-tools repo promote`: sign a published version for one more
//! channel. Only the `channels` of its image targets change; the bytes and
//! every other field stay as signed before (DESIGN §5: promotion is a
//! re-signing of targets).

use std::fmt;

use moho_core::release::ImageTargetCustom;

use crate::cli::RepoPromoteArgs;
use crate::keys::KeyRing;
use crate::repo::{self, Publication, RepoError, RepoPaths, expires_in, next_version};
use crate::repo_add::{check_channel, custom_map};

/// What `promote` changed.
#[derive(Debug)]
pub struct PromoteReport {
    names: Vec<String>,
    channel: String,
    targets_version: u64,
}

impl fmt::Display for PromoteReport {
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

/// Runs `repo promote`.
pub fn run(args: &RepoPromoteArgs) -> Result<PromoteReport, RepoError> {
    check_channel(&args.channel)?;
    let paths = RepoPaths::new(&args.repo);
    let keys = KeyRing::load(&args.keys)?;
    let loaded = repo::load(&paths)?;
    let mut targets = loaded.targets.signed.clone();
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
        if custom.version != args.version || args.board.as_ref().is_some_and(|b| *b != custom.board)
        {
            continue;
        }
        matching.push(name.raw().to_owned());
        if custom.channels.insert(args.channel.clone()) {
            target.custom = custom_map(&custom);
            changed.push(name.raw().to_owned());
        }
    }
    if matching.is_empty() {
        return Err(RepoError::UnknownRelease {
            version: args.version.clone(),
            board: args.board.clone(),
        });
    }
    if changed.is_empty() {
        matching.sort();
        return Err(RepoError::AlreadyOnChannel {
            names: matching.join(", "),
            channel: args.channel.clone(),
        });
    }
    changed.sort();
    targets.version = next_version(targets.version);
    targets.expires = expires_in(args.targets_expiry.targets_expires);
    let version = targets.version;
    let root = &loaded.root.signed;
    let signed_targets = repo::sign(targets, root, &keys)?;
    let (snapshot, timestamp) = repo::sign_online(
        Some(&loaded.snapshot.signed),
        Some(&loaded.timestamp.signed),
        signed_targets.buffer(),
        version,
        root,
        &keys,
        &args.online_expiry,
    )?;
    Publication {
        versioned: vec![
            (
                format!("{version}.targets.json"),
                signed_targets.buffer().clone(),
            ),
            (
                format!("{}.snapshot.json", snapshot.signed().signed.version),
                snapshot.buffer().clone(),
            ),
        ],
        timestamp: timestamp.buffer().clone(),
        ..Publication::default()
    }
    .write(&paths)?;
    repo::self_check(&paths)?;
    Ok(PromoteReport {
        names: changed,
        channel: args.channel.clone(),
        targets_version: version.get(),
    })
}
