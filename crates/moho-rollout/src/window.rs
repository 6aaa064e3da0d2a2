//! Calendar windows: weekly recurring intervals in an IANA time zone, used by
//! the server (when may a rollout offer updates) and by the node agent (when
//! may it reboot).
//!
//! A [`Window`] is "on these weekdays, from this local wall-clock time, for
//! this long". It is evaluated against an absolute instant (`now` is always an
//! argument) in the window's own time zone, so it is right across DST changes:
//!
//! - the start is resolved with the *compatible* rule: a start time that does
//!   not exist on a spring-forward day (inside the gap) moves forward by the
//!   gap's length (02:30 in a 02:00→03:00 gap starts at 03:30); a start time that occurs twice on a fall-back day
//!   begins at its first occurrence;
//! - the length is elapsed (absolute) time from that start, so a 3-hour window
//!   is open for 3 real hours even on a day that is 23 or 25 hours long.
//!
//! Time zones come from the IANA database bundled into the binary (jiff's
//! `tzdb-bundle-always`), never from the file system, so evaluation is pure
//! and gives the same answer on every machine. [`Windows`] is a union of
//! windows; an empty set means "always open".

use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

/// The longest window: a whole week (a longer one would always be open).
pub const MAX_WINDOW_LENGTH: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Why a window specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A day name that is not a weekday or range of weekdays.
    #[error("unknown day {0:?}: use mon, tue, wed, thu, fri, sat, sun or a range like mon-fri")]
    UnknownDay(String),
    /// No days at all.
    #[error("a window needs at least one day")]
    NoDays,
    /// A start that is not `HH:MM` or `HH:MM:SS`.
    #[error("invalid start time {0:?}: use HH:MM, e.g. 02:30")]
    BadStart(String),
    /// A length that does not parse as a duration.
    #[error("invalid length {0:?}: use e.g. 3h, 90m, 1h 30m, 1d")]
    BadLength(String),
    /// A length of zero, negative, or over a week.
    #[error("window length {0} is out of range: it must be more than 0 and at most 7 days")]
    LengthOutOfRange(String),
    /// A time zone name the bundled IANA database does not know.
    #[error("unknown time zone {0:?}: use an IANA name such as Europe/Berlin or UTC")]
    UnknownTimeZone(String),
    /// A one-line window that is not four words.
    #[error(
        "invalid window {0:?}: use \"DAYS START LENGTH TIME_ZONE\", e.g. \"mon-fri 02:00 3h Europe/Berlin\""
    )]
    BadLine(String),
}

/// The serialised form of a window, as written in config files and the admin
/// API: `{"days": ["mon-fri"], "start": "02:00", "length": "3h",
/// "time_zone": "Europe/Berlin"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Weekdays (`mon` … `sun`, full names accepted) or ranges (`mon-fri`).
    pub days: Vec<String>,
    /// Local wall-clock start, `HH:MM` or `HH:MM:SS`.
    pub start: String,
    /// How long the window stays open: `3h`, `90m`, `1h 30m`, `PT3H`.
    pub length: String,
    /// IANA time zone name, e.g. `Europe/Berlin`, `America/New_York`, `UTC`.
    pub time_zone: String,
}

impl WindowSpec {
    /// The one-line form operators type (CLI flags, dashboard fields):
    /// `DAYS START LENGTH TIME_ZONE`, days comma-separated, e.g.
    /// `mon-fri 02:00 3h Europe/Berlin` or `sat,sun 00:00 1d UTC`. Only the
    /// shape is checked here; [`Window::from_spec`] checks the values.
    pub fn parse_line(line: &str) -> Result<Self, WindowError> {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [days, start, length, time_zone] = parts[..] else {
            return Err(WindowError::BadLine(line.to_owned()));
        };
        Ok(WindowSpec {
            days: days.split(',').map(str::to_owned).collect(),
            start: start.to_owned(),
            length: length.to_owned(),
            time_zone: time_zone.to_owned(),
        })
    }

    /// The one-line form ([`WindowSpec::parse_line`] reads it back).
    pub fn to_line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.days.join(","),
            self.start,
            self.length.replace(' ', ""),
            self.time_zone
        )
    }
}

