//! A node's place in line for a release, and the ramp cutoff that turns "p %
//! of the fleet" into an exact set of nodes.
//!
//! The place is a hash of node id and release name (DESIGN §6): canaries
//! change from release to release yet are reproducible. Because 10,000 hash
//! values are not spread perfectly evenly, a plain "hash < p·2⁶⁴" test would
//! offer a share that wanders a point or more away from p. [`LineIndex`]
//! instead sorts the places of the nodes in scope and admits exactly the
//! first ⌈p·N⌉ of them; a node that joins after the index was built is
//! compared against the same cutoff place.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A fraction of a population in basis points (0 ..= 10,000 = 0 % ..= 100 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Share(u32);

/// A percentage outside 0 ..= 100 or not a number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("percentage {0} is out of range: it must be between 0 and 100")]
pub struct ShareError(pub f64);

impl Share {
    /// 0 %.
    pub const ZERO: Share = Share(0);
    /// 100 %.
    pub const ALL: Share = Share(10_000);

    /// From a percentage (0–100, two decimals kept).
    pub fn from_percent(p: f64) -> Result<Share, ShareError> {
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return Err(ShareError(p));
        }
        let bp = (p * 100.0).round();
        // In range by the check above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Share(bp as u32))
    }

    /// From basis points, clamped to 10,000.
    pub fn from_basis_points(bp: u32) -> Share {
        Share(bp.min(10_000))
    }

    /// Basis points.
    pub fn basis_points(self) -> u32 {
        self.0
    }

    /// As a percentage.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    /// ⌈share · n⌉: how many of `n` this share covers.
    pub fn of(self, n: u64) -> u64 {
        (u128::from(n) * u128::from(self.0))
            .div_ceil(10_000)
            .try_into()
            .unwrap_or(u64::MAX)
    }

    /// Whether `part` is strictly more than this share of `whole`.
    pub fn exceeded_by(self, part: u64, whole: u64) -> bool {
        u128::from(part) * 10_000 > u128::from(whole) * u128::from(self.0)
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.percent())
    }
}

impl Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.percent())
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = f64::deserialize(d)?;
        Share::from_percent(p).map_err(serde::de::Error::custom)
    }
}

/// The node's place in line for `release`: the first 8 bytes (big-endian) of
/// SHA-256 over `"moho-place-v1\0" node_id "\0" release`. Stable across
/// versions and platforms; documented in docs/protocol.md.
pub fn place_in_line(node_id: &str, release: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(b"moho-place-v1\0");
    h.update(node_id.as_bytes());
    h.update(b"\0");
    h.update(release.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// Which places a ramp share admits: every place ≤ `max_place`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoff {
    max_place: Option<u64>,
}

impl Cutoff {
    /// Admits nobody.
    pub const NOBODY: Cutoff = Cutoff { max_place: None };
    /// Admits everybody.
    pub const EVERYONE: Cutoff = Cutoff {
        max_place: Some(u64::MAX),
    };

    /// Without an index: admit places below `share · 2⁶⁴` (statistically
    /// about the right share; used before any node is known).
    pub fn by_quantile(share: Share) -> Cutoff {
        if share == Share::ZERO {
            return Cutoff::NOBODY;
        }
        if share == Share::ALL {
            return Cutoff::EVERYONE;
        }
        let max = (u128::from(u64::MAX) * u128::from(share.0)) / 10_000;
        Cutoff {
            max_place: Some(u64::try_from(max).unwrap_or(u64::MAX)),
        }
    }

    /// Whether a node at `place` is in.
    pub fn admits(self, place: u64) -> bool {
        self.max_place.is_some_and(|m| place <= m)
    }
}

/// The sorted places of the nodes in a rollout's scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineIndex {
    sorted: Vec<u64>,
}

impl LineIndex {
    /// Builds the index from the places of the nodes in scope.
    pub fn new(places: impl IntoIterator<Item = u64>) -> Self {
        let mut sorted: Vec<u64> = places.into_iter().collect();
        sorted.sort_unstable();
        Self { sorted }
    }

    /// Builds the index for `release` from node ids.
    pub fn for_release<'a>(release: &str, node_ids: impl IntoIterator<Item = &'a str>) -> Self {
        Self::new(node_ids.into_iter().map(|id| place_in_line(id, release)))
    }

    /// Number of nodes in scope.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether no node is in scope.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The cutoff admitting exactly the first ⌈share · N⌉ nodes in line.
    pub fn cutoff(&self, share: Share) -> Cutoff {
        if self.sorted.is_empty() {
            return Cutoff::by_quantile(share);
        }
        if share == Share::ALL {
            return Cutoff::EVERYONE;
        }
        let k = share.of(self.sorted.len() as u64);
        match usize::try_from(k).ok().and_then(|k| k.checked_sub(1)) {
            None => Cutoff::NOBODY,
            Some(i) => Cutoff {
                max_place: self.sorted.get(i).copied(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_is_reproducible_and_changes_with_the_release() {
        assert_eq!(
            place_in_line("node-1", "1.2.0"),
            place_in_line("node-1", "1.2.0")
        );
        assert_ne!(
            place_in_line("node-1", "1.2.0"),
            place_in_line("node-1", "1.3.0")
        );
        assert_ne!(
            place_in_line("node-1", "1.2.0"),
            place_in_line("node-2", "1.2.0")
        );
    }

    #[test]
    fn index_admits_exactly_the_requested_share() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("node-{i}")).collect();
        let idx = LineIndex::for_release("1.2.0", ids.iter().map(String::as_str));
        for bp in [1, 100, 250, 1000, 3333, 5000, 9999, 10_000] {
            let cut = idx.cutoff(Share::from_basis_points(bp));
            let n = ids
                .iter()
                .filter(|id| cut.admits(place_in_line(id, "1.2.0")))
                .count();
            assert_eq!(
                n as u64,
                Share::from_basis_points(bp).of(10_000),
                "at {bp} bp"
            );
        }
        assert!(!idx.cutoff(Share::ZERO).admits(0));
    }

    #[test]
    fn canaries_of_two_releases_are_mostly_different_nodes() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("node-{i}")).collect();
        let share = Share::from_percent(5.0).unwrap();
        let a = LineIndex::for_release("1.2.0", ids.iter().map(String::as_str)).cutoff(share);
        let b = LineIndex::for_release("1.3.0", ids.iter().map(String::as_str)).cutoff(share);
        let both = ids
            .iter()
            .filter(|id| {
                a.admits(place_in_line(id, "1.2.0")) && b.admits(place_in_line(id, "1.3.0"))
            })
            .count();
        // Independent 5 % samples overlap in about 0.25 % = 25 nodes.
        assert!(both < 100, "{both} nodes were canaries twice");
    }

    #[test]
    fn percent_outside_range_is_refused() {
        assert!(Share::from_percent(100.5).is_err());
        assert!(Share::from_percent(-1.0).is_err());
        assert!(Share::from_percent(f64::NAN).is_err());
        assert_eq!(Share::from_percent(12.5).unwrap().basis_points(), 1250);
    }
}
