//! Where a provision document comes from (DESIGN §8), in the order they are
//! tried (first match wins): the kernel command line, the systemd credential
//! `moho.provision`, a config drive labelled `cidata`/`config-2`,
//! `moho/provision.toml` on the ESP, an EC2-style metadata service.
//!
//! Each source is a [`Source`]: `Ok(None)` when it is not there (no such
//! credential, no such drive), `Ok(Some(found))` with the bytes, or an error
//! when it is there but cannot be read — which stops the search, so that a
//! broken config drive never lets a later source provision the node instead.

use std::fmt;
use std::path::{Path, PathBuf};

/// The source a document came from, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceName {
    /// `moho.provision=URL` on the kernel command line.
    KernelCmdline(String),
    /// The systemd credential `moho.provision`, at this path.
    Credential(PathBuf),
    /// A config drive: its label, device and the file read.
    ConfigDrive {
        /// `cidata` or `config-2`.
        label: String,
        /// The block device.
        device: PathBuf,
        /// The file on it.
        file: &'static str,
    },
    /// `moho/provision.toml` on the ESP of this device.
    EspFile(PathBuf),
    /// The user data of a metadata service.
    MetadataService(String),
    /// The document accepted on an earlier boot.
    Stored(PathBuf),
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KernelCmdline(url) => write!(f, "kernel command line moho.provision={url}"),
            Self::Credential(p) => {
                write!(f, "systemd credential moho.provision ({})", p.display())
            }
            Self::ConfigDrive {
                label,
                device,
                file,
            } => write!(f, "config drive {label} ({}) {file}", device.display()),
            Self::EspFile(dev) => write!(f, "moho/provision.toml on the ESP ({})", dev.display()),
            Self::MetadataService(url) => write!(f, "metadata service {url}"),
            Self::Stored(p) => write!(f, "stored provision document {}", p.display()),
        }
    }
}

/// A document found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where.
    pub origin: SourceName,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A source that is present but could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Reading it failed.
    #[error("{origin}: {detail}")]
    Read {
        /// Which source.
        origin: SourceName,
        /// What failed.
        detail: String,
    },
    /// The document's hash is not the one pinned for it.
    #[error("{origin}: sha256 {actual} does not match the pinned moho.provision.sha256={pinned}")]
    HashMismatch {
        /// Which source.
        origin: SourceName,
        /// The pinned hash.
        pinned: String,
        /// What the document hashes to.
        actual: String,
    },
    /// The source is named but this agent cannot read it yet.
    #[error("{origin}: {what} is not implemented yet")]
    NotImplemented {
        /// Which source.
        origin: SourceName,
        /// What is missing.
        what: &'static str,
    },
}

/// One place a document may be.
pub trait Source {
    /// What this source is, for the log (`credential`, `config drive`...).
    fn kind(&self) -> &'static str;
    /// Looks for a document.
    fn probe(&mut self) -> Result<Option<Found>, SourceError>;
}

/// The first source that has a document, and what each source before it said.
pub fn first_match(sources: &mut [Box<dyn Source + '_>]) -> Result<Option<Found>, SourceError> {
    for s in sources.iter_mut() {
        if let Some(found) = s.probe()? {
            tracing::info!(source = %found.origin, "provision document found");
            return Ok(Some(found));
        }
        tracing::debug!(kind = s.kind(), "no provision document");
    }
    Ok(None)
}

/// Reads `path` if it exists.
pub(crate) fn read_if_present(
    path: &Path,
    name: impl FnOnce() -> SourceName,
) -> Result<Option<Vec<u8>>, SourceError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SourceError::Read {
            origin: name(),
            detail: format!("reading {}: {e}", path.display()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        answer: Option<Result<Option<Found>, SourceError>>,
        probed: std::rc::Rc<std::cell::Cell<u32>>,
    }

    impl Source for Fake {
        fn kind(&self) -> &'static str {
            "fake"
        }
        fn probe(&mut self) -> Result<Option<Found>, SourceError> {
            self.probed.set(self.probed.get() + 1);
            self.answer.take().unwrap_or(Ok(None))
        }
    }

    fn found(p: &str) -> Found {
        Found {
            origin: SourceName::EspFile(p.into()),
            bytes: b"version = 1".to_vec(),
        }
    }

    #[test]
    fn the_first_source_with_a_document_wins_and_later_ones_are_not_asked() {
        let probed = std::rc::Rc::new(std::cell::Cell::new(0));
        let mk = |a| -> Box<dyn Source> {
            Box::new(Fake {
                answer: Some(a),
                probed: probed.clone(),
            })
        };
        let mut sources = vec![
            mk(Ok(None)),
            mk(Ok(Some(found("/dev/a")))),
            mk(Ok(Some(found("/dev/b")))),
        ];
        assert_eq!(first_match(&mut sources).unwrap(), Some(found("/dev/a")));
        assert_eq!(probed.get(), 2);
    }

    #[test]
    fn a_source_that_is_there_but_unreadable_stops_the_search() {
        let probed = std::rc::Rc::new(std::cell::Cell::new(0));
        let err = SourceError::Read {
            origin: SourceName::ConfigDrive {
                label: "cidata".into(),
                device: "/dev/sr0".into(),
                file: "user-data",
            },
            detail: "mount: bad superblock".into(),
        };
        let mut sources: Vec<Box<dyn Source>> = vec![
            Box::new(Fake {
                answer: Some(Err(err.clone())),
                probed: probed.clone(),
            }),
            Box::new(Fake {
                answer: Some(Ok(Some(found("/dev/b")))),
                probed: probed.clone(),
            }),
        ];
        assert_eq!(first_match(&mut sources), Err(err));
        assert_eq!(probed.get(), 1);
        let mut none: Vec<Box<dyn Source>> = vec![];
        assert_eq!(first_match(&mut none), Ok(None));
    }

    #[test]
    fn sources_are_named_as_an_operator_would_look_for_them() {
        assert_eq!(
            SourceName::ConfigDrive {
                label: "cidata".into(),
                device: "/dev/vdb".into(),
                file: "user-data"
            }
            .to_string(),
            "config drive cidata (/dev/vdb) user-data"
        );
        assert_eq!(
            SourceName::KernelCmdline("http://10.0.2.2/p.toml".into()).to_string(),
            "kernel command line moho.provision=http://10.0.2.2/p.toml"
        );
    }
}
