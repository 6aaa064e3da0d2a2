//! SVG charts drawn by the server: a stacked bar with an optional marker
//! (fleet versions, rollout progress against the ramp target) and a line
//! chart over time (a rollout's nodes per state). Every chart has a text
//! legend with the figures, a `<title>` for screen readers, and colours
//! from the Okabe–Ito palette, which stays distinguishable with the common
//! colour-vision deficiencies; failures are also hatched, so nothing relies
//! on red against green.

use maud::{Markup, html};

use super::format::{percent, ratio, thousands};

/// A colour of the palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub &'static str);

/// Okabe–Ito colours by meaning.
pub mod palette {
    use super::Colour;
    /// Offered, nothing reported yet.
    pub const WAITING: Colour = Colour("#999999");
    /// Downloading.
    pub const DOWNLOADING: Colour = Colour("#56B4E9");
    /// Installed, waiting for health.
    pub const INSTALLED: Colour = Colour("#0072B2");
    /// Healthy.
    pub const HEALTHY: Colour = Colour("#009E73");
    /// Failed with an error.
    pub const ERROR: Colour = Colour("#D55E00");
    /// Rolled back.
    pub const ROLLED_BACK: Colour = Colour("#CC79A7");
    /// No final report within the update timeout.
    pub const TIMED_OUT: Colour = Colour("#E69F00");
    /// Lines and markers.
    pub const INK: Colour = Colour("#000000");
    /// Series colours for categories without meaning (versions).
    pub const SERIES: [Colour; 7] = [
        Colour("#0072B2"),
        Colour("#E69F00"),
        Colour("#009E73"),
        Colour("#CC79A7"),
        Colour("#56B4E9"),
        Colour("#D55E00"),
        Colour("#F0E442"),
    ];
}

/// One part of a stacked bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Stable key (used in `data-figure` for tests and scripts).
    pub key: String,
    /// What it is.
    pub label: String,
    /// How many.
    pub value: u64,
    /// Fill.
    pub colour: Colour,
    /// Drawn hatched (failures), so it stands out without colour.
    pub hatched: bool,
}

impl Segment {
    /// A plain segment.
    pub fn new(key: &str, label: impl Into<String>, value: u64, colour: Colour) -> Self {
        Self {
            key: key.to_owned(),
            label: label.into(),
            value,
            colour,
            hatched: false,
        }
    }

    /// The same, hatched.
    pub fn hatched(mut self) -> Self {
        self.hatched = true;
        self
    }
}

/// A vertical marker on a bar (e.g. the ramp target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// Where, in the bar's units.
    pub at: u64,
    /// Its label in the legend.
    pub label: String,
}

const BAR_W: f64 = 600.0;

/// A count drawn from a float (chart values are whole numbers of nodes).
#[allow(clippy::cast_possible_truncation)]
fn whole(v: f64) -> u64 {
    v.max(0.0).round() as u64
}

fn f(x: f64) -> String {
    format!("{x:.1}")
}

/// The shared `<defs>` (hatch pattern) every page includes once.
pub fn defs() -> Markup {
    html! {
        svg.defs width="0" height="0" aria-hidden="true" focusable="false" {
            defs {
                pattern id="moho-hatch" width="6" height="6" patternUnits="userSpaceOnUse"
                    patternTransform="rotate(45)" {
                    rect width="2.5" height="6" fill="#ffffff" fill-opacity="0.7" {}
                }
            }
        }
    }
}

fn swatch(colour: Colour, hatched: bool, dashed: bool) -> Markup {
    html! {
        svg.swatch width="14" height="14" viewBox="0 0 14 14" aria-hidden="true" {
            @if dashed {
                line x1="0" y1="7" x2="14" y2="7" stroke=(colour.0) stroke-width="2.5" stroke-dasharray="3 2" {}
            } @else {
                rect width="14" height="14" fill=(colour.0) {}
                @if hatched { rect width="14" height="14" fill="url(#moho-hatch)" {} }
            }
        }
    }
}