/// A half-open interval of absolute time, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// First instant inside.
    pub start: Timestamp,
    /// First instant after.
    pub end: Timestamp,
}

impl Interval {
    /// Whether `t` lies inside.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// One weekly recurring window, validated.
#[derive(Clone, PartialEq)]
pub struct Window {
    /// Indexed by `Weekday::to_monday_zero_offset()`.
    days: [bool; 7],
    start: Time,
    length: SignedDuration,
    time_zone: TimeZone,
    time_zone_name: String,
}

impl fmt::Debug for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Window").field(&self.to_spec()).finish()
    }
}

/// Looks an IANA name up in the bundled database (no file system access).
pub fn time_zone(name: &str) -> Result<TimeZone, WindowError> {
    TimeZoneDatabase::bundled()
        .get(name)
        .map_err(|_| WindowError::UnknownTimeZone(name.to_owned()))
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_NAMES_LONG: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn parse_day(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| *d == s)
        .or_else(|| DAY_NAMES_LONG.iter().position(|d| *d == s))
}

/// Parses day names and ranges (`mon-fri`, `sat-sun`, `fri-mon` wraps).
fn parse_days(days: &[String]) -> Result<[bool; 7], WindowError> {
    let mut set = [false; 7];
    for item in days {
        let unknown = || WindowError::UnknownDay(item.clone());
        if let Some((a, b)) = item.split_once('-') {
            let (a, b) = (
                parse_day(a).ok_or_else(unknown)?,
                parse_day(b).ok_or_else(unknown)?,
            );
            let mut d = a;
            loop {
                set[d] = true;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        } else {
            set[parse_day(item).ok_or_else(unknown)?] = true;
        }
    }
    if set.iter().any(|d| *d) {
        Ok(set)
    } else {
        Err(WindowError::NoDays)
    }
}

fn day_index(w: Weekday) -> usize {
    usize::try_from(w.to_monday_zero_offset()).unwrap_or(0)
}

impl Window {
    /// Builds a window from typed parts.
    pub fn new(
        days: impl IntoIterator<Item = Weekday>,
        start: Time,
        length: SignedDuration,
        time_zone_name: &str,
    ) -> Result<Self, WindowError> {
        let mut set = [false; 7];
        for d in days {
            set[day_index(d)] = true;
        }
        if !set.iter().any(|d| *d) {
            return Err(WindowError::NoDays);
        }
        if length <= SignedDuration::ZERO || length > MAX_WINDOW_LENGTH {
            return Err(WindowError::LengthOutOfRange(format!("{length:#}")));
        }
        Ok(Self {
            days: set,
            start,
            length,
            time_zone: time_zone(time_zone_name)?,
            time_zone_name: time_zone_name.to_owned(),
        })
    }

    /// Validates the serialised form.
    pub fn from_spec(spec: &WindowSpec) -> Result<Self, WindowError> {
        let days = parse_days(&spec.days)?;
        let start: Time = spec
            .start
            .trim()
            .parse()
            .map_err(|_| WindowError::BadStart(spec.start.clone()))?;
        let text = spec.length.trim();
        // A day is 24 hours here, as in the policy's durations ("1d" = "24h").
        let length: SignedDuration = text
            .parse()
            .or_else(|_| {
                text.parse::<jiff::Span>()
                    .and_then(|s| s.to_duration(jiff::SpanRelativeTo::days_are_24_hours()))
            })
            .map_err(|_| WindowError::BadLength(spec.length.clone()))?;
        let weekdays = (0..7).filter(|i| days[*i]).map(|i| {
            Weekday::from_monday_zero_offset(i8::try_from(i).unwrap_or(0))
                .unwrap_or(Weekday::Monday)
        });
        Self::new(weekdays, start, length, &spec.time_zone)
    }

    /// The serialised form (days listed one by one, length in friendly form).
    pub fn to_spec(&self) -> WindowSpec {
        WindowSpec {
            days: (0..7)
                .filter(|i| self.days[*i])
                .map(|i| DAY_NAMES[i].to_owned())
                .collect(),
            start: self.start.strftime("%H:%M:%S").to_string(),
            length: format!("{:#}", self.length),
            time_zone: self.time_zone_name.clone(),
        }
    }

    /// The window's time zone name.
    pub fn time_zone_name(&self) -> &str {
        &self.time_zone_name
    }

    /// The occurrence that starts on local date `d`, if `d` is one of the days.
    fn occurrence_on(&self, d: Date) -> Option<Interval> {
        if !self.days[day_index(d.weekday())] {
            return None;
        }
        let start = self
            .time_zone
            .to_ambiguous_zoned(d.to_datetime(self.start))
            .compatible()
            .ok()?;
        let start = start.timestamp();
        let end = start.checked_add(self.length).ok()?;
        Some(Interval { start, end })
    }

    /// Occurrences starting on local dates `today + from` ..= `today + to`.
    fn occurrences(&self, now: Timestamp, from: i64, to: i64) -> impl Iterator<Item = Interval> {
        let today = now.to_zoned(self.time_zone.clone()).date();
        (from..=to)
            .filter_map(move |k| today.checked_add(k.days()).ok())
            .filter_map(|d| self.occurrence_on(d))
    }

    /// The occurrence open at `now`, if any.
    pub fn occurrence_at(&self, now: Timestamp) -> Option<Interval> {
        // A window is at most 7 days long; 8 days back covers any DST shift.
        self.occurrences(now, -8, 0)
            .filter(|i| i.contains(now))
            .max_by_key(|i| i.end)
    }

    /// Whether the window is open at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.occurrence_at(now).is_some()
    }

    /// The first occurrence that starts strictly after `now`.
    pub fn next_start_after(&self, now: Timestamp) -> Option<Timestamp> {
        self.occurrences(now, -1, 8)
            .map(|i| i.start)
            .filter(|s| *s > now)
            .min()
    }
}

