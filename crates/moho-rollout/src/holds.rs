//! Holds and pins on a group or a node until a date: a hold offers nothing, a
//! pin offers nothing newer than its version. A node's own hold or pin wins
//! over its group's; at the same level a hold wins over a pin.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::version::{VersionError, parse_version};

/// What a hold applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum HoldTarget {
    /// Every node of a group.
    Group(String),
    /// One node, by id.
    Node(String),
}

/// What a hold does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HoldKind {
    /// Offer nothing.
    Hold,
    /// Offer nothing newer than `version`.
    Pin {
        /// The highest version allowed.
        version: String,
    },
}

/// A hold or pin, active until `until` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Group or node.
    pub target: HoldTarget,
    /// Hold or pin.
    #[serde(flatten)]
    pub kind: HoldKind,
    /// Expiry.
    pub until: Timestamp,
}

impl Hold {
    /// Whether the hold still applies at `now`.
    pub fn active(&self, now: Timestamp) -> bool {
        now < self.until
    }

    /// Whether this hold lets a node be offered `release_version`.
    pub fn allows(&self, release_version: &str) -> Result<bool, VersionError> {
        match &self.kind {
            HoldKind::Hold => Ok(false),
            HoldKind::Pin { version } => {
                Ok(parse_version(release_version)? <= parse_version(version)?)
            }
        }
    }
}

/// The hold that governs a node at `now`, if any.
pub fn effective_hold<'a>(
    holds: &'a [Hold],
    node_id: &str,
    group: &str,
    now: Timestamp,
) -> Option<&'a Hold> {
    let pick = |want: &dyn Fn(&HoldTarget) -> bool| {
        let mut active = holds.iter().filter(|h| h.active(now) && want(&h.target));
        let all: Vec<&Hold> = active.by_ref().collect();
        all.iter()
            .find(|h| h.kind == HoldKind::Hold)
            .or_else(|| all.first())
            .copied()
    };
    pick(&|t| matches!(t, HoldTarget::Node(n) if n == node_id))
        .or_else(|| pick(&|t| matches!(t, HoldTarget::Group(g) if g == group)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn node_hold_beats_group_pin_and_holds_expire() {
        let holds = vec![
            Hold {
                target: HoldTarget::Group("db".into()),
                kind: HoldKind::Pin {
                    version: "1.2.0".into(),
                },
                until: ts("2026-02-01T00:00:00Z"),
            },
            Hold {
                target: HoldTarget::Node("n1".into()),
                kind: HoldKind::Hold,
                until: ts("2026-01-10T00:00:00Z"),
            },
        ];
        let now = ts("2026-01-05T00:00:00Z");
        assert_eq!(effective_hold(&holds, "n1", "db", now), Some(&holds[1]));
        assert_eq!(effective_hold(&holds, "n2", "db", now), Some(&holds[0]));
        assert_eq!(effective_hold(&holds, "n2", "web", now), None);
        let later = ts("2026-01-20T00:00:00Z");
        assert_eq!(effective_hold(&holds, "n1", "db", later), Some(&holds[0]));
        assert_eq!(
            effective_hold(&holds, "n1", "db", ts("2026-02-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn pin_allows_up_to_its_version() {
        let pin = Hold {
            target: HoldTarget::Group("db".into()),
            kind: HoldKind::Pin {
                version: "1.2.0".into(),
            },
            until: ts("2026-02-01T00:00:00Z"),
        };
        assert!(pin.allows("1.2.0").unwrap());
        assert!(pin.allows("1.1.9").unwrap());
        assert!(!pin.allows("1.10.0").unwrap());
        let json = serde_json::to_value(&pin).unwrap();
        assert_eq!(json["type"], "pin");
        assert_eq!(
            json["target"],
            serde_json::json!({"kind": "group", "name": "db"})
        );
    }
}
