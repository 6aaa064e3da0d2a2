//! The dashboard's forms that set up the fleet: create a rollout, a
//! channel, a group, a hold or pin; remove a hold; free a FleetLock slot;
//! create and revoke enrolment tokens (a created token's secret is shown
//! once, on the page that answers the confirmed post).
//! Each form is a GET to `/ui/changes/{kind}/confirm`, which checks the
//! fields and shows the change in words with a form carrying the session's
//! CSRF secret; that form posts to `/ui/changes/{kind}`, which checks
//! session, secret and role ([`super::require_admin_form`]), checks the
//! fields again and makes the change through the admin API's own functions
//! ([`crate::rollout_ops`], [`crate::fleet_ops`]): same rules, change and
//! audit entry in one transaction. Viewers get neither the forms nor the
//! confirmation pages, and their posts are refused with nothing written.
//! Every field is bounded ([`MAX_FIELD`] bytes) and a refusal names it.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::{SignedDuration, Timestamp};
use maud::{Markup, html};
use moho_protocol::admin::{
    CreateEnrollmentToken, CreateHold, CreateRollout, CreatedEnrollmentToken, EnrollmentTokenView,
    GroupSpec, HoldView,
};
use moho_rollout::policy::{AutoPauseSpec, HealthGateSpec, RolloutPolicy, RolloutPolicySpec};
use moho_rollout::window::{Window, WindowSpec, Windows};
use moho_rollout::{HoldKind, HoldTarget, Share};
use serde::Deserialize;

use super::error::DashError;
use super::format::{duration, utc};
use super::layout::{Nav, page};
use super::policy_form::PolicyFields;
use super::session::User;
use super::words::policy_in_words;
use super::{require_admin_form, require_user};
use crate::enrollment::{self, EnrollmentError};
use crate::error::ApiError;
use crate::state::AppState;
use crate::{fleet_ops, rollout_ops};

/// Most bytes of any one field of these forms.
pub const MAX_FIELD: usize = 256;

/// Most bytes of a whole posted form (the router's body limit for these
/// routes).
pub const MAX_FORM: usize = 16 * 1024;

/// What a form changes (the `{kind}` of its paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Create a rollout.
    Rollout,
    /// Create a channel.
    Channel,
    /// Create a group.
    Group,
    /// Create a hold or pin.
    Hold,
    /// Remove a hold or pin.
    Unhold,
    /// Free a FleetLock slot.
    FreeSlot,
    /// Create an enrolment token.
    Enroll,
    /// Revoke an enrolment token.
    RevokeEnroll,
}

impl ChangeKind {
    const ALL: [(ChangeKind, &'static str); 8] = [
        (ChangeKind::Rollout, "rollout"),
        (ChangeKind::Channel, "channel"),
        (ChangeKind::Group, "group"),
        (ChangeKind::Hold, "hold"),
        (ChangeKind::Unhold, "unhold"),
        (ChangeKind::FreeSlot, "free-slot"),
        (ChangeKind::Enroll, "enrollment-token"),
        (ChangeKind::RevokeEnroll, "revoke-enrollment-token"),
    ];

    /// The path segment.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("rollout", |(_, s)| s)
    }

    fn parse(s: &str) -> Result<Self, DashError> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(k, _)| *k)
            .ok_or_else(|| DashError::new(StatusCode::NOT_FOUND, format!("unknown form {s:?}")))
    }

    /// Where a form of this kind points: its confirmation page.
    pub fn confirm_path(self) -> String {
        format!("/ui/changes/{}/confirm", self.as_str())
    }
}