/// A stacked bar of `segments` out of `whole` (the rest drawn empty), with
/// an optional marker, followed by its legend.
pub fn stacked_bar(
    title: &str,
    segments: &[Segment],
    whole: u64,
    marker: Option<&Marker>,
) -> Markup {
    let whole = whole.max(segments.iter().map(|s| s.value).sum());
    let mut x = 0.0;
    let placed: Vec<(f64, f64, &Segment)> = segments
        .iter()
        .map(|s| {
            let w = ratio(s.value, whole) * BAR_W;
            let at = x;
            x += w;
            (at, w, s)
        })
        .collect();
    let summary: Vec<String> = segments
        .iter()
        .map(|s| format!("{} {}", s.label, thousands(s.value)))
        .collect();
    let label = format!("{title}: {}", summary.join(", "));
    html! {
        figure.chart {
            svg.bar viewBox="0 0 600 36" preserveAspectRatio="none" role="img" aria-label=(label) {
                title { (label) }
                rect x="0" y="8" width="600" height="20" fill="#eeeeee" stroke="#bbbbbb" {}
                @for (x, w, s) in &placed {
                    @if *w > 0.0 {
                        g {
                            title { (s.label) ": " (thousands(s.value)) }
                            rect x=(f(*x)) y="8" width=(f(*w)) height="20" fill=(s.colour.0) {}
                            @if s.hatched { rect x=(f(*x)) y="8" width=(f(*w)) height="20" fill="url(#moho-hatch)" {} }
                        }
                    }
                }
                @if let Some(m) = marker {
                    @let mx = ratio(m.at, whole) * BAR_W;
                    line x1=(f(mx.clamp(1.0, BAR_W - 1.0))) y1="2" x2=(f(mx.clamp(1.0, BAR_W - 1.0))) y2="34"
                        stroke=(palette::INK.0) stroke-width="2" stroke-dasharray="4 2" {
                        title { (m.label) ": " (thousands(m.at)) }
                    }
                }
            }
            ul.legend {
                @for s in segments {
                    li data-key=(s.key) {
                        (swatch(s.colour, s.hatched, false))
                        span.label { (s.label) }
                        " "
                        strong.value data-figure=(s.key) { (thousands(s.value)) }
                        " "
                        span.share { "(" (percent(s.value, whole)) ")" }
                    }
                }
                @if let Some(m) = marker {
                    li data-key="target" {
                        (swatch(palette::INK, false, true))
                        span.label { (m.label) }
                        " "
                        strong.value data-figure="target" { (thousands(m.at)) }
                    }
                }
            }
        }
    }
}

/// One line of a chart over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Stable key.
    pub key: String,
    /// Legend text.
    pub label: String,
    /// Stroke.
    pub colour: Colour,
    /// Dashed (targets), so lines differ by more than colour.
    pub dashed: bool,
    /// Points: (seconds since the chart's start, value).
    pub points: Vec<(f64, f64)>,
}

/// Axis labels of a time chart: the text under the start, middle and end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeAxis {
    /// Seconds the chart spans.
    pub span_secs: i64,
    /// Labels at 0, 1/2 and 1 of the span.
    pub labels: [String; 3],
}

const PLOT_X0: f64 = 56.0;
const PLOT_X1: f64 = 630.0;
const PLOT_Y0: f64 = 16.0;
const PLOT_Y1: f64 = 216.0;

