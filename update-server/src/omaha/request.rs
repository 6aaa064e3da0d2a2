//! A parsed Omaha request checked into narrow types (pure): every value
//! that may be stored is bounded and spelt the way the rest of the server
//! spells it, and the track (`GROUP=` of `/etc/flatcar/update.conf`) is
//! resolved into a Moho channel and group. Anything wrong is a
//! [`RequestError`] naming the field and value, before anything is written.

use moho_protocol::admin::OmahaClient;
use moho_protocol::names::{check_channel, check_group, check_hostname, check_node_id};

use super::wire::{AppRequest, EventRequest, Request};

/// Flatcar Container Linux's Omaha application id.
pub const FLATCAR_APP_ID: &str = "e96281a6-d1af-4bde-9a0a-97b76e56dc57";

/// Most `<app>` elements in one request (update_engine sends one).
pub const MAX_APPS: usize = 4;

/// Most `<event>` elements in one `<app>` (update_engine sends one).
pub const MAX_EVENTS: usize = 16;

/// The group a track without one names.
pub const DEFAULT_GROUP: &str = "default";

/// The tracks Flatcar nodes once used as hard-coded group UUIDs (amd64 and
/// arm64), read as the channel of the same name.
const LEGACY_TRACKS: &[(&str, &str)] = &[
    ("5b810680-e36a-4879-b98a-4f989e80b899", "alpha"),
    ("3fe10490-dd73-4b49-b72a-28ac19acfcdc", "beta"),
    ("9a2deb70-37be-4026-853f-bfdd6b347bbe", "stable"),
    ("72834a2b-ad86-4d6d-b498-e08a19ebe54e", "edge"),
    ("e641708d-fb48-4260-8bdf-ba2074a1147a", "alpha"),
    ("d112ec01-ba34-4a9e-9d4b-9814a685f266", "beta"),
    ("11a585f6-9418-4df0-8863-78b2fd3240f8", "stable"),
    ("b4b2fa22-c1ea-498c-a8ac-c1dc0b1d7c17", "edge"),
];

/// Why a request is refused (answered 400, nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No `<app>`, or too many.
    #[error("an omaha request carries 1 to {MAX_APPS} <app> elements, this one {0}")]
    AppCount(usize),
    /// Too many events in one app.
    #[error("at most {MAX_EVENTS} <event> elements per <app>, this one has {0}")]
    EventCount(usize),
    /// A value breaks its rule.
    #[error("invalid {field} {value:?}: {rule}")]
    Invalid {
        /// The attribute.
        field: &'static str,
        /// What was sent (cut to 80 characters).
        value: String,
        /// The rule.
        rule: &'static str,
    },
}

fn invalid(field: &'static str, value: &str, rule: &'static str) -> RequestError {
    RequestError::Invalid {
        field,
        value: value.chars().take(80).collect(),
        rule,
    }
}

/// An app id as compared: lower case, without braces.
pub fn normalize_app_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_ascii_lowercase()
}

/// Where a track puts a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Channel.
    pub channel: String,
    /// Group.
    pub group: String,
}

/// Resolves a track: `CHANNEL` (group `default`), `CHANNEL/GROUP`, or one
/// of Flatcar's old hard-coded group UUIDs.
pub fn parse_track(track: &str) -> Result<Track, RequestError> {
    let t = normalize_app_id(track);
    if let Some((_, channel)) = LEGACY_TRACKS.iter().find(|(id, _)| *id == t) {
        return Ok(Track {
            channel: (*channel).to_owned(),
            group: DEFAULT_GROUP.to_owned(),
        });
    }
    let (channel, group) = track.split_once('/').unwrap_or((track, DEFAULT_GROUP));
    let rule = "use CHANNEL or CHANNEL/GROUP (a-z 0-9 - _, 1-64 each)";
    check_channel(channel).map_err(|_| invalid("track", track, rule))?;
    check_group(group).map_err(|_| invalid("track", track, rule))?;
    Ok(Track {
        channel: channel.to_owned(),
        group: group.to_owned(),
    })
}