/// Every field any of these forms has (all text, as typed).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChangeFields {
    /// Rollout: `board/version`.
    #[serde(default)]
    pub release: String,
    /// Rollout: channel.
    #[serde(default)]
    pub channel: String,
    /// Rollout: group; free slot: the slot's group.
    #[serde(default)]
    pub group: String,
    /// New channel or group: its name.
    #[serde(default)]
    pub name: String,
    /// New group: FleetLock slots.
    #[serde(default)]
    pub fleetlock_slots: String,
    /// New group: FleetLock lease, e.g. `1h`.
    #[serde(default)]
    pub fleetlock_lease: String,
    /// Hold: `group` or `node`.
    #[serde(default)]
    pub target_kind: String,
    /// Hold: the group's name or the node's id.
    #[serde(default)]
    pub target: String,
    /// Hold: `hold` or `pin`.
    #[serde(default)]
    pub hold_type: String,
    /// Pin: the highest version allowed.
    #[serde(default)]
    pub version: String,
    /// Hold: for how long, e.g. `7d`.
    #[serde(default)]
    pub duration: String,
    /// Remove a hold: its id.
    #[serde(default)]
    pub hold: String,
    /// Free a slot: the node holding it.
    #[serde(default)]
    pub node: String,
    /// Enrolment token: how long it works (empty: no expiry).
    #[serde(default)]
    pub expires_in: String,
    /// Enrolment token: how many nodes may register with it (empty: any).
    #[serde(default)]
    pub max_uses: String,
    /// Revoke an enrolment token: its id.
    #[serde(default)]
    pub token: String,
    /// Rollout: pause by itself when more than this percentage of
    /// finished attempts failed (empty: never).
    #[serde(default)]
    pub auto_pause_percent: String,
    /// Rollout: finished attempts needed before the failure rate counts.
    #[serde(default)]
    pub auto_pause_min_sample: String,
    /// Rollout: calendar windows, `;`-separated, each `DAYS START LENGTH
    /// TIME_ZONE` (e.g. `mon-fri 02:00 3h Europe/Berlin`); empty: always.
    #[serde(default)]
    pub windows: String,
    /// Rollout: the share of a step's nodes that must report healthy before
    /// the next step (empty: no gate).
    #[serde(default)]
    pub health_gate_percent: String,
    /// Rollout: how long an attempt may take (empty: the default, 2h).
    #[serde(default)]
    pub update_timeout: String,
    /// Rollout: ramp and caps.
    #[serde(flatten)]
    pub policy: PolicyFields,
    /// The session's CSRF secret (posts only).
    #[serde(default)]
    pub csrf: String,
}

