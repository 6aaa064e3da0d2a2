//! The Omaha v3 XML documents as Flatcar's `update_engine` sends and reads
//! them, as serde types read and written by `quick-xml` (nothing parsed by
//! hand). Requests keep only what the server uses; unknown attributes and
//! elements are ignored, as Omaha servers do. Responses carry each field in
//! the encoding its reader checks (update_engine reads the first package and
//! the postinstall action; Flatcar's post-install step re-reads the saved
//! response with ue-rs to fetch OEM and system extensions):
//!
//! | field | reader | encoding |
//! |---|---|---|
//! | `urls/url@codebase` | update_engine, ue-rs | base URL ending in `/`; the package name is appended (ue-rs joins it as a relative URL, so a missing `/` would drop the last path segment) |
//! | `package@name`, `@size` | update_engine, ue-rs | file name; decimal bytes, > 0 |
//! | `package@required` | ue-rs | `true` / `false` (mandatory there) |
//! | `package@hash_sha256` | ue-rs | hex SHA-256 (Omaha 3.1); a package without it is skipped |
//! | `package@hash` | ue-rs | base64 SHA-1 (Omaha 3.0), sent only when the release registered one |
//! | `action[@event=postinstall]@sha256` | update_engine, ue-rs | base64 SHA-256 of the OS payload (mandatory) |
//!
//! update_engine compares the `sha256` value byte for byte with the base64
//! digest of what it downloaded, so its encoding is not a matter of taste.

use serde::{Deserialize, Serialize};

/// A request (`<request protocol="3.0">`).
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// Protocol version; only `3.0` is spoken.
    #[serde(rename = "@protocol")]
    pub protocol: String,
    /// The client's name and version (`update_engine-0.4.10`).
    #[serde(rename = "@version", default)]
    pub updater: Option<String>,
    /// `scheduler` or `ondemandupdate`.
    #[serde(rename = "@installsource", default)]
    pub install_source: Option<String>,
    /// The operating system.
    #[serde(default)]
    pub os: Option<Os>,
    /// The applications checked (update_engine sends one).
    #[serde(rename = "app", default)]
    pub apps: Vec<AppRequest>,
}

/// `<os version platform sp arch>`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Os {
    /// OS version.
    #[serde(rename = "@version", default)]
    pub version: Option<String>,
    /// Platform (`CoreOS`).
    #[serde(rename = "@platform", default)]
    pub platform: Option<String>,
    /// Service pack (`3815.2.0_x86_64`).
    #[serde(rename = "@sp", default)]
    pub sp: Option<String>,
    /// Architecture, when sent.
    #[serde(rename = "@arch", default)]
    pub arch: Option<String>,
}

/// `<app appid version track machineid board oem ...>` and its children.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AppRequest {
    /// Application id (`{e96281a6-d1af-4bde-9a0a-97b76e56dc57}` for Flatcar).
    #[serde(rename = "@appid", default)]
    pub app_id: String,
    /// Running version.
    #[serde(rename = "@version", default)]
    pub version: String,
    /// Track: `GROUP=` of `/etc/flatcar/update.conf`.
    #[serde(rename = "@track", default)]
    pub track: String,
    /// Boot id (changes every boot).
    #[serde(rename = "@bootid", default)]
    pub boot_id: Option<String>,
    /// OEM id (`qemu`, `azure`, ...).
    #[serde(rename = "@oem", default)]
    pub oem: Option<String>,
    /// OEM version.
    #[serde(rename = "@oemversion", default)]
    pub oem_version: Option<String>,
    /// The node's machine id (`/etc/machine-id`).
    #[serde(rename = "@machineid", default)]
    pub machine_id: String,
    /// An operator-given alias.
    #[serde(rename = "@machinealias", default)]
    pub machine_alias: Option<String>,
    /// Board (`amd64-usr`, `arm64-usr`).
    #[serde(rename = "@board", default)]
    pub board: String,
    /// `<ping>`: the node is alive.
    #[serde(default)]
    pub ping: Vec<Empty>,
    /// `<updatecheck>`: the node asks for an update.
    #[serde(default)]
    pub updatecheck: Vec<Empty>,
    /// `<event>`s: what happened since the last request.
    #[serde(rename = "event", default)]
    pub events: Vec<EventRequest>,
}

impl AppRequest {
    /// Whether the request carries a ping.
    pub fn pings(&self) -> bool {
        !self.ping.is_empty()
    }
    /// Whether the request asks for an update.
    pub fn checks(&self) -> bool {
        !self.updatecheck.is_empty()
    }
}

/// An element whose attributes the server does not use.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Empty {}

/// `<event eventtype eventresult errorcode previousversion>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct EventRequest {
    /// Omaha event type ([`crate::omaha::events`]).
    #[serde(rename = "@eventtype")]
    pub event_type: u32,
    /// Omaha event result.
    #[serde(rename = "@eventresult")]
    pub result: u32,
    /// update_engine's error code, with a failed result.
    #[serde(rename = "@errorcode", default)]
    pub error_code: Option<i64>,
}

