//! First-boot provisioning (DESIGN §8): what makes a stock image a node of
//! its operator's fleet arrives in a provision document.
//!
//! - [`doc`]: the document (TOML, `version = 1`), parsed with typed errors.
//! - [`source`]: where it may come from, and the first-match rule.
//! - [`local`]: the real sources (kernel command line, credential, config
//!   drive, ESP file).
//! - [`metadata`]: the EC2-style instance metadata service (user data).
//! - [`apply`]: the files it makes under `/run/moho`, and the host name.
//!
//! [`provision`] is one boot's run (`update-agent provision`, from
//! `moho-provision.service`, before the agent): the derived files of the
//! previous boot are removed; the document accepted on an earlier boot
//! (`/var/lib/moho/provision.toml`) is used if there is one, else the
//! sources are tried in order; the document is parsed, applied, and the
//! agent's configuration with it validated; only then is a newly found
//! document stored. A bad document is an error (the unit fails, the agent,
//! which requires it, does not start; the boot goes on), and nothing of it
//! stays in `/run`.

pub mod apply;
pub mod doc;
pub mod local;
pub mod metadata;
pub mod source;

use std::path::{Path, PathBuf};

use apply::Host;
use doc::DocError;
use source::{Found, Source, SourceError, SourceName, first_match};

/// The accepted document, in the agent's state directory.
pub const STORED: &str = "provision.toml";

/// Where one run reads and writes.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The agent's state directory (`/var/lib/moho`).
    pub state_dir: PathBuf,
    /// The run directory (`/run/moho`); its `agent.d` must be one of the
    /// configuration directories.
    pub run_dir: PathBuf,
    /// The agent's configuration directories, to validate the result.
    pub config_dirs: Vec<PathBuf>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No document anywhere: the image's own configuration applies.
    NoDocument,
    /// A document was applied.
    Applied {
        /// Where it came from (the stored copy after the first boot).
        origin: SourceName,
        /// Whether it was found this boot (and stored now).
        newly_accepted: bool,
        /// The files written.
        written: Vec<PathBuf>,
    },
}

/// A run that failed; nothing of the document stays in `/run`.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A source is there but could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The document is bad.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// The agent configuration the document makes is invalid.
    #[error("{origin}: the agent configuration it makes is refused: {error}")]
    Config {
        /// Where the document came from.
        origin: SourceName,
        /// The agent's message (file, key, value).
        error: String,
    },
    /// Writing the derived files or the stored copy failed.
    #[error("{origin}: {what} {path}: {error}", path = path.display())]
    Write {
        /// Where the document came from.
        origin: SourceName,
        /// What was being written.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        error: String,
    },
}