/// A line chart of `series` over `axis`, with its legend.
pub fn timeline(title: &str, series: &[Series], axis: &TimeAxis) -> Markup {
    let max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0_f64, f64::max)
        .ceil();
    // Display only.
    #[allow(clippy::cast_precision_loss)]
    let span = axis.span_secs.max(1) as f64;
    let px = |t: f64| PLOT_X0 + (t / span).clamp(0.0, 1.0) * (PLOT_X1 - PLOT_X0);
    let py = |v: f64| PLOT_Y1 - (v / max).clamp(0.0, 1.0) * (PLOT_Y1 - PLOT_Y0);
    let ticks = [0.0, (max / 2.0).round(), max];
    html! {
        figure.chart {
            svg.timeline viewBox="0 0 640 250" role="img" aria-label=(title) {
                title { (title) }
                @for v in ticks {
                    line x1=(f(PLOT_X0)) y1=(f(py(v))) x2=(f(PLOT_X1)) y2=(f(py(v))) stroke="#dddddd" {}
                    text x=(f(PLOT_X0 - 6.0)) y=(f(py(v) + 4.0)) text-anchor="end" font-size="11" {
                        (thousands(whole(v)))
                    }
                }
                line x1=(f(PLOT_X0)) y1=(f(PLOT_Y1)) x2=(f(PLOT_X1)) y2=(f(PLOT_Y1)) stroke=(palette::INK.0) {}
                line x1=(f(PLOT_X0)) y1=(f(PLOT_Y0)) x2=(f(PLOT_X0)) y2=(f(PLOT_Y1)) stroke=(palette::INK.0) {}
                @for (i, anchor) in ["start", "middle", "end"].iter().enumerate() {
                    @let t = span * (i as f64) / 2.0;
                    text x=(f(px(t))) y="236" text-anchor=(anchor) font-size="11" { (axis.labels[i]) }
                }
                text x="12" y=(f((PLOT_Y0 + PLOT_Y1) / 2.0)) font-size="11" text-anchor="middle"
                    transform=(format!("rotate(-90 12 {})", f((PLOT_Y0 + PLOT_Y1) / 2.0))) { "nodes" }
                @for s in series {
                    @let pts: Vec<String> = s.points.iter().map(|(t, v)| format!("{},{}", f(px(*t)), f(py(*v)))).collect();
                    polyline points=(pts.join(" ")) fill="none" stroke=(s.colour.0) stroke-width="2.5"
                        stroke-dasharray=(if s.dashed { "6 4" } else { "none" }) {
                        title { (s.label) }
                    }
                }
            }
            ul.legend {
                @for s in series {
                    li data-key=(s.key) {
                        (swatch(s.colour, false, s.dashed))
                        span.label { (s.label) }
                        " "
                        strong.value data-figure=(s.key) {
                            (thousands(whole(s.points.last().map_or(0.0, |p| p.1))))
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_has_its_figures_in_text_and_escapes_labels() {
        let segs = [
            Segment::new("healthy", "healthy", 30, palette::HEALTHY),
            Segment::new("failed", "<b>failed</b>", 10, palette::ERROR).hatched(),
        ];
        let html = stacked_bar(
            "progress",
            &segs,
            100,
            Some(&Marker {
                at: 50,
                label: "ramp target".into(),
            }),
        )
        .into_string();
        assert!(html.contains(r#"data-figure="healthy">30<"#), "{html}");
        assert!(html.contains("(30%)"), "{html}");
        assert!(html.contains(r#"data-figure="target">50<"#), "{html}");
        assert!(html.contains("url(#moho-hatch)"), "{html}");
        assert!(html.contains("&lt;b&gt;failed&lt;/b&gt;"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        // The healthy part is 30% of 600 wide; the marker sits at 300.
        assert!(html.contains(r#"width="180.0""#), "{html}");
        assert!(html.contains(r#"x1="300.0""#), "{html}");
    }

    #[test]
    fn a_timeline_scales_to_its_largest_value() {
        let s = Series {
            key: "healthy".into(),
            label: "healthy".into(),
            colour: palette::HEALTHY,
            dashed: false,
            points: vec![(0.0, 0.0), (50.0, 10.0), (100.0, 20.0)],
        };
        let axis = TimeAxis {
            span_secs: 100,
            labels: ["a".into(), "b".into(), "c".into()],
        };
        let html = timeline("nodes over time", &[s], &axis).into_string();
        // First point bottom-left, last point top-right of the plot.
        assert!(html.contains("56.0,216.0"), "{html}");
        assert!(html.contains("630.0,16.0"), "{html}");
        assert!(html.contains(r#"data-figure="healthy">20<"#), "{html}");
        assert!(html.contains(">10<"), "{html}");
    }
}