/// A response (`<response protocol="3.0" server="moho">`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename = "response")]
pub struct Response {
    /// Always `3.0`.
    #[serde(rename = "@protocol")]
    pub protocol: &'static str,
    /// Always `moho`.
    #[serde(rename = "@server")]
    pub server: &'static str,
    /// Seconds since the server's midnight (clients use it for day counting).
    pub daystart: DayStart,
    /// One per requested app, in order.
    #[serde(rename = "app")]
    pub apps: Vec<AppResponse>,
}

/// `<daystart elapsed_seconds>`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DayStart {
    /// Seconds since midnight UTC.
    #[serde(rename = "@elapsed_seconds")]
    pub elapsed_seconds: u64,
}

/// `<app appid status>` of a response.
#[derive(Debug, Clone, Serialize)]
pub struct AppResponse {
    /// The app id as the request spelt it.
    #[serde(rename = "@appid")]
    pub app_id: String,
    /// `ok`, or `error-unknownApplication`.
    #[serde(rename = "@status")]
    pub status: String,
    /// Acknowledges a ping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping: Option<Status>,
    /// The answer to an update check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updatecheck: Option<UpdateCheck>,
    /// One acknowledgement per event.
    #[serde(rename = "event", skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Status>,
}

/// An element carrying only `status` (`<ping status="ok"/>`).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `ok`.
    #[serde(rename = "@status")]
    pub status: &'static str,
}

impl Status {
    /// `status="ok"`.
    pub const OK: Status = Status { status: "ok" };
}

/// `<updatecheck status>`: `noupdate`, or `ok` with URLs and a manifest.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateCheck {
    /// `noupdate`, `ok`, or an `error-...` status.
    #[serde(rename = "@status")]
    pub status: &'static str,
    /// Where the payloads are (with `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<Urls>,
    /// What to install (with `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
}

/// `<urls>`.
#[derive(Debug, Clone, Serialize)]
pub struct Urls {
    /// Base URLs, tried in order.
    pub url: Vec<Url>,
}

/// `<url codebase>`.
#[derive(Debug, Clone, Serialize)]
pub struct Url {
    /// Base URL the package name is appended to.
    #[serde(rename = "@codebase")]
    pub codebase: String,
}

/// `<manifest version>`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The version offered.
    #[serde(rename = "@version")]
    pub version: String,
    /// The payloads.
    pub packages: Packages,
    /// The postinstall action.
    pub actions: Actions,
}

/// `<packages>`.
#[derive(Debug, Clone, Serialize)]
pub struct Packages {
    /// The OS payload first, then extra files (OEM and system extensions).
    pub package: Vec<Package>,
}

/// `<package name hash hash_sha256 size required>`.
#[derive(Debug, Clone, Serialize)]
pub struct Package {
    /// File name, appended to the codebase.
    #[serde(rename = "@name")]
    pub name: String,
    /// Base64 SHA-1, when known.
    #[serde(rename = "@hash", skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Hex SHA-256.
    #[serde(rename = "@hash_sha256")]
    pub hash_sha256: String,
    /// Bytes.
    #[serde(rename = "@size")]
    pub size: u64,
    /// Whether the client must install it (the OS payload is).
    #[serde(rename = "@required")]
    pub required: bool,
}

/// `<actions>`.
#[derive(Debug, Clone, Serialize)]
pub struct Actions {
    /// The actions (update_engine needs the `postinstall` one).
    pub action: Vec<Action>,
}

/// `<action event="postinstall" sha256 needsadmin IsDeltaPayload
/// DisablePayloadBackoff>`.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// `postinstall`.
    #[serde(rename = "@event")]
    pub event: &'static str,
    /// Base64 SHA-256 of the OS payload.
    #[serde(rename = "@sha256")]
    pub sha256: String,
    /// Always `false`: nothing to ask a user.
    #[serde(rename = "@needsadmin")]
    pub needs_admin: bool,
    /// Always `false`: payloads are full images.
    #[serde(rename = "@IsDeltaPayload")]
    pub is_delta_payload: bool,
    /// `true`: retry downloads without backing off.
    #[serde(rename = "@DisablePayloadBackoff")]
    pub disable_payload_backoff: bool,
}

/// Why a request body is not an Omaha request.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not UTF-8.
    #[error("the request body is not UTF-8")]
    NotUtf8,
    /// Not XML, or not shaped like an Omaha request.
    #[error("not an omaha request: {0}")]
    Malformed(String),
    /// Another protocol version.
    #[error("omaha protocol {0:?} is not supported (only 3.0)")]
    Protocol(String),
    /// A document type declaration: refused rather than processed.
    #[error("a document type declaration (<!DOCTYPE) is not accepted")]
    Doctype,
}

