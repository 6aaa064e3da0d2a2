//! What admin/viewer tokens and enrolment tokens share: a named secret
//! (only its hash is stored; its public id is the hash's first 16 hex
//! digits) that may expire, may run out of uses, and is revoked for good.
//! [`NamedSecret`] is implemented by both views, so the server's rules,
//! its host commands, `moho-admin` and the dashboard compute a token's
//! [`Standing`] and find the token a revocation names ([`pick_to_revoke`])
//! the same way. Pure: `now` is an argument.

use jiff::Timestamp;

use crate::admin::{EnrollmentTokenView, TokenView};

/// Where a token stands at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Accepted, until `expires_at` if it has an expiry.
    Live {
        /// When it stops working (absent: never).
        expires_at: Option<Timestamp>,
    },
    /// Revoked at this time.
    Revoked(Timestamp),
    /// Expired at this time.
    Expired(Timestamp),
    /// Every use it allowed was taken.
    UsedUp,
}

impl Standing {
    /// Whether the token is accepted.
    pub fn is_live(self) -> bool {
        matches!(self, Standing::Live { .. })
    }

    /// One word: `live`, `revoked`, `expired` or `used up`.
    pub fn word(self) -> &'static str {
        match self {
            Standing::Live { .. } => "live",
            Standing::Revoked(_) => "revoked",
            Standing::Expired(_) => "expired",
            Standing::UsedUp => "used up",
        }
    }

    /// In words with its time, formatted by `at`: `live, expires …`,
    /// `live, no expiry`, `revoked …`, `expired …`, `used up`.
    pub fn describe(self, at: impl Fn(Timestamp) -> String) -> String {
        match self {
            Standing::Live {
                expires_at: Some(t),
            } => format!("live, expires {}", at(t)),
            Standing::Live { expires_at: None } => "live, no expiry".to_owned(),
            Standing::Revoked(t) => format!("revoked {}", at(t)),
            Standing::Expired(t) => format!("expired {}", at(t)),
            Standing::UsedUp => "used up".to_owned(),
        }
    }
}

/// A named secret with an optional expiry that can be revoked.
pub trait NamedSecret {
    /// Public id.
    fn id(&self) -> &str;
    /// Name (unique among live ones of its kind).
    fn name(&self) -> &str;
    /// When it stops working (absent: never).
    fn expires_at(&self) -> Option<Timestamp>;
    /// When it was revoked (absent: not revoked).
    fn revoked_at(&self) -> Option<Timestamp>;
    /// Whether it has no use left (only enrolment tokens have a limit).
    fn used_up(&self) -> bool {
        false
    }

    /// Where it stands at `now`: revoked before expired before used up.
    fn standing(&self, now: Timestamp) -> Standing {
        match (self.revoked_at(), self.expires_at()) {
            (Some(at), _) => Standing::Revoked(at),
            (None, Some(at)) if at <= now => Standing::Expired(at),
            _ if self.used_up() => Standing::UsedUp,
            (None, expires_at) => Standing::Live { expires_at },
        }
    }
}

impl NamedSecret for TokenView {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
    fn revoked_at(&self) -> Option<Timestamp> {
        self.revoked_at
    }
}

impl NamedSecret for EnrollmentTokenView {
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
    fn revoked_at(&self) -> Option<Timestamp> {
        self.revoked_at
    }
    fn used_up(&self) -> bool {
        self.max_uses.is_some_and(|m| self.uses >= m)
    }
}

/// Why a revocation names no token it can revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickError {
    /// No token has this id, nor a token that is not revoked this name.
    Unknown,
    /// Several tokens that are not revoked share the name.
    Ambiguous,
    /// The token with this id was revoked before.
    AlreadyRevoked {
        /// Its id.
        id: String,
        /// Its name.
        name: String,
        /// When it was revoked.
        at: Timestamp,
    },
}

/// The token `which` names among `all`: the one with that id (revoked or
/// not), else the only one not revoked with that name.
pub fn pick_to_revoke<'a, T: NamedSecret>(all: &'a [T], which: &str) -> Result<&'a T, PickError> {
    let found = match all.iter().find(|t| t.id() == which) {
        Some(t) => t,
        None => {
            let mut named = all
                .iter()
                .filter(|t| t.name() == which && t.revoked_at().is_none());
            match (named.next(), named.next()) {
                (Some(t), None) => t,
                (Some(_), Some(_)) => return Err(PickError::Ambiguous),
                (None, _) => return Err(PickError::Unknown),
            }
        }
    };
    match found.revoked_at() {
        Some(at) => Err(PickError::AlreadyRevoked {
            id: found.id().to_owned(),
            name: found.name().to_owned(),
            at,
        }),
        None => Ok(found),
    }
}

/// Whether a live token among `all` (at `now`) is already named `name`.
pub fn live_name_taken<T: NamedSecret>(all: &[T], name: &str, now: Timestamp) -> bool {
    all.iter()
        .any(|t| t.name() == name && t.standing(now).is_live())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(h: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + h * 3600).unwrap()
    }

    fn enroll(id: &str, name: &str) -> EnrollmentTokenView {
        EnrollmentTokenView {
            id: id.into(),
            name: name.into(),
            group: "db".into(),
            channel: None,
            created_at: at(0),
            expires_at: Some(at(10)),
            max_uses: Some(2),
            uses: 0,
            revoked_at: None,
            last_used_at: None,
        }
    }

    #[test]
    fn revoked_before_expired_before_used_up() {
        let t = enroll("a", "rack");
        assert_eq!(
            t.standing(at(1)),
            Standing::Live {
                expires_at: Some(at(10))
            }
        );
        let used = EnrollmentTokenView {
            uses: 2,
            ..t.clone()
        };
        assert_eq!(used.standing(at(1)), Standing::UsedUp);
        assert_eq!(used.standing(at(10)), Standing::Expired(at(10)));
        let revoked = EnrollmentTokenView {
            revoked_at: Some(at(2)),
            ..used
        };
        assert_eq!(revoked.standing(at(11)), Standing::Revoked(at(2)));
        assert_eq!(revoked.standing(at(11)).word(), "revoked");
        assert_eq!(
            t.standing(at(1)).describe(|t| t.to_string()),
            format!("live, expires {}", at(10))
        );
        assert!(!t.standing(at(1)).describe(|_| String::new()).is_empty());
    }

    #[test]
    fn a_revocation_names_a_token_by_id_or_by_its_only_unrevoked_name() {
        let a = enroll("a", "rack");
        let b = EnrollmentTokenView {
            revoked_at: Some(at(1)),
            ..enroll("b", "rack")
        };
        let all = vec![a.clone(), b.clone()];
        assert_eq!(pick_to_revoke(&all, "rack").unwrap().id, "a");
        assert_eq!(pick_to_revoke(&all, "a").unwrap().id, "a");
        assert_eq!(
            pick_to_revoke(&all, "b"),
            Err(PickError::AlreadyRevoked {
                id: "b".into(),
                name: "rack".into(),
                at: at(1)
            })
        );
        assert_eq!(pick_to_revoke(&all, "nope"), Err(PickError::Unknown));
        let twins = vec![a, enroll("c", "rack")];
        assert_eq!(pick_to_revoke(&twins, "rack"), Err(PickError::Ambiguous));
        assert!(live_name_taken(&twins, "rack", at(1)));
        assert!(!live_name_taken(&twins, "rack", at(10)), "both expired");
        assert!(!live_name_taken(&[b], "rack", at(1)), "revoked");
    }
}
