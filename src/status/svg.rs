//! Server-rendered SVG charts: no chart library, nothing fetched, nothing
//! to run in the browser. Each chart carries the points it draws as
//! `data-points="t:v,..."` (unix seconds, value) on its lines, so tests
//! read what is drawn, and a text alternative with the latest value. A
//! line draws at most [`MAX_DRAWN`] points (`/api/history` has them all).

use std::fmt::Write as _;

use super::escape;
use crate::engine::history::Unit;

/// The drawing's coordinate space (it scales to the card's width).
const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 96.0;
/// Room above and below the lines, so a flat line at the top is visible.
const PAD: f64 = 4.0;

/// One line of a chart.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// What tells it apart in the legend (empty: the chart's only line).
    pub label: &'a str,
    /// `(unix seconds, value)`, oldest first.
    pub points: &'a [(f64, f64)],
}

/// A chart to draw.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// The signal id (`data-signal`).
    pub id: &'a str,
    /// The title.
    pub title: &'a str,
    /// Whose chart it is, for the text alternative (a target, a trigger).
    pub subject: &'a str,
    /// How values are shown.
    pub unit: Unit,
    /// Its lines.
    pub lines: Vec<Line<'a>>,
    /// A threshold drawn across.
    pub threshold: Option<f64>,
    /// A hysteresis band drawn behind (between the threshold and the value
    /// that clears the trigger).
    pub band: Option<(f64, f64)>,
    /// The right edge of the time axis (unix seconds).
    pub now: f64,
}

/// A value with its unit, for captions and text alternatives.
pub fn format_value(unit: Unit, v: f64) -> String {
    if !v.is_finite() {
        return "no value".into();
    }
    match unit {
        Unit::Ratio => format!("{:.1} %", v * 100.0),
        Unit::PerSecond => format!("{}/s", number(v)),
        Unit::Bytes => bytes(v),
        Unit::Seconds if v.abs() < 1.0 => format!("{} ms", number(v * 1000.0)),
        Unit::Seconds => format!("{} s", number(v)),
        Unit::Count | Unit::Plain => number(v),
        Unit::Cores => format!("{} cores", number(v)),
        Unit::Flag if v >= 0.5 => "up".into(),
        Unit::Flag => "down".into(),
    }
}

/// Three significant digits or so, without exponent noise.
fn number(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{} {}", number(v), UNITS[i])
}

/// `HH:MM:SS UTC` of a unix time.
pub fn clock(unix: f64) -> String {
    let s = unix.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// `42 s`, `3 min 20 s`, `1 h 5 min`.
pub fn span(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 if s.is_multiple_of(60) => format!("{} min", s / 60),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s / 60 % 60),
    }
}

/// The finite points of a line.
fn finite(points: &[(f64, f64)]) -> impl Iterator<Item = (f64, f64)> + '_ {
    points
        .iter()
        .copied()
        .filter(|(t, v)| t.is_finite() && v.is_finite())
}