/// Parses a request body.
pub fn parse_request(body: &[u8]) -> Result<Request, WireError> {
    let text = std::str::from_utf8(body).map_err(|_| WireError::NotUtf8)?;
    // Entities are never expanded by quick-xml; a DTD is refused outright
    // so nobody has to think about what one could declare.
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(WireError::Doctype);
    }
    let req: Request =
        quick_xml::de::from_str(text).map_err(|e| WireError::Malformed(e.to_string()))?;
    if req.protocol != "3.0" {
        return Err(WireError::Protocol(req.protocol));
    }
    Ok(req)
}

/// Writes a response document.
pub fn write_response(resp: &Response) -> Result<String, quick_xml::SeError> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut ser = quick_xml::se::Serializer::new(&mut out);
    ser.expand_empty_elements(false);
    resp.serialize(ser)?;
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECK: &str = include_str!("../../tests/omaha/update-check.xml");

    #[test]
    fn reads_update_engine_update_check() {
        let r = parse_request(CHECK.as_bytes()).unwrap();
        assert_eq!(r.apps.len(), 1);
        let a = &r.apps[0];
        assert_eq!(a.app_id, "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}");
        assert_eq!(a.version, "3815.2.0");
        assert_eq!(a.track, "stable");
        assert_eq!(a.board, "amd64-usr");
        assert_eq!(a.oem.as_deref(), Some("qemu"));
        assert_eq!(a.machine_id, "5f3b8c2a9d1e4f6a8b7c0d2e4f6a8b10");
        assert!(a.pings() && a.checks());
        assert_eq!(a.events.len(), 1);
        assert_eq!(a.events[0].event_type, 3);
        assert_eq!(a.events[0].result, 2);
        assert_eq!(r.os.unwrap().platform.as_deref(), Some("CoreOS"));
    }

    #[test]
    fn an_event_only_request_has_no_check() {
        let r = parse_request(include_bytes!(
            "../../tests/omaha/event-download-started.xml"
        ))
        .unwrap();
        let a = &r.apps[0];
        assert!(!a.pings() && !a.checks());
        assert_eq!(
            a.events,
            vec![EventRequest {
                event_type: 13,
                result: 1,
                error_code: None
            }]
        );
    }

    #[test]
    fn refuses_what_is_not_an_omaha_3_request() {
        for (body, what) in [
            (&b"<request protocol=\"3.0\"><app"[..], "truncated"),
            (b"{\"json\": true}", "json"),
            (b"<request><app appid=\"x\"/></request>", "no protocol"),
            (b"\xff\xfe<request/>", "not utf-8"),
            (
                b"<!DOCTYPE r [<!ENTITY a \"aaaa\">]><request protocol=\"3.0\">&a;</request>",
                "doctype",
            ),
            (b"<request protocol=\"3.0\"><app><event eventtype=\"x\" eventresult=\"1\"/></app></request>", "bad event type"),
        ] {
            assert!(parse_request(body).is_err(), "{what} accepted");
        }
        assert!(matches!(
            parse_request(b"<request protocol=\"2.0\"/>"),
            Err(WireError::Protocol(_))
        ));
    }

    #[test]
    fn writes_the_fields_in_their_encodings() {
        let resp = Response {
            protocol: "3.0",
            server: "moho",
            daystart: DayStart { elapsed_seconds: 7 },
            apps: vec![AppResponse {
                app_id: "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}".into(),
                status: "ok".into(),
                ping: Some(Status::OK),
                updatecheck: Some(UpdateCheck {
                    status: "ok",
                    urls: Some(Urls {
                        url: vec![Url {
                            codebase: "https://mirror.example/amd64-usr/3815.2.1/".into(),
                        }],
                    }),
                    manifest: Some(Manifest {
                        version: "3815.2.1".into(),
                        packages: Packages {
                            package: vec![Package {
                                name: "flatcar_production_update.gz".into(),
                                hash: None,
                                hash_sha256: "ab".repeat(32),
                                size: 123,
                                required: true,
                            }],
                        },
                        actions: Actions {
                            action: vec![Action {
                                event: "postinstall",
                                sha256: "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=".into(),
                                needs_admin: false,
                                is_delta_payload: false,
                                disable_payload_backoff: true,
                            }],
                        },
                    }),
                }),
                events: vec![Status::OK],
            }],
        };
        let xml = write_response(&resp).unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response protocol=\"3.0\" server=\"moho\">"), "{xml}");
        for part in [
            "<daystart elapsed_seconds=\"7\"/>",
            "<url codebase=\"https://mirror.example/amd64-usr/3815.2.1/\"/>",
            "<manifest version=\"3815.2.1\">",
            "size=\"123\" required=\"true\"/>",
            "<action event=\"postinstall\" sha256=\"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\" needsadmin=\"false\" IsDeltaPayload=\"false\" DisablePayloadBackoff=\"true\"/>",
            "<event status=\"ok\"/>",
        ] {
            assert!(xml.contains(part), "{part} missing in {xml}");
        }
    }
}
