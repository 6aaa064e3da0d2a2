//! How the dashboard writes numbers, shares, sizes, times and durations:
//! pure functions of their inputs (the current time is an argument).

use jiff::{SignedDuration, Timestamp};

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `part` of `whole` as a percentage with one decimal ("12.5%"); "0%" of
/// nothing.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".to_owned();
    }
    let p = ratio(part, whole) * 100.0;
    let s = format!("{p:.1}");
    format!("{}%", s.strip_suffix(".0").unwrap_or(&s))
}

/// `part / whole` as a float in 0..=1 (0 for an empty whole).
pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    // Display only: precision loss above 2^52 nodes does not matter.
    #[allow(clippy::cast_precision_loss)]
    let r = part as f64 / whole as f64;
    r.clamp(0.0, 1.0)
}

/// Bytes in binary units ("1.5 GiB").
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    // Display only.
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A moment in UTC, to the second ("2026-03-02 10:00:05 UTC").
pub fn utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// How long ago `t` was at `now` ("just now", "5 min ago", "3 h ago",
/// "2 d ago"; "in 5 min" for the future).
pub fn ago(now: Timestamp, t: Timestamp) -> String {
    let d = now.duration_since(t);
    let (future, secs) = if d.is_negative() {
        (true, -d.as_secs())
    } else {
        (false, d.as_secs())
    };
    let text = match secs {
        0..60 => return "just now".to_owned(),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A duration as the policy JSON writes it ("1h 30m", "0s").
pub fn duration(d: SignedDuration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    format!("{d:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sizes_and_times_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(percent(1, 8), "12.5%");
        assert_eq!(percent(1, 2), "50%");
        assert_eq!(percent(3, 0), "0%");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        let now: Timestamp = "2026-03-02T10:00:00Z".parse().unwrap_or_default();
        let t = |s: &str| s.parse::<Timestamp>().unwrap_or_default();
        assert_eq!(utc(now), "2026-03-02 10:00:00 UTC");
        assert_eq!(ago(now, t("2026-03-02T09:59:30Z")), "just now");
        assert_eq!(ago(now, t("2026-03-02T09:55:00Z")), "5 min ago");
        assert_eq!(ago(now, t("2026-03-02T07:00:00Z")), "3 h ago");
        assert_eq!(ago(now, t("2026-02-28T10:00:00Z")), "2 d ago");
        assert_eq!(ago(now, t("2026-03-02T10:05:00Z")), "in 5 min");
        assert_eq!(duration(SignedDuration::from_mins(90)), "1h 30m");
        assert_eq!(duration(SignedDuration::ZERO), "0s");
    }
}
