//! When to check in next: the configured interval with a node-specific
//! jitter of up to ±10 % (so a fleet started together does not stay in
//! step), or the server's `retry_after`. Pure.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// The next check after a regular one: `interval` ± 10 %, the offset drawn
/// from `seed` (the node id's hash) and `n` (the check's number).
pub fn next_check(now: Timestamp, interval: Duration, seed: u64, n: u64) -> Timestamp {
    let mut x = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    let span = ms / 5; // 20 % wide, centred
    let offset = if span == 0 { 0 } else { x % span };
    let wait = ms - ms / 10 + offset;
    after(now, Duration::from_millis(wait))
}

/// The next check after the server said "wait `secs`": never sooner than
/// 10 s, never later than a day.
pub fn after_server_wait(now: Timestamp, secs: u64) -> Timestamp {
    after(now, Duration::from_secs(secs.clamp(10, 86_400)))
}

/// `now + d`, saturating.
pub fn after(now: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// A stable seed from the node id.
pub fn seed(node_id: &str) -> u64 {
    // FNV-1a: stable across releases, unlike std's hasher.
    node_id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_stay_within_ten_percent_of_the_interval_and_spread_out() {
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        let hour = Duration::from_secs(3600);
        let mut seen = std::collections::BTreeSet::new();
        for node in 0..200 {
            let t = next_check(now, hour, seed(&format!("node-{node}")), 1);
            let d = t.duration_since(now).as_secs();
            assert!((3240..=3960).contains(&d), "{d}");
            seen.insert(d / 60);
        }
        // 200 nodes land in many different minutes of the 12-minute span.
        assert!(seen.len() >= 10, "{seen:?}");
        // And a node's own checks move around too.
        let s = seed("node-1");
        assert_ne!(next_check(now, hour, s, 1), next_check(now, hour, s, 2));
    }

    #[test]
    fn the_server_wait_is_clamped() {
        let now: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        assert_eq!(after_server_wait(now, 0).duration_since(now).as_secs(), 10);
        assert_eq!(
            after_server_wait(now, 600).duration_since(now).as_secs(),
            600
        );
    }
}
