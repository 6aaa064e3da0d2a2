//! What one checked Omaha `<app>` changes (pure): the node's stored state,
//! the events kept for the operator (in Moho's event vocabulary, so the
//! dashboard and API read them like any node's), and the one change to the
//! node's attempt in flight. Omaha events do not name a version; they are
//! about the attempt the server last offered, which the caller looks up.
//!
//! An attempt ends well when the node runs the version it was offered
//! (update_engine reports its running version in every request): that is
//! [`AttemptStatus::Succeeded`], an unsigned success that frees the node's
//! place under the caps and counts as finished, but never as healthy for a
//! health gate. A rollback (error code 44) or any other error ends it
//! failed, which the auto-pause counts.

use moho_protocol::node::{AgentState, EventKind};

use super::events::{Meaning, error_name, meaning};
use super::request::AppCheck;
use crate::store::{AttemptStatus, Phase};

/// What the server knows about the node before this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Before<'a> {
    /// Stored state, if the node is known.
    pub state: Option<&'a str>,
    /// Stored version, if the node is known.
    pub version: Option<&'a str>,
    /// Stored fallback version.
    pub fallback_version: Option<&'a str>,
    /// The version of its attempt in flight, if any.
    pub in_flight: Option<&'a str>,
}

/// A change to the node's attempt at `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptChange {
    /// It got this far.
    Advance {
        /// Release version.
        version: String,
        /// Phase reached.
        phase: Phase,
    },
    /// It ended.
    Finish {
        /// Release version.
        version: String,
        /// How.
        status: AttemptStatus,
        /// Where.
        phase: Phase,
    },
}

/// What to write for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The node's state after the request.
    pub state: AgentState,
    /// Version in the other partition, as far as the server can tell.
    pub fallback_version: Option<String>,
    /// Events to keep, oldest first.
    pub events: Vec<EventKind>,
    /// The attempt change, if any.
    pub attempt: Option<AttemptChange>,
}

fn parse_state(s: &str) -> AgentState {
    match s {
        "updating" => AgentState::Updating,
        "staged" => AgentState::Staged,
        "rebooting" => AgentState::Rebooting,
        "error" => AgentState::Error,
        _ => AgentState::Idle,
    }
}

/// Plans the writes for `app` given what was known `before`.
pub fn plan(app: &AppCheck, before: &Before<'_>) -> Plan {
    let rebooted_into_other = before.version.is_some_and(|v| v != app.version);
    let mut state = match before.state {
        Some(s) if !rebooted_into_other => parse_state(s),
        _ => AgentState::Idle,
    };
    let mut fallback_version = if rebooted_into_other {
        before.version.map(str::to_owned)
    } else {
        before.fallback_version.map(str::to_owned)
    };
    let offered = before.in_flight;
    let mut events = Vec::new();
    let mut attempt: Option<AttemptChange> = None;
    let advance = |attempt: &mut Option<AttemptChange>, phase: Phase| {
        if let Some(v) = offered
            && !matches!(attempt, Some(AttemptChange::Finish { .. }))
        {
            *attempt = Some(AttemptChange::Advance {
                version: v.to_owned(),
                phase,
            });
        }
    };
    for e in &app.events {
        match meaning(e) {
            Meaning::DownloadStarted | Meaning::DownloadFinished => {
                state = AgentState::Updating;
                if let Some(v) = offered {
                    events.push(if meaning(e) == Meaning::DownloadStarted {
                        EventKind::DownloadStarted { version: v.into() }
                    } else {
                        EventKind::DownloadFinished { version: v.into() }
                    });
                }
                advance(&mut attempt, Phase::Downloading);
            }
            Meaning::Installed => {
                state = AgentState::Staged;
                if let Some(v) = offered {
                    events.push(EventKind::Installed { version: v.into() });
                }
                advance(&mut attempt, Phase::Installed);
            }
            Meaning::RolledBack => {
                state = AgentState::Idle;
                match offered {
                    Some(v) => {
                        events.push(EventKind::Rollback {
                            failed_version: v.into(),
                            booted_version: app.version.clone(),
                            reason: None,
                        });
                        fallback_version = Some(v.into());
                        attempt = Some(AttemptChange::Finish {
                            version: v.into(),
                            status: AttemptStatus::Failed,
                            phase: Phase::RolledBack,
                        });
                    }
                    None => events.push(EventKind::Error {
                        version: None,
                        code: "omaha_44".into(),
                        message: format!(
                            "update_engine booted back into {} after an update this server did not offer",
                            app.version
                        ),
                    }),
                }
            }
            Meaning::Failed { code } => {
                state = AgentState::Error;
                events.push(EventKind::Error {
                    version: offered.map(str::to_owned),
                    code: format!("omaha_{code}"),
                    message: format!("update_engine error {code}: {}", error_name(code)),
                });
                if let Some(v) = offered
                    && !matches!(attempt, Some(AttemptChange::Finish { .. }))
                {
                    attempt = Some(AttemptChange::Finish {
                        version: v.into(),
                        status: AttemptStatus::Failed,
                        phase: Phase::Error,
                    });
                }
            }
            Meaning::Rebooted | Meaning::Nothing => {}
        }
    }
    // Running the offered version: the update went through.
    if let Some(v) = offered
        && v == app.version
        && attempt.is_none()
    {
        events.push(EventKind::BootedNewVersion { version: v.into() });
        state = AgentState::Idle;
        attempt = Some(AttemptChange::Finish {
            version: v.into(),
            status: AttemptStatus::Succeeded,
            phase: Phase::Installed,
        });
    }
    Plan {
        state,
        fallback_version,
        events,
        attempt,
    }
}