impl TryFrom<WindowSpec> for Window {
    type Error = WindowError;
    fn try_from(spec: WindowSpec) -> Result<Self, WindowError> {
        Self::from_spec(&spec)
    }
}

impl From<Window> for WindowSpec {
    fn from(w: Window) -> Self {
        w.to_spec()
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_spec().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = WindowSpec::deserialize(d)?;
        Self::from_spec(&spec).map_err(serde::de::Error::custom)
    }
}

/// Whether a set of windows is open at an instant, and until or from when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    /// Open now; `closes_at` is `None` when there are no windows (always open)
    /// or when overlapping windows keep it open for over a week.
    Open {
        /// When the current stretch of open time ends.
        closes_at: Option<Timestamp>,
    },
    /// Closed now; opens again at `opens_at`.
    Closed {
        /// Start of the next window.
        opens_at: Timestamp,
    },
}

/// A union of windows. Empty means always open.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Windows(Vec<Window>);

impl Windows {
    /// No restriction: always open.
    pub fn always() -> Self {
        Self(Vec::new())
    }

    /// The union of `windows`.
    pub fn new(windows: Vec<Window>) -> Self {
        Self(windows)
    }

    /// The windows in this set.
    pub fn windows(&self) -> &[Window] {
        &self.0
    }

    /// Whether updates (or reboots) are allowed at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.0.is_empty() || self.0.iter().any(|w| w.is_open(now))
    }

    /// Open or closed at `now`, with the next change.
    pub fn state_at(&self, now: Timestamp) -> WindowState {
        if self.0.is_empty() {
            return WindowState::Open { closes_at: None };
        }
        if self.is_open(now) {
            // Follow overlapping or adjacent occurrences to the real close.
            let mut t = now;
            for _ in 0..64 {
                let end = self
                    .0
                    .iter()
                    .filter_map(|w| w.occurrence_at(t))
                    .map(|i| i.end)
                    .max();
                match end {
                    Some(end) if end > t => t = end,
                    _ => return WindowState::Open { closes_at: Some(t) },
                }
                if t.duration_since(now) > MAX_WINDOW_LENGTH {
                    return WindowState::Open { closes_at: None };
                }
            }
            WindowState::Open { closes_at: None }
        } else {
            let opens = self.0.iter().filter_map(|w| w.next_start_after(now)).min();
            // Every window has at least one day, so one starts within 8 days.
            WindowState::Closed {
                opens_at: opens.unwrap_or(now),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn spec(days: &[&str], start: &str, length: &str, tz: &str) -> WindowSpec {
        WindowSpec {
            days: days.iter().map(|d| (*d).to_owned()).collect(),
            start: start.into(),
            length: length.into(),
            time_zone: tz.into(),
        }
    }

    fn window(days: &[&str], start: &str, length: &str, tz: &str) -> Window {
        Window::from_spec(&spec(days, start, length, tz)).unwrap()
    }

    #[test]
    fn weekday_window_in_berlin_opens_and_closes_at_local_times() {
        let w = window(&["mon-fri"], "02:00", "3h", "Europe/Berlin");
        // 2026-01-05 is a Monday; Berlin is UTC+1 in winter.
        assert!(!w.is_open(ts("2026-01-05T00:59:59Z")));
        assert!(w.is_open(ts("2026-01-05T01:00:00Z")));
        assert!(w.is_open(ts("2026-01-05T03:59:59Z")));
        assert!(!w.is_open(ts("2026-01-05T04:00:00Z")));
        // Saturday 2026-01-10 is not a window day.
        assert!(!w.is_open(ts("2026-01-10T02:00:00Z")));
        assert_eq!(
            w.next_start_after(ts("2026-01-09T05:00:00Z")),
            Some(ts("2026-01-12T01:00:00Z"))
        );
    }

    #[test]
    fn spring_forward_gap_start_begins_after_the_gap_and_keeps_its_length() {
        // Europe/Berlin springs forward 2026-03-29 02:00 -> 03:00 (UTC 01:00).
        let w = window(&["sun"], "02:30", "2h", "Europe/Berlin");
        let occ = w.occurrence_at(ts("2026-03-29T01:30:00Z")).unwrap();
        // 02:30 does not exist; compatible resolution gives 03:30 CEST = 01:30Z.
        assert_eq!(occ.start, ts("2026-03-29T01:30:00Z"));
        assert_eq!(occ.end, ts("2026-03-29T03:30:00Z"));
        assert!(!w.is_open(ts("2026-03-29T01:29:59Z")));
    }

    #[test]
    fn fall_back_window_lasts_real_hours_from_first_occurrence() {
        // America/New_York falls back 2026-11-01 02:00 EDT -> 01:00 EST.
        let w = window(&["sun"], "01:30", "1h", "America/New_York");
        // First 01:30 is EDT (UTC-4) = 05:30Z; one real hour later is 06:30Z
        // (01:30 EST): the window closes then, not at the second 02:30.
        let occ = w.occurrence_at(ts("2026-11-01T05:45:00Z")).unwrap();
        assert_eq!(occ.start, ts("2026-11-01T05:30:00Z"));
        assert_eq!(occ.end, ts("2026-11-01T06:30:00Z"));
        assert!(!w.is_open(ts("2026-11-01T06:30:00Z")));
    }

    #[test]
    fn local_start_time_stays_fixed_across_a_dst_change() {
        let w = window(&["mon-sun"], "09:00", "1h", "America/New_York");
        // EST (UTC-5) before 2026-03-08, EDT (UTC-4) after.
        assert!(w.is_open(ts("2026-03-07T14:30:00Z")));
        assert!(!w.is_open(ts("2026-03-09T14:30:00Z")));
        assert!(w.is_open(ts("2026-03-09T13:30:00Z")));
    }

    #[test]
    fn window_spanning_midnight_and_the_week_boundary_is_open_on_the_next_day() {
        let w = window(&["sun"], "22:00", "6h", "UTC");
        // Sunday 2026-01-11 22:00 -> Monday 04:00.
        assert!(w.is_open(ts("2026-01-12T03:59:00Z")));
        assert!(!w.is_open(ts("2026-01-12T04:00:00Z")));
    }

    #[test]
    fn union_reports_next_opening_and_real_close_of_adjacent_windows() {
        let ws = Windows::new(vec![
            window(&["mon"], "10:00", "1h", "UTC"),
            window(&["mon"], "11:00", "1h", "UTC"),
        ]);
        assert_eq!(
            ws.state_at(ts("2026-01-05T10:30:00Z")),
            WindowState::Open {
                closes_at: Some(ts("2026-01-05T12:00:00Z"))
            }
        );
        assert_eq!(
            ws.state_at(ts("2026-01-05T12:00:00Z")),
            WindowState::Closed {
                opens_at: ts("2026-01-12T10:00:00Z")
            }
        );
        assert_eq!(
            Windows::always().state_at(ts("2026-01-05T12:00:00Z")),
            WindowState::Open { closes_at: None }
        );
    }

    #[test]
    fn bad_specs_name_the_offending_value() {
        let bad = |s: WindowSpec| Window::from_spec(&s).unwrap_err().to_string();
        assert!(bad(spec(&["funday"], "02:00", "1h", "UTC")).contains("\"funday\""));
        assert!(bad(spec(&[], "02:00", "1h", "UTC")).contains("at least one day"));
        assert!(bad(spec(&["mon"], "25:00", "1h", "UTC")).contains("\"25:00\""));
        assert!(bad(spec(&["mon"], "02:00", "soon", "UTC")).contains("\"soon\""));
        assert!(bad(spec(&["mon"], "02:00", "169h", "UTC")).contains("out of range"));
        assert!(bad(spec(&["mon"], "02:00", "1h", "Mars/Olympus")).contains("Mars/Olympus"));
    }

    #[test]
    fn spec_round_trips_through_json() {
        let w = window(&["fri-mon"], "23:30", "90m", "Asia/Kolkata");
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(
            json["days"],
            serde_json::json!(["mon", "fri", "sat", "sun"])
        );
        let back: Window = serde_json::from_value(json).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn the_one_line_form_round_trips_and_names_a_bad_line() {
        let w = window(&["fri-mon"], "23:30", "90m", "Asia/Kolkata");
        let line = w.to_spec().to_line();
        assert_eq!(line, "mon,fri,sat,sun 23:30:00 1h30m Asia/Kolkata");
        let back = Window::from_spec(&WindowSpec::parse_line(&line).unwrap()).unwrap();
        assert_eq!(back, w);
        let day =
            Window::from_spec(&WindowSpec::parse_line("sat,sun 00:00 1d UTC").unwrap()).unwrap();
        assert_eq!(
            day,
            Window::from_spec(&WindowSpec::parse_line("sat,sun 00:00 24h UTC").unwrap()).unwrap()
        );
        let typed = WindowSpec::parse_line("  mon-fri 02:00  3h Europe/Berlin ").unwrap();
        assert_eq!(typed, spec(&["mon-fri"], "02:00", "3h", "Europe/Berlin"));
        let err = WindowSpec::parse_line("mon-fri 02:00 3h")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"mon-fri 02:00 3h\""), "{err}");
    }

    proptest::proptest! {
        /// Open exactly when some occurrence contains `now`, and the reported
        /// next opening is really the start of a window.
        #[test]
        fn state_agrees_with_is_open(secs in 1_700_000_000i64..1_900_000_000, day in 0usize..7,
                                     hour in 0i8..24, len_min in 1i64..(3 * 24 * 60)) {
            let w = Window::new(
                [Weekday::from_monday_zero_offset(i8::try_from(day).unwrap()).unwrap()],
                Time::new(hour, 30, 0, 0).unwrap(),
                SignedDuration::from_mins(len_min),
                "Europe/London",
            ).unwrap();
            let now = Timestamp::from_second(secs).unwrap();
            let ws = Windows::new(vec![w.clone()]);
            match ws.state_at(now) {
                WindowState::Open { closes_at } => {
                    proptest::prop_assert!(w.is_open(now));
                    let c = closes_at.unwrap();
                    proptest::prop_assert!(c > now && !w.is_open(c));
                }
                WindowState::Closed { opens_at } => {
                    proptest::prop_assert!(!w.is_open(now));
                    proptest::prop_assert!(opens_at > now && w.is_open(opens_at));
                    let just_before = opens_at.checked_sub(SignedDuration::from_secs(1)).unwrap();
                    proptest::prop_assert!(!w.is_open(just_before) || just_before < now);
                }
            }
        }
    }
}