/// A short token (versions, boards, OEM ids): 1–64 characters of
/// `A-Z a-z 0-9 . _ + -`.
fn token(field: &'static str, value: &str) -> Result<String, RequestError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(invalid(
            field,
            value,
            "use 1-64 characters of A-Z a-z 0-9 . _ + -",
        ))
    }
}

/// An optional token: empty means absent.
fn optional_token(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<String>, RequestError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => token(field, v).map(Some),
    }
}

/// One `<app>` of an application this server serves, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCheck {
    /// The app id as the request spelt it (echoed in the answer).
    pub app_id_sent: String,
    /// The node's id: its machine id.
    pub machine_id: String,
    /// Running version.
    pub version: String,
    /// Board (`amd64-usr`, `arm64-usr`).
    pub board: String,
    /// Channel and group from the track.
    pub track: Track,
    /// Shown beside the id ('' if none): the machine alias.
    pub hostname: String,
    /// What the node tells about itself (stored as sent, bounded).
    pub client: OmahaClient,
    /// `<ping>` present.
    pub ping: bool,
    /// `<updatecheck>` present.
    pub update_check: bool,
    /// Its events, in order.
    pub events: Vec<EventRequest>,
}

/// One `<app>` of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEntry {
    /// An application this server serves.
    Known(Box<AppCheck>),
    /// Another application: answered `error-unknownApplication`, nothing
    /// stored.
    Unknown {
        /// The app id as sent.
        app_id_sent: String,
    },
}

/// Checks every app of `req`; `app_ids` are the served ids, normalised.
pub fn check_request(req: &Request, app_ids: &[String]) -> Result<Vec<AppEntry>, RequestError> {
    if req.apps.is_empty() || req.apps.len() > MAX_APPS {
        return Err(RequestError::AppCount(req.apps.len()));
    }
    let updater = optional_token("request version", req.updater.as_deref())?;
    req.apps
        .iter()
        .map(|a| {
            if app_ids.contains(&normalize_app_id(&a.app_id)) {
                check_app(a, updater.clone()).map(|c| AppEntry::Known(Box::new(c)))
            } else {
                // Echoed in the answer: bounded like every other value.
                Ok(AppEntry::Unknown {
                    app_id_sent: a.app_id.chars().take(64).collect(),
                })
            }
        })
        .collect()
}