#[cfg(test)]
mod tests {
    use moho_protocol::admin::OmahaClient;

    use super::*;
    use crate::omaha::request::Track;
    use crate::omaha::wire::EventRequest;

    fn app(version: &str, events: &[(u32, u32, Option<i64>)]) -> AppCheck {
        AppCheck {
            app_id_sent: "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}".into(),
            machine_id: "m1".into(),
            version: version.into(),
            board: "amd64-usr".into(),
            track: Track {
                channel: "stable".into(),
                group: "default".into(),
            },
            hostname: String::new(),
            client: OmahaClient::default(),
            ping: true,
            update_check: true,
            events: events
                .iter()
                .map(|&(event_type, result, error_code)| EventRequest {
                    event_type,
                    result,
                    error_code,
                })
                .collect(),
        }
    }

    fn offered(v: &str) -> Before<'_> {
        Before {
            state: Some("idle"),
            version: Some("3815.2.0"),
            fallback_version: None,
            in_flight: Some(v),
        }
    }

    #[test]
    fn a_new_node_with_nothing_offered_changes_no_attempt() {
        let p = plan(&app("3815.2.0", &[(3, 2, None)]), &Before::default());
        assert_eq!(p.state, AgentState::Idle);
        assert!(p.events.is_empty() && p.attempt.is_none());
    }

    #[test]
    fn download_and_install_events_move_the_offered_attempt() {
        let p = plan(&app("3815.2.0", &[(13, 1, None)]), &offered("3815.2.1"));
        assert_eq!(p.state, AgentState::Updating);
        assert_eq!(
            p.events,
            vec![EventKind::DownloadStarted {
                version: "3815.2.1".into()
            }]
        );
        assert_eq!(
            p.attempt,
            Some(AttemptChange::Advance {
                version: "3815.2.1".into(),
                phase: Phase::Downloading
            })
        );
        let p = plan(
            &app("3815.2.0", &[(14, 1, None), (3, 1, None)]),
            &offered("3815.2.1"),
        );
        assert_eq!(p.state, AgentState::Staged);
        assert_eq!(
            p.attempt,
            Some(AttemptChange::Advance {
                version: "3815.2.1".into(),
                phase: Phase::Installed
            })
        );
    }

    #[test]
    fn running_the_offered_version_is_an_unsigned_success() {
        let p = plan(&app("3815.2.1", &[(3, 2, None)]), &offered("3815.2.1"));
        assert_eq!(p.state, AgentState::Idle);
        assert_eq!(p.fallback_version.as_deref(), Some("3815.2.0"));
        assert_eq!(
            p.events,
            vec![EventKind::BootedNewVersion {
                version: "3815.2.1".into()
            }]
        );
        assert_eq!(
            p.attempt,
            Some(AttemptChange::Finish {
                version: "3815.2.1".into(),
                status: AttemptStatus::Succeeded,
                phase: Phase::Installed
            })
        );
    }

    #[test]
    fn error_44_is_a_rollback_and_other_errors_fail_the_attempt() {
        let p = plan(&app("3815.2.0", &[(3, 0, Some(44))]), &offered("3815.2.1"));
        assert_eq!(
            p.events,
            vec![EventKind::Rollback {
                failed_version: "3815.2.1".into(),
                booted_version: "3815.2.0".into(),
                reason: None,
            }]
        );
        assert_eq!(
            p.attempt,
            Some(AttemptChange::Finish {
                version: "3815.2.1".into(),
                status: AttemptStatus::Failed,
                phase: Phase::RolledBack
            })
        );
        let p = plan(&app("3815.2.0", &[(3, 0, Some(10))]), &offered("3815.2.1"));
        assert_eq!(p.state, AgentState::Error);
        let [EventKind::Error { code, message, .. }] = p.events.as_slice() else {
            panic!("{:?}", p.events);
        };
        assert_eq!(code, "omaha_10");
        assert!(message.contains("hash mismatch"), "{message}");
        assert!(matches!(
            p.attempt,
            Some(AttemptChange::Finish {
                status: AttemptStatus::Failed,
                phase: Phase::Error,
                ..
            })
        ));
    }

    #[test]
    fn a_rollback_nobody_offered_is_kept_but_ends_no_attempt() {
        let p = plan(&app("3815.2.0", &[(3, 0, Some(44))]), &Before::default());
        assert!(p.attempt.is_none());
        assert!(matches!(
            p.events.as_slice(),
            [EventKind::Error { version: None, .. }]
        ));
    }
}
