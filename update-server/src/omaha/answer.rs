//! The Omaha answer (pure): per app, acknowledgements for its ping and
//! events, and for an update check either `noupdate` (nothing now — a hold,
//! a pin, a closed window or a full cap is never an error status, which
//! would make update_engine report an error) or `ok` with the payload's URL,
//! size and hashes in the encodings the clients check ([`super::wire`]).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use moho_protocol::admin::{FlatcarPackage, FlatcarPayloads};

use super::wire::{
    Action, Actions, AppResponse, DayStart, Manifest, Package, Packages, Response, Status,
    UpdateCheck, Url, Urls,
};

/// Why a registered release cannot be offered (a bug or corrupt data,
/// never the node's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// A digest that is not hex of the right length.
    #[error("flatcar release {version}: {what} of {file} is not {digits} hex digits")]
    BadDigest {
        /// Release version.
        version: String,
        /// File name.
        file: String,
        /// Which digest.
        what: &'static str,
        /// Expected length.
        digits: usize,
    },
}

/// What the server answers one app's update check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckAnswer<'a> {
    /// Nothing now.
    NoUpdate,
    /// Install `version` from `payloads`.
    Update {
        /// Release version.
        version: &'a str,
        /// Its files.
        payloads: &'a FlatcarPayloads,
    },
}

/// One app's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppAnswer<'a> {
    /// A served app: its ping, events and update check acknowledged.
    Served {
        /// The app id as the request spelt it.
        app_id: &'a str,
        /// The request had a `<ping>`.
        ping: bool,
        /// Number of `<event>`s.
        events: usize,
        /// The answer to its `<updatecheck>`, if it had one.
        check: Option<CheckAnswer<'a>>,
    },
    /// An app this server does not serve.
    UnknownApp {
        /// The app id as sent.
        app_id: &'a str,
    },
    /// A served app whose track names a channel or group the server does
    /// not have.
    UnknownTrack {
        /// The app id as sent.
        app_id: &'a str,
    },
}

fn digest(
    hex_digits: &str,
    len: usize,
    version: &str,
    file: &str,
    what: &'static str,
) -> Result<Vec<u8>, AnswerError> {
    hex::decode(hex_digits)
        .ok()
        .filter(|d| d.len() == len)
        .ok_or_else(|| AnswerError::BadDigest {
            version: version.to_owned(),
            file: file.to_owned(),
            what,
            digits: len * 2,
        })
}

fn package(p: &FlatcarPackage, required: bool, version: &str) -> Result<Package, AnswerError> {
    digest(&p.sha256, 32, version, &p.name, "sha256")?;
    let hash = match &p.sha1 {
        Some(h) => Some(STANDARD.encode(digest(h, 20, version, &p.name, "sha1")?)),
        None => None,
    };
    Ok(Package {
        name: p.name.clone(),
        hash,
        hash_sha256: p.sha256.to_ascii_lowercase(),
        size: p.size,
        required,
    })
}

/// The `ok` update check for `version`.
pub fn update(version: &str, payloads: &FlatcarPayloads) -> Result<UpdateCheck, AnswerError> {
    let os = &payloads.payload;
    let sha256 = STANDARD.encode(digest(&os.sha256, 32, version, &os.name, "sha256")?);
    let mut packages = vec![package(os, true, version)?];
    for extra in &payloads.extra {
        packages.push(package(extra, false, version)?);
    }
    let mut codebase = payloads.url.clone();
    if !codebase.ends_with('/') {
        codebase.push('/');
    }
    Ok(UpdateCheck {
        status: "ok",
        urls: Some(Urls {
            url: vec![Url { codebase }],
        }),
        manifest: Some(Manifest {
            version: version.to_owned(),
            packages: Packages { package: packages },
            actions: Actions {
                action: vec![Action {
                    event: "postinstall",
                    sha256,
                    needs_admin: false,
                    is_delta_payload: false,
                    disable_payload_backoff: true,
                }],
            },
        }),
    })
}

fn no_update() -> UpdateCheck {
    UpdateCheck {
        status: "noupdate",
        urls: None,
        manifest: None,
    }
}