impl ChangeFields {
    fn pairs(&self) -> [(&'static str, &str); 25] {
        [
            ("release", &self.release),
            ("channel", &self.channel),
            ("group", &self.group),
            ("name", &self.name),
            ("fleetlock_slots", &self.fleetlock_slots),
            ("fleetlock_lease", &self.fleetlock_lease),
            ("target_kind", &self.target_kind),
            ("target", &self.target),
            ("hold_type", &self.hold_type),
            ("version", &self.version),
            ("duration", &self.duration),
            ("hold", &self.hold),
            ("node", &self.node),
            ("expires_in", &self.expires_in),
            ("max_uses", &self.max_uses),
            ("token", &self.token),
            ("auto_pause_percent", &self.auto_pause_percent),
            ("auto_pause_min_sample", &self.auto_pause_min_sample),
            ("windows", &self.windows),
            ("health_gate_percent", &self.health_gate_percent),
            ("update_timeout", &self.update_timeout),
            ("ramp", &self.policy.ramp),
            ("max_in_flight", &self.policy.max_in_flight),
            ("period_count", &self.policy.period_count),
            ("period", &self.policy.period),
        ]
    }

    /// Refuses any field over [`MAX_FIELD`] bytes, naming it.
    pub fn check_bounds(&self) -> Result<(), DashError> {
        for (name, value) in self.pairs() {
            if value.len() > MAX_FIELD {
                return Err(DashError::field(
                    name,
                    format!(
                        "{} bytes is too long: at most {MAX_FIELD} bytes",
                        value.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The non-empty fields as hidden inputs (the confirmation's form).
    fn hidden(&self) -> Markup {
        html! {
            @for (name, value) in self.pairs() {
                @if !value.is_empty() { input type="hidden" name=(name) value=(value); }
            }
        }
    }
}

/// A change the fields describe, checked.
#[derive(Debug, Clone)]
pub enum Proposal {
    /// A new rollout.
    Rollout(CreateRollout),
    /// A new channel.
    Channel(String),
    /// A new group.
    Group(GroupSpec),
    /// A new hold or pin.
    Hold(CreateHold),
    /// Removing this hold.
    Unhold(HoldView),
    /// Freeing the slot `node` holds in `group` (its lease's end).
    FreeSlot {
        /// Group.
        group: String,
        /// Node.
        node: String,
        /// When the lease would end by itself.
        expires_at: Timestamp,
    },
    /// A new enrolment token.
    Enroll(CreateEnrollmentToken),
    /// Revoking this enrolment token.
    RevokeEnroll(EnrollmentTokenView),
}

/// Where a confirmed change leads.
#[derive(Debug)]
enum Next {
    /// A page to redirect to.
    Go(String),
    /// The enrolment token just created: its secret, shown this once.
    Created(Box<CreatedEnrollmentToken>),
}

/// An enrolment token refusal, naming the form's field where there is one.
fn enroll_refusal(e: EnrollmentError) -> DashError {
    let field = match &e {
        EnrollmentError::BadName(_) | EnrollmentError::NameTaken(_) => Some("name"),
        EnrollmentError::UnknownGroup(_) => Some("group"),
        EnrollmentError::UnknownChannel(_) => Some("channel"),
        EnrollmentError::ExpiryPast(_) => Some("expires_in"),
        EnrollmentError::ZeroUses => Some("max_uses"),
        _ => None,
    };
    let mut d: DashError = ApiError::from(e).into();
    if let (DashError::Refused { field: f, .. }, Some(name)) = (&mut d, field) {
        *f = Some(name);
    }
    d
}

fn required<'a>(field: &'static str, value: &'a str) -> Result<&'a str, DashError> {
    let v = value.trim();
    if v.is_empty() {
        Err(DashError::field(field, "is required"))
    } else {
        Ok(v)
    }
}

/// A span like `90m`, `12h`, `7d` (days of 24 h), at least a second.
pub fn parse_span(field: &'static str, value: &str) -> Result<SignedDuration, DashError> {
    let v = required(field, value)?;
    let d = v
        .parse::<SignedDuration>()
        .ok()
        .or_else(|| {
            v.parse::<jiff::Span>().ok().and_then(|s| {
                s.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                    .ok()
            })
        })
        .ok_or_else(|| {
            DashError::field(field, format!("{v:?} is not a duration like 12h or 7d"))
        })?;
    if d < SignedDuration::from_secs(1) {
        return Err(DashError::field(
            field,
            format!("{v:?} is shorter than a second"),
        ));
    }
    Ok(d)
}

fn whole(field: &'static str, value: &str) -> Result<u32, DashError> {
    let v = required(field, value)?;
    v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
        DashError::field(field, format!("{v:?} is not a whole number of at least 1"))
    })
}

/// Reads a form's fields into a checked change. Checks that need the
/// database (the release is signed for the channel, the hold exists, the
/// slot is held) are made here for the confirmation and again by the
/// operation itself when it is posted.
pub async fn propose(
    app: &AppState,
    kind: ChangeKind,
    f: &ChangeFields,
) -> Result<Proposal, DashError> {
    f.check_bounds()?;
    let now = app.clock.now();
    Ok(match kind {
        ChangeKind::Rollout => {
            let release = required("release", &f.release)?;
            let (board, version) = release.split_once('/').ok_or_else(|| {
                DashError::field("release", format!("{release:?} is not board/version"))
            })?;
            let policy = f
                .policy
                .apply(&RolloutPolicy::immediate())
                .map_err(|e| DashError::field("policy", e))?;
            let policy = with_auto_pause(policy, f)?;
            let policy = with_schedule(policy, f)?;
            let req = CreateRollout {
                version: version.to_owned(),
                board: board.to_owned(),
                channel: required("channel", &f.channel)?.to_owned(),
                group: required("group", &f.group)?.to_owned(),
                policy,
            };
            rollout_ops::check_new(app, &req)
                .await
                .map_err(|e| blame_release(e.into()))?;
            Proposal::Rollout(req)
        }
        ChangeKind::Channel => {
            let name = required("name", &f.name)?;
            moho_protocol::names::check_channel(name)
                .map_err(|e| DashError::field("name", e.to_string()))?;
            Proposal::Channel(name.to_owned())
        }
        ChangeKind::Group => {
            let name = required("name", &f.name)?;
            moho_protocol::names::check_group(name)
                .map_err(|e| DashError::field("name", e.to_string()))?;
            let lease = parse_span("fleetlock_lease", &f.fleetlock_lease)?;
            Proposal::Group(GroupSpec {
                name: Some(name.to_owned()),
                fleetlock_slots: Some(whole("fleetlock_slots", &f.fleetlock_slots)?),
                fleetlock_lease_secs: Some(u64::try_from(lease.as_secs()).unwrap_or(u64::MAX)),
            })
        }
        ChangeKind::Hold => {
            let target = required("target", &f.target)?.to_owned();
            let target = match f.target_kind.as_str() {
                "group" => HoldTarget::Group(target),
                "node" => HoldTarget::Node(target),
                other => {
                    return Err(DashError::field(
                        "target_kind",
                        format!("{other:?} is neither group nor node"),
                    ));
                }
            };
            let kind = match f.hold_type.as_str() {
                "hold" => HoldKind::Hold,
                "pin" => HoldKind::Pin {
                    version: required("version", &f.version)?.to_owned(),
                },
                other => {
                    return Err(DashError::field(
                        "hold_type",
                        format!("{other:?} is neither hold nor pin"),
                    ));
                }
            };
            let until = now
                .checked_add(parse_span("duration", &f.duration)?)
                .map_err(|_| DashError::field("duration", "is too long"))?;
            let req = CreateHold {
                target,
                kind,
                until,
            };
            fleet_ops::check_hold(&req, now)?;
            Proposal::Hold(req)
        }
        ChangeKind::Unhold => {
            let id = required("hold", &f.hold)?;
            let id: i64 = id
                .parse()
                .map_err(|_| DashError::field("hold", format!("{id:?} is not a hold id")))?;
            let hold = app
                .db
                .holds(now)
                .await?
                .into_iter()
                .find(|h| h.id == id)
                .ok_or_else(|| {
                    DashError::new(StatusCode::NOT_FOUND, format!("unknown hold {id}"))
                })?;
            Proposal::Unhold(hold)
        }
        ChangeKind::FreeSlot => {
            let group = required("group", &f.group)?.to_owned();
            let node = required("node", &f.node)?.to_owned();
            let holder = app
                .db
                .fleetlock_holders(&group, now)
                .await?
                .into_iter()
                .find(|h| h.node_id == node)
                .ok_or_else(|| {
                    DashError::new(
                        StatusCode::NOT_FOUND,
                        format!("node {node:?} holds no slot in group {group:?}"),
                    )
                })?;
            Proposal::FreeSlot {
                group,
                node,
                expires_at: holder.expires_at,
            }
        }
        ChangeKind::Enroll => {
            let name = required("name", &f.name)?;
            let group = required("group", &f.group)?;
            let channel = Some(f.channel.trim())
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
            let expires_at = if f.expires_in.trim().is_empty() {
                None
            } else {
                Some(
                    now.checked_add(parse_span("expires_in", &f.expires_in)?)
                        .map_err(|_| DashError::field("expires_in", "is too long"))?,
                )
            };
            let max_uses = if f.max_uses.trim().is_empty() {
                None
            } else {
                Some(u64::from(whole("max_uses", &f.max_uses)?))
            };
            let req = CreateEnrollmentToken {
                name: name.to_owned(),
                group: group.to_owned(),
                channel,
                expires_at,
                max_uses,
            };
            enrollment::check_new(&app.db, &req, now)
                .await
                .map_err(enroll_refusal)?;
            Proposal::Enroll(req)
        }
        ChangeKind::RevokeEnroll => {
            let id = required("token", &f.token)?;
            let token = app
                .db
                .enrollment_tokens(true, now)
                .await?
                .into_iter()
                .find(|t| t.id == id)
                .ok_or_else(|| enroll_refusal(EnrollmentError::Unknown(id.to_owned())))?;
            if let Some(at) = token.revoked_at {
                return Err(enroll_refusal(EnrollmentError::AlreadyRevoked {
                    id: token.id,
                    name: token.name,
                    at,
                }));
            }
            Proposal::RevokeEnroll(token)
        }
    })
}

/// `policy` with the form's automatic pause (both fields empty: none).
fn with_auto_pause(policy: RolloutPolicy, f: &ChangeFields) -> Result<RolloutPolicy, DashError> {
    let percent = f.auto_pause_percent.trim();
    if percent.is_empty() && f.auto_pause_min_sample.trim().is_empty() {
        return Ok(policy);
    }
    let share = required("auto_pause_percent", percent)?
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .and_then(|p| Share::from_percent(p).ok())
        .ok_or_else(|| {
            DashError::field(
                "auto_pause_percent",
                format!("{percent:?} is not a percentage from 0 to 100"),
            )
        })?;
    let min_sample = whole("auto_pause_min_sample", &f.auto_pause_min_sample)?;
    let mut spec = RolloutPolicySpec::from(&policy);
    spec.auto_pause = Some(AutoPauseSpec {
        max_failure_percent: share,
        min_sample,
    });
    RolloutPolicy::try_from(spec).map_err(|e| DashError::field("auto_pause_percent", e.to_string()))
}

/// `policy` with the form's calendar windows, health gate and attempt
/// timeout (each empty: left as it is).
fn with_schedule(policy: RolloutPolicy, f: &ChangeFields) -> Result<RolloutPolicy, DashError> {
    let mut spec = RolloutPolicySpec::from(&policy);
    let windows: Vec<Window> = f
        .windows
        .split(';')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| {
            WindowSpec::parse_line(w)
                .and_then(|spec| Window::from_spec(&spec))
                .map_err(|e| DashError::field("windows", format!("{w:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    if !windows.is_empty() {
        spec.windows = Windows::new(windows);
    }
    let gate = f.health_gate_percent.trim();
    if !gate.is_empty() {
        let share = gate
            .trim_end_matches('%')
            .parse::<f64>()
            .ok()
            .and_then(|p| Share::from_percent(p).ok())
            .ok_or_else(|| {
                DashError::field(
                    "health_gate_percent",
                    format!("{gate:?} is not a percentage from 0 to 100"),
                )
            })?;
        spec.health_gate = Some(HealthGateSpec {
            min_healthy_percent: share,
        });
    }
    let timeout = f.update_timeout.trim();
    if !timeout.is_empty() {
        spec.update_timeout = Some(timeout.to_owned());
    }
    RolloutPolicy::try_from(spec).map_err(|e| {
        let field = if timeout.is_empty() {
            "policy"
        } else {
            "update_timeout"
        };
        DashError::field(field, e.to_string())
    })
}

/// The rollout API names `version` for an unknown release; the form's
/// field is `release`.
fn blame_release(e: DashError) -> DashError {
    match e {
        DashError::Refused {
            status,
            message,
            field: Some("version" | "board"),
        } => DashError::Refused {
            status,
            message,
            field: Some("release"),
        },
        other => other,
    }
}

fn target_words(t: &HoldTarget) -> String {
    match t {
        HoldTarget::Group(g) => format!("every node of group {g}"),
        HoldTarget::Node(n) => format!("node {n}"),
    }
}

/// What a hold does, in words.
pub fn hold_words(kind: &HoldKind) -> String {
    match kind {
        HoldKind::Hold => "offered no update".to_owned(),
        HoldKind::Pin { version } => format!("offered nothing newer than {version}"),
    }
}

impl Proposal {
    /// The confirmation page's title, what will happen, and whether it is
    /// a change to think twice about.
    fn words(&self, now: Timestamp) -> (String, Vec<String>, bool) {
        match self {
            Proposal::Rollout(r) => {
                let mut lines = vec![format!(
                    "Nodes of channel {} in group {} on board {} are offered {} as the policy allows:",
                    r.channel, r.group, r.board, r.version
                )];
                lines.extend(policy_in_words(&r.policy));
                (
                    format!(
                        "Roll out {} to {}/{}?",
                        r.version, r.channel, r.group
                    ),
                    lines,
                    false,
                )
            }
            Proposal::Channel(name) => (
                format!("Create channel {name}?"),
                vec![format!(
                    "Nodes configured for channel {name} can check in; a release is offered on it once it is signed for it and rolled out."
                )],
                false,
            ),
            Proposal::Group(g) => (
                format!("Create group {}?", g.name.as_deref().unwrap_or_default()),
                vec![format!(
                    "At most {} node(s) of the group reboot at once (FleetLock), each lease lasting {} unless released.",
                    g.fleetlock_slots.unwrap_or(1),
                    duration(SignedDuration::from_secs(
                        i64::try_from(g.fleetlock_lease_secs.unwrap_or(3600)).unwrap_or(i64::MAX)
                    ))
                )],
                false,
            ),
            Proposal::Hold(h) => (
                match h.kind {
                    HoldKind::Hold => format!("Hold {}?", target_words(&h.target)),
                    HoldKind::Pin { .. } => format!("Pin {}?", target_words(&h.target)),
                },
                vec![
                    format!(
                        "Until {} ({} from now), {} is {}.",
                        utc(h.until),
                        duration(h.until.duration_since(now)),
                        target_words(&h.target),
                        hold_words(&h.kind)
                    ),
                    "A node that has staged a release this hold stops is told to cancel it before it reboots.".to_owned(),
                ],
                false,
            ),
            Proposal::Unhold(h) => (
                format!("Remove hold #{}?", h.id),
                vec![format!(
                    "{} is no longer {}: rollouts reach it again as their policies allow.",
                    capital(&target_words(&h.target)),
                    hold_words(&h.kind)
                )],
                true,
            ),
            Proposal::FreeSlot {
                group,
                node,
                expires_at,
            } => (
                format!("Free the reboot slot {node} holds in group {group}?"),
                vec![
                    format!(
                        "Its lease would end by itself {}. Another node of group {group} may take the slot and reboot at once, even if {node} is still rebooting.",
                        utc(*expires_at)
                    ),
                ],
                true,
            ),
            Proposal::Enroll(t) => (
                format!("Create enrolment token {} for group {}?", t.name, t.group),
                vec![
                    format!(
                        "A new node whose first check-in carries it registers in group {}{}.",
                        t.group,
                        t.channel
                            .as_ref()
                            .map_or_else(|| " on any channel".to_owned(), |c| format!(" if it names channel {c}"))
                    ),
                    match t.expires_at {
                        Some(at) => format!(
                            "It works until {} ({} from now){}.",
                            utc(at),
                            duration(at.duration_since(now)),
                            uses_words(t.max_uses)
                        ),
                        None => format!("It never expires{}.", uses_words(t.max_uses)),
                    },
                    "Its secret is shown once, on the next page: put it in the provision document of the nodes to enrol.".to_owned(),
                ],
                false,
            ),
            Proposal::RevokeEnroll(t) => (
                format!("Revoke enrolment token {}?", t.name),
                vec![format!(
                    "From now on no new node registers with it in group {}. The {} node(s) that registered with it stay.",
                    t.group, t.uses
                )],
                true,
            ),
        }
    }

    /// Makes the change as `actor`; where to go afterwards.
    async fn carry_out(&self, app: &AppState, actor: &str) -> Result<Next, DashError> {
        let now = app.clock.now();
        Ok(Next::Go(match self {
            Proposal::Rollout(r) => {
                let id = rollout_ops::create(app, actor, r)
                    .await
                    .map_err(|e| blame_release(e.into()))?;
                format!("/ui/rollouts/{id}?done=create")
            }
            Proposal::Channel(name) => {
                fleet_ops::create_channel(app, actor, name).await?;
                "/ui/groups?done=channel.create".to_owned()
            }
            Proposal::Group(g) => {
                fleet_ops::create_group(app, actor, g).await?;
                "/ui/groups?done=group.create".to_owned()
            }
            Proposal::Hold(h) => {
                fleet_ops::create_hold(app, actor, h).await?;
                "/ui/groups?done=hold.create".to_owned()
            }
            Proposal::Unhold(h) => {
                fleet_ops::delete_hold(app, actor, h.id).await?;
                "/ui/groups?done=hold.delete".to_owned()
            }
            Proposal::FreeSlot { group, node, .. } => {
                fleet_ops::release_slot(app, actor, group, node).await?;
                "/ui/fleetlock?done=fleetlock.release".to_owned()
            }
            Proposal::Enroll(t) => {
                let created = enrollment::create(&app.db, t, actor, now)
                    .await
                    .map_err(enroll_refusal)?;
                return Ok(Next::Created(Box::new(created)));
            }
            Proposal::RevokeEnroll(t) => {
                enrollment::revoke(&app.db, &t.id, actor, now)
                    .await
                    .map_err(enroll_refusal)?;
                "/ui/enrollment?done=enrollment_token.revoke".to_owned()
            }
        }))
    }
}

fn uses_words(max_uses: Option<u64>) -> String {
    match max_uses {
        Some(n) => format!(", for at most {n} node(s)"),
        None => ", for any number of nodes".to_owned(),
    }
}

/// The page that shows a created enrolment token's secret, this once.
fn created_page(user: &User, c: &CreatedEnrollmentToken) -> Markup {
    let t = &c.token;
    let body = html! {
        p.lead { "Copy the secret now: it is shown only this once (the server keeps only its hash)." }
        p { code.secret data-secret=(t.id) { (c.secret) } }
        p { "In the provision document of each node to enrol:" }
        pre { "[server]\nenrollment_token = \"" (c.secret) "\"\n[node]\ngroup = \"" (t.group) "\"" }
        p { "Token id " code { (t.id) } ", recorded in the audit log under your name, " strong { (user.name) } "." }
        div.actions { a.button.primary href="/ui/enrollment?done=enrollment_token.create" { "Back to enrolment tokens" } }
    };
    page(
        user,
        Nav::Enrollment,
        &format!("Enrolment token {} created", t.name),
        body,
    )
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn nav_of(kind: ChangeKind) -> Nav {
    match kind {
        ChangeKind::Rollout => Nav::Releases,
        ChangeKind::FreeSlot => Nav::FleetLock,
        ChangeKind::Enroll | ChangeKind::RevokeEnroll => Nav::Enrollment,
        _ => Nav::Groups,
    }
}

fn back_of(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Rollout => "/ui/releases",
        ChangeKind::FreeSlot => "/ui/fleetlock",
        ChangeKind::Enroll | ChangeKind::RevokeEnroll => "/ui/enrollment",
        _ => "/ui/groups",
    }
}

fn confirmation(
    user: &User,
    kind: ChangeKind,
    f: &ChangeFields,
    p: &Proposal,
    now: Timestamp,
) -> Markup {
    let (title, lines, danger) = p.words(now);
    let body = html! {
        @for l in &lines { p.lead { (l) } }
        p { "The change is recorded in the audit log under your name, " strong { (user.name) } "." }
        form.confirm method="post" action=(format!("/ui/changes/{}", kind.as_str())) {
            (f.hidden())
            input type="hidden" name="csrf" value=(user.csrf);
            div.actions {
                button.(if danger { "danger" } else { "primary" })
                    type="submit" data-confirm=(kind.as_str()) { "Yes, do it" }
                a.button href=(back_of(kind)) { "Cancel" }
            }
        }
    };
    page(user, nav_of(kind), &title, body)
}

/// `GET /ui/changes/{kind}/confirm?...`: the change in words, to confirm.
pub async fn confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(f): Query<ChangeFields>,
) -> Result<Response, DashError> {
    let user = require_user(&app, &headers, false).await?;
    if !user.is_admin() {
        return Err(DashError::viewer());
    }
    let kind = ChangeKind::parse(&kind)?;
    let p = propose(&app, kind, &f).await?;
    Ok(confirmation(&user, kind, &f, &p, app.clock.now()).into_response())
}

/// `POST /ui/changes/{kind}`: the confirmed change.
pub async fn carry_out(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    form: Result<Form<ChangeFields>, FormRejection>,
) -> Result<Response, DashError> {
    // A form over MAX_FORM answers 413, one that does not parse 400/415.
    let Form(f) = form.map_err(|e| DashError::new(e.status(), e.body_text()))?;
    let user = require_admin_form(&app, &headers, &f.csrf).await?;
    let kind = ChangeKind::parse(&kind)?;
    let p = propose(&app, kind, &f).await?;
    Ok(match p.carry_out(&app, &user.name).await? {
        Next::Go(to) => Redirect::to(&to).into_response(),
        Next::Created(created) => created_page(&user, &created).into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_fields_and_kinds() {
        assert_eq!(
            parse_span("duration", "7d").ok(),
            Some(SignedDuration::from_hours(168))
        );
        assert_eq!(
            parse_span("duration", "90m").ok(),
            Some(SignedDuration::from_mins(90))
        );
        let named = |e: DashError| match e {
            DashError::Refused { field, message, .. } => (field, message),
            DashError::LoggedOut { .. } => (None, String::new()),
        };
        let (field, message) = named(parse_span("duration", "soon").unwrap_err());
        assert_eq!(field, Some("duration"));
        assert!(message.contains("\"soon\""), "{message}");
        assert!(parse_span("duration", "0s").is_err());
        assert!(parse_span("duration", "").is_err());
        assert_eq!(whole("fleetlock_slots", "3").ok(), Some(3));
        assert!(whole("fleetlock_slots", "0").is_err());
        let long = ChangeFields {
            target: "x".repeat(MAX_FIELD + 1),
            ..ChangeFields::default()
        };
        assert_eq!(named(long.check_bounds().unwrap_err()).0, Some("target"));
        for (k, s) in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(s).ok(), Some(k));
            assert_eq!(k.as_str(), s);
        }
        assert!(ChangeKind::parse("node-delete").is_err());
    }
}
