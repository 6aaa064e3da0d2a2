//! `moho-admin releases list|sync|register-flatcar`: the releases the
//! server read from the signed repository, and the Flatcar releases
//! registered beside them (their own kind: payloads signed by Flatcar's key,
//! outside Moho's TUF chain); only these can be rolled out.

use clap::Subcommand;
use moho_protocol::admin::{CreateFlatcarRelease, FlatcarPackage, List, ReleaseKind, ReleaseView};

use super::{Ctx, Report};
use crate::client::Method;
use crate::error::CliError;
use crate::output::{Table, bytes};

/// Releases.
#[derive(Debug, Subcommand)]
pub enum ReleasesCommand {
    /// List releases (newest last as the server orders them).
    List {
        /// Only this board.
        #[arg(long)]
        board: Option<String>,
        /// Only releases signed for this channel.
        #[arg(long)]
        channel: Option<String>,
        /// Also releases no longer in the signed repository.
        #[arg(long)]
        all: bool,
    },
    /// Re-read the releases from the served signed repository.
    Sync,
    /// Register a Flatcar Container Linux release for Flatcar nodes (Omaha):
    /// where its files are and what they hash to. Its payloads are signed by
    /// Flatcar's key, which the nodes' update_engine checks; Moho's TUF chain
    /// does not cover them. Immutable once registered.
    RegisterFlatcar {
        /// Flatcar version, e.g. 3815.2.1.
        version: String,
        /// Flatcar board, e.g. amd64-usr.
        #[arg(long)]
        board: String,
        /// Channel it may be rolled out to (repeat for more).
        #[arg(long = "channel", value_name = "CHANNEL", required = true)]
        channels: Vec<String>,
        /// Base URL of the release's files (Flatcar's release server or a
        /// mirror).
        #[arg(long)]
        url: String,
        /// The update payload: NAME:SIZE:SHA256[:SHA1] (hex digests), e.g.
        /// flatcar_production_update.gz:465362904:9f86d0...
        #[arg(long, value_name = "NAME:SIZE:SHA256[:SHA1]", value_parser = parse_package)]
        payload: FlatcarPackage,
        /// An extra file the post-install step fetches (OEM or system
        /// extension), NAME:SIZE:SHA256[:SHA1]; repeat for more.
        #[arg(long, value_name = "NAME:SIZE:SHA256[:SHA1]", value_parser = parse_package)]
        extra: Vec<FlatcarPackage>,
    },
}

/// `NAME:SIZE:SHA256[:SHA1]` (the server checks the digests' form).
fn parse_package(s: &str) -> Result<FlatcarPackage, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (name, size, sha256, sha1) = match parts[..] {
        [n, z, h] => (n, z, h, None),
        [n, z, h, h1] => (n, z, h, Some(h1)),
        _ => return Err(format!("{s:?} is not NAME:SIZE:SHA256[:SHA1]")),
    };
    let size = size
        .parse()
        .map_err(|_| format!("size {size:?} of {name:?} is not a number of bytes"))?;
    Ok(FlatcarPackage {
        name: name.to_owned(),
        size,
        sha256: sha256.to_owned(),
        sha1: sha1.map(str::to_owned),
    })
}

fn kind(k: ReleaseKind) -> &'static str {
    match k {
        ReleaseKind::Moho => "moho (TUF)",
        ReleaseKind::Flatcar => "flatcar (Flatcar's key)",
    }
}

fn table(items: &[ReleaseView]) -> String {
    let mut t = Table::new(&[
        "VERSION",
        "KIND",
        "BOARD",
        "CHANNELS",
        "SIZE",
        "MIN VERSION",
        "PRESENT",
    ]);
    for r in items {
        t.row(vec![
            r.version.clone(),
            kind(r.kind).to_owned(),
            r.board.clone(),
            r.channels.join(","),
            r.size.map_or_else(|| "-".to_owned(), bytes),
            r.min_version.clone().unwrap_or_else(|| "-".into()),
            if r.present { "yes" } else { "no" }.to_owned(),
        ]);
    }
    t.render()
}

impl ReleasesCommand {
    /// Runs the command.
    pub fn run(self, ctx: &Ctx<'_>) -> Result<Report, CliError> {
        match self {
            ReleasesCommand::List {
                board,
                channel,
                all,
            } => {
                let mut list: List<ReleaseView> = ctx.api.get("/releases")?;
                list.items.retain(|r| {
                    (all || r.present)
                        && board.as_ref().is_none_or(|b| &r.board == b)
                        && channel.as_ref().is_none_or(|c| r.channels.contains(c))
                });
                Ok(Report::new(&list, table(&list.items)))
            }
            ReleasesCommand::Sync => {
                let answer: serde_json::Value =
                    ctx.api
                        .send(Method::Post, "/releases/sync", &serde_json::json!({}))?;
                let n = answer["releases"].as_array().map_or(0, Vec::len);
                Ok(Report {
                    text: format!("{n} release(s) in the signed repository"),
                    json: answer,
                })
            }
            ReleasesCommand::RegisterFlatcar {
                version,
                board,
                channels,
                url,
                payload,
                extra,
            } => {
                let req = CreateFlatcarRelease {
                    version,
                    board,
                    channels,
                    url,
                    payload,
                    extra,
                };
                let r: ReleaseView = ctx.api.send(Method::Post, "/releases/flatcar", &req)?;
                let text = format!(
                    "registered Flatcar release {} ({}) for {}: payloads signed by Flatcar's key, \
                     outside Moho's TUF chain; roll it out with `moho-admin rollouts create {} --board {}`",
                    r.version,
                    r.board,
                    r.channels.join(","),
                    r.version,
                    r.board
                );
                Ok(Report::new(&r, text))
            }
        }
    }
}