/// The whole response at `now`.
pub fn response(apps: &[AppAnswer<'_>], now: Timestamp) -> Result<Response, AnswerError> {
    let elapsed_seconds = u64::try_from(now.as_second().rem_euclid(86_400)).unwrap_or(0);
    let apps = apps
        .iter()
        .map(|a| {
            Ok(match a {
                AppAnswer::Served {
                    app_id,
                    ping,
                    events,
                    check,
                } => AppResponse {
                    app_id: (*app_id).to_owned(),
                    status: "ok".into(),
                    ping: ping.then_some(Status::OK),
                    updatecheck: match check {
                        None => None,
                        Some(CheckAnswer::NoUpdate) => Some(no_update()),
                        Some(CheckAnswer::Update { version, payloads }) => {
                            Some(update(version, payloads)?)
                        }
                    },
                    events: vec![Status::OK; *events],
                },
                AppAnswer::UnknownApp { app_id } => AppResponse {
                    app_id: (*app_id).to_owned(),
                    status: "error-unknownApplication".into(),
                    ping: None,
                    updatecheck: None,
                    events: Vec::new(),
                },
                AppAnswer::UnknownTrack { app_id } => AppResponse {
                    app_id: (*app_id).to_owned(),
                    status: "error-unknownTrack".into(),
                    ping: None,
                    updatecheck: None,
                    events: Vec::new(),
                },
            })
        })
        .collect::<Result<_, AnswerError>>()?;
    Ok(Response {
        protocol: "3.0",
        server: "moho",
        daystart: DayStart { elapsed_seconds },
        apps,
    })
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::omaha::wire::write_response;

    fn payloads() -> FlatcarPayloads {
        let sha = hex::encode(Sha256::digest(b"payload"));
        FlatcarPayloads {
            url: "https://mirror.example/amd64-usr/3815.2.1".into(),
            payload: FlatcarPackage {
                name: "flatcar_production_update.gz".into(),
                size: 7,
                sha256: sha,
                sha1: Some("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d".into()),
            },
            extra: vec![FlatcarPackage {
                name: "oem-azure.gz".into(),
                size: 3,
                sha256: hex::encode(Sha256::digest(b"oem")),
                sha1: None,
            }],
        }
    }

    #[test]
    fn an_offer_carries_each_hash_in_its_readers_encoding() {
        let p = payloads();
        let at: Timestamp = "2026-03-02T10:00:05Z".parse().unwrap();
        let r = response(
            &[AppAnswer::Served {
                app_id: "{E96281A6-D1AF-4BDE-9A0A-97B76E56DC57}",
                ping: true,
                events: 2,
                check: Some(CheckAnswer::Update {
                    version: "3815.2.1",
                    payloads: &p,
                }),
            }],
            at,
        )
        .unwrap();
        let xml = write_response(&r).unwrap();
        let b64 = STANDARD.encode(Sha256::digest(b"payload"));
        for part in [
            "<daystart elapsed_seconds=\"36005\"/>".to_owned(),
            "<app appid=\"{E96281A6-D1AF-4BDE-9A0A-97B76E56DC57}\" status=\"ok\"><ping status=\"ok\"/>".to_owned(),
            // ue-rs joins names to the codebase: it must end in '/'.
            "<url codebase=\"https://mirror.example/amd64-usr/3815.2.1/\"/>".to_owned(),
            format!(
                "<package name=\"flatcar_production_update.gz\" hash=\"qvTGHdzF6KLavt4PO0gs2a6pQ00=\" hash_sha256=\"{}\" size=\"7\" required=\"true\"/>",
                p.payload.sha256
            ),
            "<package name=\"oem-azure.gz\" hash_sha256=".to_owned(),
            "size=\"3\" required=\"false\"/>".to_owned(),
            format!("<action event=\"postinstall\" sha256=\"{b64}\""),
            "<event status=\"ok\"/><event status=\"ok\"/>".to_owned(),
        ] {
            assert!(xml.contains(&part), "{part}\nmissing in\n{xml}");
        }
    }

    #[test]
    fn waiting_is_noupdate_and_strangers_get_an_app_status() {
        let at = Timestamp::UNIX_EPOCH;
        let r = response(
            &[
                AppAnswer::Served {
                    app_id: "a",
                    ping: false,
                    events: 0,
                    check: Some(CheckAnswer::NoUpdate),
                },
                AppAnswer::UnknownApp { app_id: "b" },
                AppAnswer::UnknownTrack { app_id: "c" },
            ],
            at,
        )
        .unwrap();
        let xml = write_response(&r).unwrap();
        assert!(
            xml.contains("<app appid=\"a\" status=\"ok\"><updatecheck status=\"noupdate\"/></app>"),
            "{xml}"
        );
        assert!(
            xml.contains("<app appid=\"b\" status=\"error-unknownApplication\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<app appid=\"c\" status=\"error-unknownTrack\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn a_corrupt_digest_is_an_error_not_a_bad_offer() {
        let mut p = payloads();
        p.payload.sha256 = "abc".into();
        assert!(matches!(
            update("3815.2.1", &p),
            Err(AnswerError::BadDigest { what: "sha256", .. })
        ));
    }
}