/// Draws `c` as a `<figure>`: caption, SVG with a text alternative, axis
/// labels and a legend when there are several lines.
pub fn chart(c: &Chart) -> String {
    let all: Vec<(f64, f64)> = c.lines.iter().flat_map(|l| finite(l.points)).collect();
    let alt = text_alternative(c);
    let latest = c
        .lines
        .first()
        .and_then(|l| finite(l.points).last())
        .map(|(_, v)| format_value(c.unit, v))
        .unwrap_or_default();
    let mut out = String::new();
    let _ = write!(
        out,
        "<figure class=\"chart\" data-signal=\"{}\"><figcaption><span>{}</span><b>{}</b></figcaption>",
        escape(c.id),
        escape(c.title),
        escape(if c.lines.len() == 1 { &latest } else { "" })
    );
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{alt}\"><title>{alt}</title>",
        alt = escape(&alt)
    );
    if all.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"empty\">no data yet</text></svg></figure>",
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return out;
    }
    let t1 = c.now.max(all.iter().map(|p| p.0).fold(f64::MIN, f64::max));
    let first = all.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    let t0 = first.max(t1 - crate::engine::history::WINDOW).min(t1 - 1.0);
    let (lo, hi) = y_range(c, &all);
    let x = |t: f64| (t - t0) / (t1 - t0) * WIDTH;
    let y = |v: f64| HEIGHT - PAD - (v - lo) / (hi - lo) * (HEIGHT - 2.0 * PAD);
    if let Some((a, b)) = c.band {
        let (top, bottom) = (y(a.max(b)), y(a.min(b)));
        let _ = write!(
            out,
            "<rect class=\"band\" x=\"0\" y=\"{top:.1}\" width=\"{WIDTH}\" height=\"{:.1}\"/>",
            (bottom - top).max(0.5)
        );
    }
    if let Some(th) = c.threshold.filter(|v| v.is_finite()) {
        let _ = write!(
            out,
            "<line class=\"threshold\" x1=\"0\" x2=\"{WIDTH}\" y1=\"{0:.1}\" y2=\"{0:.1}\"/>",
            y(th)
        );
    }
    if c.unit == Unit::Flag {
        timeline(&mut out, c, t0, t1);
    } else {
        for (i, l) in c.lines.iter().enumerate() {
            line(&mut out, i, l, &x, &y);
        }
    }
    out.push_str("</svg>");
    let _ = write!(
        out,
        "<div class=\"axis\"><span>{}</span><span>{} – {}</span></div>",
        escape(&format!("last {}", span(t1 - t0))),
        escape(&format_value(c.unit, lo)),
        escape(&format_value(c.unit, hi))
    );
    if c.lines.len() > 1 {
        out.push_str("<ul class=\"legend\">");
        for (i, l) in c.lines.iter().enumerate() {
            let v = finite(l.points)
                .last()
                .map(|(_, v)| format_value(c.unit, v))
                .unwrap_or_else(|| "no data".into());
            let _ = write!(
                out,
                "<li class=\"s{}\">{}: {}</li>",
                i % 6,
                escape(if l.label.is_empty() { "(all)" } else { l.label }),
                escape(&v)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</figure>");
    out
}

/// The value range drawn: ratios and flags from 0 to 1 (or more), counts
/// from 0, trigger values around their data and threshold.
fn y_range(c: &Chart, all: &[(f64, f64)]) -> (f64, f64) {
    let mut lo = all.iter().map(|p| p.1).fold(f64::MAX, f64::min);
    let mut hi = all.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    for v in c
        .threshold
        .into_iter()
        .chain(c.band.into_iter().flat_map(|(a, b)| [a, b]))
        .filter(|v| v.is_finite())
    {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    match c.unit {
        Unit::Ratio | Unit::Flag => {
            lo = lo.min(0.0);
            hi = hi.max(1.0);
        }
        Unit::Plain => {
            let pad = (hi - lo).abs() * 0.1;
            lo -= pad;
            hi += pad;
        }
        _ => {
            lo = lo.min(0.0);
            hi *= 1.1;
        }
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    (lo, hi)
}

/// Most points drawn per line: the drawing is 320 units wide, so more add
/// nothing to see, only bytes to every page load (15 minutes at one poll a
/// second is 900). `/api/history` serves every point.
pub const MAX_DRAWN: usize = 320;

/// The finite points of a line, thinned to at most [`MAX_DRAWN`] by keeping
/// every k-th and the last; with `changes`, every point whose value differs
/// from the one before is kept as well (a short outage on a health
/// timeline must not disappear).
fn thin(points: &[(f64, f64)], changes: bool) -> Vec<(f64, f64)> {
    let pts: Vec<(f64, f64)> = finite(points).collect();
    if pts.len() <= MAX_DRAWN {
        return pts;
    }
    let stride = pts.len().div_ceil(MAX_DRAWN);
    let last = pts.len() - 1;
    pts.iter()
        .enumerate()
        .filter(|(i, p)| {
            i % stride == 0 || *i == last || (changes && *i > 0 && pts[i - 1].1 != p.1)
        })
        .map(|(_, p)| *p)
        .collect()
}

/// `t:v,t:v` of the points drawn (Rust's shortest round-trip formatting,
/// so a test reads back exactly what was recorded).
fn data_points(points: &[(f64, f64)]) -> String {
    let mut s = String::new();
    for (t, v) in points {
        if !s.is_empty() {
            s.push(',');
        }
        let _ = write!(s, "{t}:{v}");
    }
    s
}

/// Shortest gap in a line that is drawn as one: polls (and phase
/// evaluations) come at uneven times, so only a long absence breaks a line.
const MIN_GAP: f64 = 5.0;

/// One line as a `<path>`, broken where points are missing (a target down
/// for a while): a gap longer than three times the usual spacing and than
/// [`MIN_GAP`].
fn line(out: &mut String, i: usize, l: &Line, x: &impl Fn(f64) -> f64, y: &impl Fn(f64) -> f64) {
    let pts = thin(l.points, false);
    let mut gaps: Vec<f64> = pts.windows(2).map(|w| w[1].0 - w[0].0).collect();
    gaps.sort_by(f64::total_cmp);
    let usual = gaps.get(gaps.len() / 2).copied().unwrap_or(0.0);
    let mut d = String::new();
    let mut prev: Option<f64> = None;
    for (t, v) in &pts {
        let cmd = match prev {
            Some(p) if t - p <= (usual * 3.0).max(MIN_GAP) => 'L',
            _ => 'M',
        };
        let _ = write!(d, "{cmd}{:.1} {:.1}", x(*t), y(*v));
        prev = Some(*t);
    }
    let _ = write!(
        out,
        "<path class=\"line s{}\" data-series=\"{}\" data-points=\"{}\" d=\"{}\"/>",
        i % 6,
        escape(l.label),
        data_points(&pts),
        if d.is_empty() { "M0 0" } else { &d }
    );
    if let Some((t, v)) = pts.last() {
        let _ = write!(
            out,
            "<circle class=\"dot s{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\"/>",
            i % 6,
            x(*t),
            y(*v)
        );
    }
}

/// Flags (health per check) as a timeline: one row per line, green where
/// up, red where down, each run until the next point.
fn timeline(out: &mut String, c: &Chart, t0: f64, t1: f64) {
    let rows = c.lines.len().max(1) as f64;
    let h = (HEIGHT - 2.0 * PAD) / rows;
    let x = |t: f64| ((t - t0) / (t1 - t0) * WIDTH).clamp(0.0, WIDTH);
    for (i, l) in c.lines.iter().enumerate() {
        let pts = thin(l.points, true);
        let top = PAD + h * i as f64;
        let _ = write!(
            out,
            "<g class=\"row\" data-series=\"{}\" data-points=\"{}\">",
            escape(l.label),
            data_points(&pts)
        );
        let mut k = 0;
        while k < pts.len() {
            let up = pts[k].1 >= 0.5;
            let mut end = k;
            while end + 1 < pts.len() && (pts[end + 1].1 >= 0.5) == up {
                end += 1;
            }
            let until = pts.get(end + 1).map_or(t1, |p| p.0);
            let _ = write!(
                out,
                "<rect class=\"{}\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
                if up { "ok" } else { "bad" },
                x(pts[k].0),
                (x(until) - x(pts[k].0)).max(1.0),
                (h - 1.0).max(1.0)
            );
            k = end + 1;
        }
        out.push_str("</g>");
    }
}

/// What a screen reader says instead of the chart: the latest value of
/// each line, and the range of the first.
fn text_alternative(c: &Chart) -> String {
    let mut parts = Vec::new();
    for l in &c.lines {
        let pts: Vec<(f64, f64)> = finite(l.points).collect();
        let Some((t, v)) = pts.last() else {
            continue;
        };
        let name = if l.label.is_empty() || c.lines.len() == 1 {
            String::new()
        } else {
            format!("{}: ", l.label)
        };
        parts.push(format!(
            "{name}latest {} at {} ({} points)",
            format_value(c.unit, *v),
            clock(*t),
            pts.len()
        ));
    }
    let mut alt = format!("{} of {}: ", c.title, c.subject);
    if parts.is_empty() {
        alt.push_str("no data yet");
    } else {
        alt.push_str(&parts.join("; "));
    }
    if let Some(th) = c.threshold.filter(|v| v.is_finite()) {
        let _ = write!(alt, "; threshold {}", format_value(c.unit, th));
    }
    alt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart_of<'a>(lines: Vec<Line<'a>>, unit: Unit) -> Chart<'a> {
        Chart {
            id: "hit_ratio",
            title: "hit ratio (1m)",
            subject: "cache",
            unit,
            lines,
            threshold: None,
            band: None,
            now: 1060.0,
        }
    }

    /// One unlabelled line.
    fn single(points: &[(f64, f64)]) -> Vec<Line<'_>> {
        vec![Line { label: "", points }]
    }

    /// The `data-points` attribute of the `n`th element carrying one.
    fn points_attr(svg: &str, n: usize) -> &str {
        svg.split("data-points=\"")
            .nth(n + 1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no data-points #{n} in {svg}"))
    }

    #[test]
    fn labels_titles_and_subjects_are_escaped() {
        let pts = [(1000.0, 0.5)];
        let mut c = chart_of(
            vec![
                Line {
                    label: "<script>\"x\"&",
                    points: &pts,
                },
                Line {
                    label: "b",
                    points: &pts,
                },
            ],
            Unit::Ratio,
        );
        c.title = "a <b> title";
        c.subject = "t\"<img src=x>";
        let svg = chart(&c);
        assert!(!svg.contains("<script>") && !svg.contains("<img") && !svg.contains("<b> "));
        assert!(svg.contains("&lt;script&gt;&quot;x&quot;&amp;"), "{svg}");
        assert!(svg.contains("a &lt;b&gt; title"), "{svg}");
        assert!(svg.contains("t&quot;&lt;img src=x&gt;"), "{svg}");
    }

    #[test]
    fn an_empty_chart_says_so_in_its_text_alternative() {
        let svg = chart(&chart_of(vec![], Unit::Ratio));
        assert!(
            svg.contains("aria-label=\"hit ratio (1m) of cache: no data yet\""),
            "{svg}"
        );
        assert!(svg.contains("<title>hit ratio (1m) of cache: no data yet</title>"));
        assert!(!svg.contains("<path"), "{svg}");
        let empty_line = chart(&chart_of(single(&[]), Unit::Count));
        assert!(empty_line.contains("no data yet"), "{empty_line}");
    }

    #[test]
    fn one_point_is_a_dot_with_its_value_in_the_text() {
        let pts = [(1000.25, 0.875)];
        let svg = chart(&chart_of(single(&pts), Unit::Ratio));
        assert_eq!(points_attr(&svg, 0), "1000.25:0.875");
        assert!(svg.contains("<circle"), "{svg}");
        assert!(
            svg.contains("latest 87.5 % at 00:16:40 UTC (1 points)"),
            "{svg}"
        );
        assert!(!svg.contains("NaN"), "{svg}");
    }

    #[test]
    fn nan_and_infinite_points_are_left_out_and_never_drawn() {
        let pts = [
            (1000.0, 1.0),
            (1001.0, f64::NAN),
            (1002.0, f64::INFINITY),
            (1003.0, 2.0),
        ];
        let svg = chart(&chart_of(single(&pts), Unit::Count));
        assert_eq!(points_attr(&svg, 0), "1000:1,1003:2");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        let only_nan = [(1000.0, f64::NAN)];
        let svg = chart(&chart_of(single(&only_nan), Unit::Count));
        assert!(svg.contains("no data yet") && !svg.contains("NaN"), "{svg}");
        assert_eq!(format_value(Unit::Ratio, f64::NAN), "no value");
    }

    #[test]
    fn data_points_round_trip_and_a_long_gap_breaks_the_line() {
        let pts = [
            (1000.1, 0.1 + 0.2),
            (1001.1, 1.0 / 3.0),
            (1002.1, 0.5),
            (1030.1, 0.25),
        ];
        let svg = chart(&chart_of(single(&pts), Unit::Ratio));
        let read: Vec<(f64, f64)> = points_attr(&svg, 0)
            .split(',')
            .map(|p| {
                let (t, v) = p.split_once(':').unwrap();
                (t.parse().unwrap(), v.parse().unwrap())
            })
            .collect();
        assert_eq!(read, pts);
        let d = svg
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
    }

    /// A full history draws at most MAX_DRAWN points a line, its last one
    /// included, and a timeline keeps every change.
    #[test]
    fn long_lines_are_thinned_to_the_drawing_and_flag_changes_kept() {
        let pts: Vec<(f64, f64)> = (0..900).map(|i| (i as f64, (i % 7) as f64)).collect();
        let svg = chart(&chart_of(single(&pts), Unit::Count));
        let drawn = points_attr(&svg, 0).split(',').count();
        assert!(drawn <= MAX_DRAWN, "{drawn} points drawn");
        assert!(points_attr(&svg, 0).ends_with(",899:3"));
        let mut flags: Vec<(f64, f64)> = (0..900).map(|i| (i as f64, 1.0)).collect();
        flags[451].1 = 0.0;
        let svg = chart(&chart_of(single(&flags), Unit::Flag));
        assert!(points_attr(&svg, 0).contains(",451:0,452:1"), "{svg}");
    }

    #[test]
    fn thresholds_and_bands_are_drawn_and_named() {
        let pts = [(1000.0, 0.6), (1001.0, 0.65)];
        let mut c = chart_of(single(&pts), Unit::Plain);
        c.threshold = Some(0.7);
        c.band = Some((0.7, 0.75));
        let svg = chart(&c);
        assert!(svg.contains("class=\"threshold\"") && svg.contains("class=\"band\""));
        assert!(svg.contains("; threshold 0.70"), "{svg}");
    }

    #[test]
    fn values_read_as_people_write_them() {
        assert_eq!(format_value(Unit::Bytes, 3.5 * 1024.0 * 1024.0), "3.50 MiB");
        assert_eq!(format_value(Unit::Seconds, 0.0123), "12.3 ms");
        assert_eq!(format_value(Unit::PerSecond, 250.0), "250/s");
        assert_eq!(format_value(Unit::Flag, 0.0), "down");
        assert_eq!(span(200.0), "3 min 20 s");
        assert_eq!(clock(3661.0), "01:01:01 UTC");
    }
}