fn check_app(a: &AppRequest, updater: Option<String>) -> Result<AppCheck, RequestError> {
    if a.events.len() > MAX_EVENTS {
        return Err(RequestError::EventCount(a.events.len()));
    }
    check_node_id(&a.machine_id).map_err(|_| {
        invalid(
            "machineid",
            &a.machine_id,
            "use 1-128 characters of A-Z a-z 0-9 . _ : -",
        )
    })?;
    let alias = a.machine_alias.as_deref().unwrap_or_default().trim();
    check_hostname(alias).map_err(|_| {
        invalid(
            "machinealias",
            alias,
            "use at most 255 bytes and no control characters",
        )
    })?;
    let track = parse_track(&a.track)?;
    Ok(AppCheck {
        app_id_sent: a.app_id.clone(),
        machine_id: a.machine_id.clone(),
        version: token("version", &a.version)?,
        board: token("board", &a.board)?,
        hostname: alias.to_owned(),
        client: OmahaClient {
            app_id: normalize_app_id(&a.app_id),
            track: a.track.clone(),
            oem: optional_token("oem", a.oem.as_deref())?,
            oem_version: optional_token("oemversion", a.oem_version.as_deref())?,
            updater,
        },
        track,
        ping: a.pings(),
        update_check: a.checks(),
        events: a.events.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::omaha::wire::parse_request;

    const CHECK: &str = include_str!("../../tests/omaha/update-check.xml");

    fn served() -> Vec<String> {
        vec![FLATCAR_APP_ID.to_owned()]
    }

    #[test]
    fn an_update_engine_check_reads_into_a_known_app() {
        let req = parse_request(CHECK.as_bytes()).unwrap();
        let apps = check_request(&req, &served()).unwrap();
        let [AppEntry::Known(a)] = apps.as_slice() else {
            panic!("{apps:?}");
        };
        assert_eq!(a.machine_id, "5f3b8c2a9d1e4f6a8b7c0d2e4f6a8b10");
        assert_eq!(a.version, "3815.2.0");
        assert_eq!(a.board, "amd64-usr");
        assert_eq!(
            a.track,
            Track {
                channel: "stable".into(),
                group: "default".into()
            }
        );
        assert_eq!(a.client.oem.as_deref(), Some("qemu"));
        assert_eq!(a.client.updater.as_deref(), Some("update_engine-0.4.10"));
        assert_eq!(a.hostname, "");
        assert!(a.ping && a.update_check);
    }

    #[test]
    fn tracks_name_a_channel_and_optionally_a_group() {
        assert_eq!(parse_track("beta/db-eu").unwrap().group, "db-eu");
        assert_eq!(parse_track("beta").unwrap().group, "default");
        assert_eq!(
            parse_track("{9A2DEB70-37BE-4026-853F-BFDD6B347BBE}")
                .unwrap()
                .channel,
            "stable"
        );
        for bad in ["", "Stable", "a/b/c", "stable/", "x y"] {
            let e = parse_track(bad).unwrap_err();
            assert!(e.to_string().contains("track"), "{bad}: {e}");
        }
    }

    #[test]
    fn another_application_is_unknown_not_an_error() {
        let body = CHECK.replace(FLATCAR_APP_ID, "87efface-864d-49a5-9bb3-4b050a7c227a");
        let req = parse_request(body.as_bytes()).unwrap();
        assert_eq!(
            check_request(&req, &served()).unwrap(),
            vec![AppEntry::Unknown {
                app_id_sent: "{87efface-864d-49a5-9bb3-4b050a7c227a}".into()
            }]
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        for (from, to, field) in [
            (
                "machineid=\"5f3b8c2a9d1e4f6a8b7c0d2e4f6a8b10\"",
                "machineid=\"../../etc\"",
                "machineid",
            ),
            ("version=\"3815.2.0\"", "version=\"\"", "version"),
            ("board=\"amd64-usr\"", "board=\"amd64 usr\"", "board"),
            ("oem=\"qemu\"", "oem=\"&lt;script&gt;\"", "oem"),
            ("track=\"stable\"", "track=\"Stable\"", "track"),
        ] {
            assert!(CHECK.contains(from), "{from}");
            let body = CHECK.replace(from, to);
            let req = parse_request(body.as_bytes()).unwrap();
            let e = check_request(&req, &served()).unwrap_err();
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
        let long = CHECK.replace(
            "version=\"3815.2.0\"",
            &format!("version=\"{}\"", "9".repeat(65)),
        );
        let req = parse_request(long.as_bytes()).unwrap();
        assert!(check_request(&req, &served()).is_err());
    }

    #[test]
    fn app_and_event_counts_are_bounded() {
        let none = parse_request(b"<request protocol=\"3.0\"></request>").unwrap();
        assert_eq!(
            check_request(&none, &served()),
            Err(RequestError::AppCount(0))
        );
        // 16 more beside the fixture's own: one too many, even when they
        // are not next to each other.
        let events = "<event eventtype=\"13\" eventresult=\"1\"></event>".repeat(16);
        let body = CHECK.replace("<ping active=\"1\"></ping>", &events);
        let req = parse_request(body.as_bytes()).unwrap();
        assert_eq!(
            check_request(&req, &served()),
            Err(RequestError::EventCount(17))
        );
    }
}
