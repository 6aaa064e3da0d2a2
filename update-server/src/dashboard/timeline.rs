//! The rollout page's chart of nodes per state over time, built from the
//! attempts counted per time bucket (started, and finished by phase) and
//! the rollout's audit trail (its ramp steps). Pure: all inputs are given.

use jiff::{SignedDuration, Timestamp};
use moho_protocol::admin::AuditEntry;
use moho_rollout::policy::RolloutPolicy;

use super::charts::{Series, TimeAxis, palette};
use crate::store::{BucketRow, Phase};

/// Buckets across the chart.
pub const BUCKETS: i64 = 48;

/// The bucket width for a rollout created at `from`, drawn at `now`
/// (at least one second).
pub fn bucket_ms(from: Timestamp, now: Timestamp) -> i64 {
    let span = now.duration_since(from).as_millis().max(60_000);
    let n = i128::from(BUCKETS);
    i64::try_from((span + n - 1) / n).unwrap_or(i64::MAX)
}

/// The ramp step in force after each audit entry of the rollout: creation
/// starts at step 0, `rollout.advance` moves to `after.step`, a policy
/// change keeps `after.state.step`.
fn steps_over_time(created: Timestamp, audit: &[AuditEntry]) -> Vec<(Timestamp, usize)> {
    let mut out = vec![(created, 0)];
    for e in audit {
        let step = match e.action.as_str() {
            "rollout.advance" => e.after.as_ref().and_then(|a| a["step"].as_u64()),
            "rollout.policy" => e.after.as_ref().and_then(|a| a["state"]["step"].as_u64()),
            _ => None,
        };
        if let Some(s) = step.and_then(|s| usize::try_from(s).ok()) {
            out.push((e.at, s));
        }
    }
    out
}

fn label(t: Timestamp) -> String {
    t.strftime("%m-%d %H:%M").to_string()
}

/// The series (offered, in flight, healthy, failed, ramp target) and axis.
pub fn build(
    created: Timestamp,
    now: Timestamp,
    rows: &[BucketRow],
    audit: &[AuditEntry],
    policy: &RolloutPolicy,
    scope: u64,
) -> (Vec<Series>, TimeAxis) {
    let width = bucket_ms(created, now);
    let n = usize::try_from(BUCKETS).unwrap_or(48);
    let (mut started, mut healthy, mut failed) = (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
    for r in rows {
        let i = usize::try_from(r.bucket.clamp(0, BUCKETS - 1)).unwrap_or(0);
        match r.ended {
            None => started[i] += r.count,
            Some(Phase::Healthy) => healthy[i] += r.count,
            Some(_) => failed[i] += r.count,
        }
    }
    // Display only.
    #[allow(clippy::cast_precision_loss)]
    let secs = |i: usize| (i as f64 + 1.0) * (width as f64) / 1000.0;
    #[allow(clippy::cast_precision_loss)]
    let v = |x: u64| x as f64;
    let (mut o, mut h, mut f) = (0u64, 0u64, 0u64);
    let mut offered = vec![(0.0, 0.0)];
    let mut in_flight = vec![(0.0, 0.0)];
    let mut ok = vec![(0.0, 0.0)];
    let mut bad = vec![(0.0, 0.0)];
    let last = usize::try_from(
        now.duration_since(created)
            .as_millis()
            .div_euclid(i128::from(width.max(1))),
    )
    .unwrap_or(n - 1)
    .min(n - 1);
    for i in 0..=last {
        o += started[i];
        h += healthy[i];
        f += failed[i];
        offered.push((secs(i), v(o)));
        ok.push((secs(i), v(h)));
        bad.push((secs(i), v(f)));
        in_flight.push((secs(i), v(o.saturating_sub(h + f))));
    }
    let mut target = Vec::new();
    let since = |t: Timestamp| t.duration_since(created).as_secs_f64().max(0.0);
    let mut prev: Option<f64> = None;
    for (t, step) in steps_over_time(created, audit) {
        let value = v(policy.share_at(step).of(scope));
        if let Some(p) = prev {
            target.push((since(t), p));
        }
        target.push((since(t), value));
        prev = Some(value);
    }
    let span = now
        .duration_since(created)
        .max(SignedDuration::from_mins(1));
    if let Some(p) = prev {
        target.push((span.as_secs_f64(), p));
    }
    let series = vec![
        Series {
            key: "target".into(),
            label: "ramp target".into(),
            colour: palette::INK,
            dashed: true,
            points: target,
        },
        Series {
            key: "offered".into(),
            label: "offered".into(),
            colour: palette::WAITING,
            dashed: false,
            points: offered,
        },
        Series {
            key: "in_flight".into(),
            label: "in flight".into(),
            colour: palette::INSTALLED,
            dashed: false,
            points: in_flight,
        },
        Series {
            key: "healthy".into(),
            label: "healthy".into(),
            colour: palette::HEALTHY,
            dashed: false,
            points: ok,
        },
        Series {
            key: "failed".into(),
            label: "failed or rolled back".into(),
            colour: palette::ERROR,
            dashed: false,
            points: bad,
        },
    ];
    let mid = created.checked_add(span / 2).unwrap_or(created);
    let axis = TimeAxis {
        span_secs: span.as_secs(),
        labels: [
            label(created),
            label(mid),
            label(created.checked_add(span).unwrap_or(now)),
        ],
    };
    (series, axis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_accumulate_and_the_target_follows_the_steps() {
        let t0: Timestamp = "2026-03-02T10:00:00Z".parse().unwrap_or_default();
        let now = t0.checked_add(SignedDuration::from_hours(4)).unwrap_or(t0);
        assert_eq!(bucket_ms(t0, now), 4 * 3600 * 1000 / 48);
        let policy: RolloutPolicy = serde_json::from_value(serde_json::json!(
            {"steps": [{"percent": 10, "hold": "1h"}, {"percent": 50}]}))
        .unwrap_or_else(|_| RolloutPolicy::immediate());
        let rows = [
            BucketRow {
                bucket: 0,
                ended: None,
                count: 10,
            },
            BucketRow {
                bucket: 20,
                ended: None,
                count: 40,
            },
            BucketRow {
                bucket: 5,
                ended: Some(Phase::Healthy),
                count: 8,
            },
            BucketRow {
                bucket: 30,
                ended: Some(Phase::RolledBack),
                count: 2,
            },
        ];
        let advance = AuditEntry {
            id: 2,
            at: t0.checked_add(SignedDuration::from_hours(1)).unwrap_or(t0),
            actor: "system".into(),
            action: "rollout.advance".into(),
            subject: "rollout/1".into(),
            before: None,
            after: Some(serde_json::json!({"step": 1})),
        };
        let (series, axis) = build(t0, now, &rows, &[advance], &policy, 100);
        let get = |k: &str| {
            series
                .iter()
                .find(|s| s.key == k)
                .map(|s| s.points.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("offered").last().map(|p| p.1), Some(50.0));
        assert_eq!(get("healthy").last().map(|p| p.1), Some(8.0));
        assert_eq!(get("failed").last().map(|p| p.1), Some(2.0));
        assert_eq!(get("in_flight").last().map(|p| p.1), Some(40.0));
        // 10% of 100 until the advance at 1 h, then 50%.
        assert_eq!(
            get("target"),
            vec![(0.0, 10.0), (3600.0, 10.0), (3600.0, 50.0), (14400.0, 50.0)]
        );
        assert_eq!(axis.span_secs, 14400);
        assert_eq!(axis.labels[0], "03-02 10:00");
    }
}