/// One boot's provisioning run.
pub fn provision(
    paths: &Paths,
    sources: &mut [Box<dyn Source + '_>],
    host: &mut dyn Host,
) -> Result<Outcome, ProvisionError> {
    let stored_path = paths.state_dir.join(STORED);
    let write_err =
        |source: &SourceName, what, path: &Path, e: &dyn std::fmt::Display| ProvisionError::Write {
            origin: source.clone(),
            what,
            path: path.to_owned(),
            error: e.to_string(),
        };
    let stored_name = SourceName::Stored(stored_path.clone());
    apply::clear(&paths.run_dir)
        .map_err(|e| write_err(&stored_name, "clearing", &paths.run_dir, &e))?;
    let (found, newly) = match source::read_if_present(&stored_path, || stored_name.clone())? {
        Some(bytes) => (
            Found {
                origin: stored_name.clone(),
                bytes,
            },
            false,
        ),
        None => match first_match(sources)? {
            Some(f) => (f, true),
            None => return Ok(Outcome::NoDocument),
        },
    };
    let doc = doc::parse(&found.origin, &found.bytes)?;
    let undo = |e: ProvisionError| {
        if let Err(c) = apply::clear(&paths.run_dir) {
            tracing::warn!(dir = %paths.run_dir.display(), "clearing after a failure: {c}");
        }
        e
    };
    let written = apply::apply(&doc, &found.origin, &paths.run_dir, host)
        .map_err(|e| undo(write_err(&found.origin, "writing", &paths.run_dir, &e)))?;
    crate::config::load(&paths.config_dirs).map_err(|e| {
        undo(ProvisionError::Config {
            origin: found.origin.clone(),
            error: e.to_string(),
        })
    })?;
    if newly {
        crate::atomic_file::write_atomic(&stored_path, &found.bytes)
            .map_err(|e| undo(write_err(&found.origin, "storing", &stored_path, &e)))?;
        tracing::info!(source = %found.origin, stored = %stored_path.display(), "provision document accepted");
    }
    Ok(Outcome::Applied {
        origin: found.origin,
        newly_accepted: newly,
        written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use apply::FakeHost;

    struct Once(Option<Found>);

    impl Source for Once {
        fn kind(&self) -> &'static str {
            "test"
        }
        fn probe(&mut self) -> Result<Option<Found>, SourceError> {
            Ok(self.0.take())
        }
    }

    /// A state dir, a run dir, and configuration dirs made of an image
    /// drop-in (board, root) plus the run dir's agent.d.
    fn setup() -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("image.d");
        std::fs::create_dir_all(&image).unwrap();
        std::fs::write(
            image.join("10-image.toml"),
            "[node]\nboard = \"amd64-generic\"\n[repository]\nurl = \"https://image.example/repo/\"\nroot = \"/usr/lib/moho/root.json\"\n",
        )
        .unwrap();
        let run = dir.path().join("run");
        let paths = Paths {
            state_dir: dir.path().join("state"),
            config_dirs: vec![image, run.join("agent.d")],
            run_dir: run,
        };
        (dir, paths)
    }

    fn credential(doc: &str) -> Found {
        Found {
            origin: SourceName::Credential("/run/credentials/@system/moho.provision".into()),
            bytes: doc.as_bytes().to_vec(),
        }
    }

    const GOOD: &str = "version = 1\nhostname = \"n1\"\n[server]\nurl = \"https://10.0.2.100/\"\n[node]\nchannel = \"beta\"\n";

    #[test]
    fn a_found_document_is_applied_stored_and_reapplied_from_the_store_at_the_next_boot() {
        let (_dir, paths) = setup();
        let mut host = FakeHost::default();
        let mut sources: Vec<Box<dyn Source>> = vec![Box::new(Once(Some(credential(GOOD))))];
        let out = provision(&paths, &mut sources, &mut host).unwrap();
        assert!(
            matches!(
                &out,
                Outcome::Applied {
                    newly_accepted: true,
                    origin: SourceName::Credential(_),
                    ..
                }
            ),
            "{out:?}"
        );
        assert_eq!(
            std::fs::read_to_string(paths.state_dir.join(STORED)).unwrap(),
            GOOD
        );
        let (config, _) = crate::config::load(&paths.config_dirs).unwrap();
        assert_eq!(config.node.channel.as_str(), "beta");

        // Next boot: /run is empty again; the stored copy is used, and a
        // different document offered by a source is not looked at.
        std::fs::remove_dir_all(&paths.run_dir).unwrap();
        let mut sources: Vec<Box<dyn Source>> = vec![Box::new(Once(Some(credential(
            "version = 1\n[node]\nchannel = \"alpha\"\n",
        ))))];
        let out = provision(&paths, &mut sources, &mut host).unwrap();
        assert!(
            matches!(
                &out,
                Outcome::Applied {
                    newly_accepted: false,
                    origin: SourceName::Stored(_),
                    ..
                }
            ),
            "{out:?}"
        );
        let (config, _) = crate::config::load(&paths.config_dirs).unwrap();
        assert_eq!(config.node.channel.as_str(), "beta");
        assert_eq!(host.names, ["n1", "n1"]);
    }

    #[test]
    fn no_document_leaves_the_image_configuration_alone() {
        let (_dir, paths) = setup();
        let mut sources: Vec<Box<dyn Source>> = vec![Box::new(Once(None))];
        let out = provision(&paths, &mut sources, &mut FakeHost::default()).unwrap();
        assert_eq!(out, Outcome::NoDocument);
        assert!(!paths.state_dir.join(STORED).exists());
    }

    #[test]
    fn a_bad_document_is_refused_not_stored_and_leaves_nothing_in_run() {
        let (_dir, paths) = setup();
        for (doc, needle) in [
            (
                "version = 1\n[node]\nchanel = \"x\"\n",
                "unknown key node.chanel = \"x\"",
            ),
            (
                r#"{"ignition": {"version": "3.4.0"}}"#,
                "this is an Ignition config",
            ),
            // Parses, but the agent refuses what it makes: named too.
            (
                "version = 1\n[reboot]\nstrategy = \"sometimes\"\n",
                "the agent configuration it makes is refused",
            ),
            (
                "version = 1\n[health]\ndeadline = \"1s\"\n",
                "health.deadline = \"1s\": expected at least 10s",
            ),
        ] {
            let mut sources: Vec<Box<dyn Source>> = vec![Box::new(Once(Some(credential(doc))))];
            let err = provision(&paths, &mut sources, &mut FakeHost::default()).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(needle) && text.contains("systemd credential moho.provision"),
                "{doc}: {text}"
            );
            assert!(!paths.state_dir.join(STORED).exists());
            assert!(!paths.run_dir.join(apply::DROPIN).exists());
        }
    }
}
