//! The status page (`/`) and its data as JSON (`/api/status`,
//! `/api/history`): what the store and the phase engine hold, copied out
//! once, then formatted without a lock.
//!
//! Decisions:
//! - Server-rendered HTML and inline SVG ([`svg`]), no chart library and
//!   nothing from the internet: the page works offline and costs a
//!   sidecar a few kilobytes of code.
//! - Targets that are down or degraded come first, with their last error.
//! - A tiny inline script reloads the page every 5 s; with `#layout` in the
//!   URL it instead writes every card's and chart's box into `data-rect`
//!   (what the browser tests check for overlaps) and, when framed, posts
//!   the measured DOM to the parent (headless Chromium's window is at least
//!   500 px wide: the tests frame the page to see it at 390 px).

pub mod signals;
pub mod svg;

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::{Value, json};

use crate::catalog::COLLECTOR_DEGRADED;
use crate::engine::history::{self, Series, Unit};
use crate::engine::{Store, TargetKey, TargetState};
use crate::phase::{PhaseSummary, TriggerKind, TriggerSummary};
use crate::poll::unix_now;
use signals::{SIGNALS, signal_ids};

/// HTML-escapes text for element content and double-quoted attributes
/// (every attribute of the page is double-quoted, so `'` stays as it is and
/// an error like "perfwatch's credentials" reads the same in the source).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A target's condition, in the order the page lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    /// The last poll failed.
    Down,
    /// Up, but part of its metrics is missing (`perfwatch_collector_degraded`).
    Degraded,
    /// No poll has finished yet.
    Waiting,
    /// The last poll succeeded.
    Up,
}

impl Condition {
    /// The word shown and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Down => "down",
            Condition::Degraded => "degraded",
            Condition::Waiting => "waiting",
            Condition::Up => "up",
        }
    }
}

/// One target as the page shows it.
#[derive(Debug, Clone)]
pub struct TargetView {
    /// Kind and name.
    pub key: TargetKey,
    /// Its condition.
    pub condition: Condition,
    /// Why it is degraded (the `reason` labels).
    pub degraded: Vec<String>,
    /// Its state in the store.
    pub state: TargetState,
    /// Its history.
    pub series: Vec<Series>,
}

/// Everything the page and `/api/status` show, copied out at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Targets, down and degraded first.
    pub targets: Vec<TargetView>,
    /// Phases as declared.
    pub phases: Vec<PhaseSummary>,
    /// Per phase and trigger (as in `phases`), its history.
    pub trigger_series: Vec<Vec<Vec<Series>>>,
    /// When it was taken (unix seconds).
    pub now: f64,
    /// The same moment, monotonic (for "last success … ago").
    pub at: Instant,
}

/// Copies what the page needs out of the store (each lock held only to
/// copy), with `phases` from the phase engine.
pub fn snapshot(store: &Store, phases: Vec<PhaseSummary>) -> Snapshot {
    let states = store.targets();
    let mut histories: std::collections::BTreeMap<TargetKey, Vec<Series>> =
        store.history(None).into_iter().collect();
    let mut targets: Vec<TargetView> = states
        .into_iter()
        .map(|(key, state)| {
            let degraded = degraded_reasons(&state);
            let condition = match (state.polled, state.up) {
                (false, _) => Condition::Waiting,
                (true, false) => Condition::Down,
                (true, true) if !degraded.is_empty() => Condition::Degraded,
                (true, true) => Condition::Up,
            };
            let series = histories.remove(&key).unwrap_or_default();
            TargetView {
                key,
                condition,
                degraded,
                state,
                series,
            }
        })
        .collect();
    // Stable: within a condition, the store's order (kind, then name).
    targets.sort_by_key(|t| t.condition);
    let trigger_series = phases
        .iter()
        .map(|p| {
            p.triggers
                .iter()
                .map(|t| store.trigger_history(&p.name, &t.name))
                .collect()
        })
        .collect();
    Snapshot {
        targets,
        phases,
        trigger_series,
        now: unix_now(),
        at: Instant::now(),
    }
}

/// The `reason`s of the target's `perfwatch_collector_degraded` samples at 1.
fn degraded_reasons(state: &TargetState) -> Vec<String> {
    let Some(f) = state
        .families
        .iter()
        .find(|f| f.name() == COLLECTOR_DEGRADED.name)
    else {
        return Vec::new();
    };
    f.get_metric()
        .iter()
        .filter(|m| m.get_gauge().get_value() >= 1.0)
        .filter_map(|m| {
            m.get_label()
                .iter()
                .find(|l| l.name() == "reason")
                .map(|l| l.value().to_owned())
        })
        .collect()
}

/// Why a trigger is (or is not) active, in words: its value against its
/// threshold, by how much, and since when.
pub fn why(t: &TriggerSummary, now: f64) -> String {
    let Some(v) = t.value else {
        return format!(
            "{}: no data (its selector matches no series perfwatch exports)",
            t.name
        );
    };
    let side = if t.fires_above { "above" } else { "below" };
    let past = if t.fires_above {
        v - t.threshold
    } else {
        t.threshold - v
    };
    let pct = if t.threshold != 0.0 {
        format!(" ({:.0} %)", past / t.threshold.abs() * 100.0)
    } else {
        String::new()
    };
    let value = svg::format_value(Unit::Plain, v);
    let threshold = svg::format_value(Unit::Plain, t.threshold);
    match (t.active, t.active_for) {
        (true, Some(d)) => format!(
            "{} is {value}, {side} its threshold {threshold} by {}{pct}, active since {} ({})",
            t.name,
            svg::format_value(Unit::Plain, past.abs()),
            svg::clock(now - d.as_secs_f64()),
            svg::span(d.as_secs_f64())
        ),
        (true, None) => format!("{} is {value}, active", t.name),
        (false, _) if past > 0.0 => format!(
            "{} is {value}, {side} its threshold {threshold}{pct}, not yet for its `for` duration",
            t.name
        ),
        (false, _) => format!(
            "{} is {value}, not {side} its threshold {threshold}",
            t.name
        ),
    }
}

/// `/api/status`: targets (down and degraded first) with their condition
/// and last error; phases with each trigger's state and why.
pub fn status_json(s: &Snapshot) -> Value {
    let targets: Vec<Value> = s
        .targets
        .iter()
        .map(|t| {
            json!({
                "collector": t.key.collector,
                "target": t.key.target,
                "state": t.condition.as_str(),
                "last_error": t.state.last_error,
                "degraded": t.degraded,
                "last_success_unix": t.state.last_success_unix,
                "last_poll_seconds": t.state.last_duration,
                "polls": t.state.polls,
            })
        })
        .collect();
    let phases: Vec<Value> = s
        .phases
        .iter()
        .map(|p| {
            let triggers: Vec<Value> = p
                .triggers
                .iter()
                .map(|t| {
                    let past = t.value.map(|v| {
                        if t.fires_above {
                            v - t.threshold
                        } else {
                            t.threshold - v
                        }
                    });
                    json!({
                        "name": t.name,
                        "kind": t.kind.as_str(),
                        "active": t.active,
                        "value": t.value,
                        "threshold": t.threshold,
                        "direction": if t.fires_above { "above" } else { "below" },
                        "clear": t.clear,
                        "active_since_unix": t.active_for.map(|d| s.now - d.as_secs_f64()),
                        "past_threshold": past,
                        "why": why(t, s.now),
                    })
                })
                .collect();
            json!({
                "name": p.name,
                "description": p.description,
                "active": p.active,
                "triggers": triggers,
            })
        })
        .collect();
    json!({
        "generated_unix": s.now,
        "targets": targets,
        "recommended_phase": crate::phase::recommended(&s.phases).map(|p| p.name.clone()),
        "phases": phases,
    })
}

fn series_json(series: &[Series]) -> Vec<Value> {
    series
        .iter()
        .map(|x| {
            json!({
                "signal": x.signal,
                "label": x.label,
                "unit": x.unit,
                "points": x.points.iter().map(|(t, v)| [*t, *v]).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// `/api/history`: every target's series (or only those of the targets
/// named `only`; None when there is no such target) and, unfiltered, every
/// phase trigger's.
pub fn history_json(store: &Store, only: Option<&str>, phases: &[PhaseSummary]) -> Option<Value> {
    let histories = store.history(only);
    let mut targets: Vec<Value> = histories
        .iter()
        .map(|(k, series)| {
            json!({
                "collector": k.collector,
                "target": k.target,
                "series": series_json(series),
            })
        })
        .collect();
    if let Some(name) = only {
        // A target without points yet is still a target.
        for k in store.targets().keys().filter(|k| k.target == name) {
            if !histories.iter().any(|(h, _)| h == k) {
                targets.push(json!({"collector": k.collector, "target": k.target, "series": []}));
            }
        }
        if targets.is_empty() {
            return None;
        }
        return Some(json!({"window_seconds": history::WINDOW, "targets": targets}));
    }
    let triggers: Vec<Value> = phases
        .iter()
        .flat_map(|p| {
            p.triggers.iter().map(|t| {
                json!({
                    "phase": p.name,
                    "trigger": t.name,
                    "series": series_json(&store.trigger_history(&p.name, &t.name)),
                })
            })
        })
        .collect();
    Some(json!({
        "window_seconds": history::WINDOW,
        "targets": targets,
        "phases": triggers,
    }))
}

const STYLE: &str = r#"
:root{--bg:#f6f7f9;--card:#fff;--fg:#1d232b;--muted:#5b6673;--line:#d8dde3;--ok:#1a7f37;--bad:#c62828;--warn:#a15c00;--band:rgba(198,40,40,.12);
--s0:#1f6feb;--s1:#d2691e;--s2:#8250df;--s3:#0a8a8a;--s4:#bf3989;--s5:#6e7781}
@media (prefers-color-scheme:dark){:root{--bg:#0f1419;--card:#1a2029;--fg:#e6e9ed;--muted:#9aa5b1;--line:#333c47;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--band:rgba(248,81,73,.18);
--s0:#58a6ff;--s1:#f0883e;--s2:#bc8cff;--s3:#39c5cf;--s4:#f778ba;--s5:#8b949e}}
*{box-sizing:border-box}
body{margin:0;padding:16px;background:var(--bg);color:var(--fg);font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif}
a{color:var(--s0)}
header.top{display:flex;flex-wrap:wrap;gap:4px 16px;align-items:baseline;margin-bottom:12px}
header.top h1{margin:0;font-size:20px}
.summary{margin:0 0 16px;color:var(--muted)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:16px;align-items:start}
@media (max-width:720px){.grid{grid-template-columns:minmax(0,1fr)}body{padding:10px}}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px;min-width:0;overflow:hidden}
.card.down{border-left:4px solid var(--bad)}.card.degraded{border-left:4px solid var(--warn)}
.card header{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
.card h3{margin:0;font-size:16px;overflow-wrap:anywhere}
.kind{color:var(--muted)}
.up,.ok{color:var(--ok)}.down,.bad{color:var(--bad)}.degraded,.waiting{color:var(--warn)}
.state{margin-left:auto;font-weight:600}
.error{color:var(--bad);overflow-wrap:anywhere;margin:6px 0}
.meta,.headline{color:var(--muted);font-size:12px;margin:4px 0;overflow-wrap:anywhere}
.charts{display:grid;grid-template-columns:minmax(0,1fr);gap:10px;margin-top:8px}
figure.chart{margin:0;min-width:0}
figcaption{display:flex;justify-content:space-between;gap:8px;font-size:12px;color:var(--muted)}
figcaption b{color:var(--fg)}
svg{display:block;width:100%;height:auto;background:var(--bg);border-radius:4px}
svg .line{fill:none;stroke-width:1.8;stroke-linejoin:round}
svg .threshold{stroke:var(--bad);stroke-dasharray:4 3;stroke-width:1}
svg .band{fill:var(--band)}
svg rect.ok{fill:var(--ok)}svg rect.bad{fill:var(--bad)}
svg text{fill:var(--muted);font-size:12px}
.axis{display:flex;justify-content:space-between;font-size:11px;color:var(--muted)}
.legend{display:flex;flex-wrap:wrap;gap:2px 12px;margin:2px 0 0;padding:0;list-style:none;font-size:11px}
.legend li::before{content:"";display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle;background:currentColor}
.s0{stroke:var(--s0);color:var(--s0);fill:var(--s0)}.s1{stroke:var(--s1);color:var(--s1);fill:var(--s1)}.s2{stroke:var(--s2);color:var(--s2);fill:var(--s2)}
.s3{stroke:var(--s3);color:var(--s3);fill:var(--s3)}.s4{stroke:var(--s4);color:var(--s4);fill:var(--s4)}.s5{stroke:var(--s5);color:var(--s5);fill:var(--s5)}
svg .line.s0,svg .line.s1,svg .line.s2,svg .line.s3,svg .line.s4,svg .line.s5{fill:none}
.trigger{border-top:1px solid var(--line);padding-top:8px;margin-top:8px}
.trigger p{margin:0 0 4px;overflow-wrap:anywhere}
h2{font-size:17px;margin:24px 0 10px}
table.top{width:100%;table-layout:fixed;border-collapse:collapse;font-size:11px;margin-top:8px}
table.top caption{text-align:left;color:var(--muted);font-size:12px}
table.top th,table.top td{border-top:1px solid var(--line);padding:2px 4px;text-align:left;vertical-align:top}
table.top td:first-child,table.top th:first-child{width:70%;overflow-wrap:anywhere;font-family:ui-monospace,monospace}
"#;

/// Reloads every 5 s; with `#layout`, measures instead (for the tests).
const SCRIPT: &str = r#"(function(){
if(location.hash==='#layout'){
var box=function(e){var b=e.getBoundingClientRect();return [b.left+scrollX,b.top+scrollY,b.width,b.height].map(function(n){return n.toFixed(1)}).join(',')};
document.querySelectorAll('.card,.chart').forEach(function(e){e.setAttribute('data-rect',box(e))});
document.body.setAttribute('data-viewport',innerWidth+','+document.documentElement.scrollWidth);
if(parent!==window)parent.postMessage(document.documentElement.outerHTML,'*');
return;}
setTimeout(function(){location.reload()},5000);
})();"#;

/// The status page.
pub fn page(s: &Snapshot) -> String {
    let mut html = String::with_capacity(64 * 1024);
    html.push_str(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">",
        "<meta name=\"color-scheme\" content=\"light dark\"><title>perfwatch</title><style>"
    ));
    html.push_str(STYLE);
    let _ = write!(
        html,
        "</style></head><body><header class=\"top\"><h1>perfwatch</h1>\
         <span><a href=\"/metrics\">metrics</a> · <a href=\"/api/status\">/api/status</a> · \
         <a href=\"/api/history\">/api/history</a> · <a href=\"/-/healthy\">healthy</a> · \
         <a href=\"/-/ready\">ready</a></span><span class=\"meta\">{} · refreshes every 5 s</span></header>",
        escape(&svg::clock(s.now))
    );
    summary(&mut html, s);
    html.push_str("<section id=\"targets\" class=\"grid\">");
    for t in &s.targets {
        card(&mut html, t, s);
    }
    html.push_str("</section>");
    phases(&mut html, s);
    html.push_str("<script>");
    html.push_str(SCRIPT);
    html.push_str("</script></body></html>\n");
    html
}

fn summary(html: &mut String, s: &Snapshot) {
    let mut counts: Vec<String> = Vec::new();
    for c in [
        Condition::Down,
        Condition::Degraded,
        Condition::Waiting,
        Condition::Up,
    ] {
        let n = s.targets.iter().filter(|t| t.condition == c).count();
        if n > 0 {
            counts.push(format!("{n} {}", c.as_str()));
        }
    }
    let _ = write!(
        html,
        "<p class=\"summary\">{} targets: {}.",
        s.targets.len(),
        escape(&counts.join(", "))
    );
    if !s.phases.is_empty() {
        html.push(' ');
        html.push_str(&escape(&recommendation(s)));
    }
    html.push_str("</p>");
}

/// The recommended phase and why, in one sentence.
fn recommendation(s: &Snapshot) -> String {
    match crate::phase::recommended(&s.phases) {
        Some(p) => {
            let reasons: Vec<String> = p
                .triggers
                .iter()
                .filter(|t| t.active && t.kind == TriggerKind::Signal)
                .map(|t| why(t, s.now))
                .collect();
            format!(
                "Recommended phase: {} ({}), because {}.",
                p.name,
                p.description,
                reasons.join("; ")
            )
        }
        None => "No phase is recommended: no phase's rule is met.".into(),
    }
}

fn card(html: &mut String, t: &TargetView, s: &Snapshot) {
    let cond = t.condition.as_str();
    let _ = write!(
        html,
        "<article class=\"card {cond}\" data-collector=\"{}\" data-target=\"{}\" data-state=\"{cond}\">\
         <header><h3>{}</h3><span class=\"kind\">{}</span><span class=\"state {cond}\"><span class=\"{cond}\">{cond}</span></span></header>",
        escape(t.key.collector),
        escape(&t.key.target),
        escape(&t.key.target),
        escape(t.key.collector),
    );
    if let Some(e) = &t.state.last_error {
        let _ = write!(html, "<p class=\"error\">{}</p>", escape(e));
    }
    if !t.degraded.is_empty() {
        let _ = write!(
            html,
            "<p class=\"error degraded\">degraded: {}</p>",
            escape(&t.degraded.join(", "))
        );
    }
    let last = match t.state.last_success {
        Some(at) => format!(
            "last success {} ago, poll took {:.1} ms",
            svg::span(s.at.saturating_duration_since(at).as_secs_f64()),
            t.state.last_duration * 1000.0
        ),
        None => "no successful poll yet".into(),
    };
    let _ = write!(html, "<p class=\"meta\">{}</p>", escape(&last));
    if !t.state.headline.is_empty() {
        let parts: Vec<String> = t
            .state
            .headline
            .iter()
            .map(|(k, v)| format!("{}: {}", escape(k), escape(v)))
            .collect();
        let _ = write!(html, "<p class=\"headline\">{}</p>", parts.join(" · "));
    }
    let ids = signal_ids(t.key.collector);
    if !ids.is_empty() {
        html.push_str("<div class=\"charts\">");
        for &id in &ids {
            let series: Vec<&Series> = t.series.iter().filter(|x| x.signal == id).collect();
            let first = SIGNALS
                .iter()
                .find(|x| x.id == id && x.kinds.contains(&t.key.collector));
            let Some(def) = first else { continue };
            // A signal the target does not report (the hit ratio of a
            // health endpoint) takes no room; a target with no points at
            // all (not polled yet, or down for 15 minutes) shows its first
            // chart saying "no data yet".
            let placeholder = t.series.is_empty() && id == ids[0];
            if series.is_empty() && !placeholder {
                continue;
            }
            let lines = series
                .iter()
                .map(|x| svg::Line {
                    label: &x.label,
                    points: &x.points,
                })
                .collect();
            html.push_str(&svg::chart(&svg::Chart {
                id,
                title: def.title,
                subject: &t.key.target,
                unit: def.unit,
                lines,
                threshold: None,
                band: None,
                now: s.now,
            }));
        }
        html.push_str("</div>");
    }
    top_queries(html, t);
    html.push_str("</article>");
}

/// How many query classes a card lists.
const TOP_QUERIES: usize = 5;

/// The top query classes by total time of a slow-log target (or a
/// database target reading statement statistics): the `/api/slow-queries`
/// list the collector keeps, its first [`TOP_QUERIES`], each with what its
/// plan says (issue 19): the index advice, or the plan's table accesses,
/// or why it is not planned; and its example where the target keeps them.
fn top_queries(html: &mut String, t: &TargetView) {
    let Some(Value::Array(classes)) = &t.state.details else {
        return;
    };
    if classes.is_empty() {
        return;
    }
    html.push_str(
        "<table class=\"top\"><caption>top query classes by total time</caption>\
         <tr><th>query</th><th>count</th><th>p95</th><th>plan</th></tr>",
    );
    for c in classes.iter().take(TOP_QUERIES) {
        let query = c["query"].as_str().unwrap_or("");
        let count = c["count"].as_u64().unwrap_or(0);
        let p95 = c["p95_seconds"]
            .as_f64()
            .map_or("–".to_owned(), |v| svg::format_value(Unit::Seconds, v));
        // The class's database and id on the row: what tells rows apart
        // (the text may be cut or shared across databases) and what the
        // browser tests match against `/api/slow-queries`.
        let _ = write!(
            html,
            "<tr data-db=\"{}\" data-fingerprint=\"{}\"><td>{}",
            escape(c["db"].as_str().unwrap_or("")),
            escape(c["fingerprint"].as_str().unwrap_or("")),
            escape(query)
        );
        if let Some(example) = c["example"].as_str() {
            let _ = write!(
                html,
                "<details><summary>example</summary><code>{}</code></details>",
                escape(example)
            );
        }
        let _ = write!(
            html,
            "</td><td>{count}</td><td>{}</td><td class=\"plan\">{}</td></tr>",
            escape(&p95),
            escape(&plan_words(c))
        );
    }
    html.push_str("</table>");
}

/// What a class's plan says, in words: the advice (with the p95 before and
/// after once applied), else its table accesses, else why there is none.
fn plan_words(c: &Value) -> String {
    let seconds = |v: &Value| {
        v.as_f64()
            .map_or("–".to_owned(), |x| svg::format_value(Unit::Seconds, x))
    };
    let advice = &c["advice"];
    if let Some(text) = advice["text"].as_str() {
        return match advice["state"].as_str() {
            Some("applied") => format!(
                "applied: index on {}({}); p95 {} before, {} after",
                advice["table"].as_str().unwrap_or(""),
                advice["columns"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
                seconds(&advice["p95_before_seconds"]),
                seconds(&advice["p95_after_seconds"])
            ),
            _ => text.to_owned(),
        };
    }
    let plan = &c["plan"];
    if let Some(error) = plan["error"].as_str() {
        return format!("no plan: {error}");
    }
    if let Some(scans) = plan["scans"].as_array() {
        let words: Vec<String> = scans
            .iter()
            .take(4)
            .map(|s| {
                format!(
                    "{} scan of {}",
                    s["kind"].as_str().unwrap_or("?").replace('_', "-"),
                    s["table"].as_str().unwrap_or("?")
                )
            })
            .collect();
        return if words.is_empty() {
            "no table read".into()
        } else {
            words.join(", ")
        };
    }
    match c["plan_skipped"].as_str() {
        Some(why) => format!("not planned ({})", why.replace('_', " ")),
        None => "–".into(),
    }
}

fn phases(html: &mut String, s: &Snapshot) {
    if s.phases.is_empty() {
        return;
    }
    html.push_str("<h2>Phases</h2><section id=\"phases\" class=\"grid\">");
    for (p, series) in s.phases.iter().zip(&s.trigger_series) {
        let (class, word) = if p.active {
            ("down", "ACTIVE")
        } else {
            ("up", "inactive")
        };
        let _ = write!(
            html,
            "<article class=\"card phase\" data-phase=\"{}\"><header><h3>{}</h3>\
             <span class=\"state {class}\">{word}</span></header><p class=\"meta\">{}</p>",
            escape(&p.name),
            escape(&p.name),
            escape(&p.description)
        );
        for (t, hist) in p.triggers.iter().zip(series) {
            let (class, word) = if t.active {
                ("down", "ACTIVE")
            } else {
                ("up", "inactive")
            };
            // Health triggers watch the phase once in place; they never
            // recommend it, so the page says which is which.
            let health = if t.kind == TriggerKind::Health {
                " [health]"
            } else {
                ""
            };
            let _ = write!(
                html,
                "<div class=\"trigger\" data-trigger=\"{}\"><p><b>{}{health}</b>: <span class=\"{class}\">{word}</span></p><p class=\"meta\">{}</p>",
                escape(&t.name),
                escape(&t.name),
                escape(&why(t, s.now))
            );
            let values = hist.iter().find(|x| x.signal == "value");
            let points = values.map_or(&[][..], |x| &x.points[..]);
            let band = t.clear.map(|c| (t.threshold, c));
            html.push_str(&svg::chart(&svg::Chart {
                id: "trigger",
                title: &format!(
                    "value vs threshold ({} {})",
                    if t.fires_above { "above" } else { "below" },
                    svg::format_value(Unit::Plain, t.threshold)
                ),
                subject: &format!("{} / {}", p.name, t.name),
                unit: Unit::Plain,
                lines: vec![svg::Line { label: "", points }],
                threshold: Some(t.threshold),
                band,
                now: s.now,
            }));
            html.push_str("</div>");
        }
        html.push_str("</article>");
    }
    html.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn trigger(value: Option<f64>, active_for: Option<Duration>) -> TriggerSummary {
        TriggerSummary {
            name: "cache_hit_ratio".into(),
            kind: TriggerKind::Signal,
            active: active_for.is_some(),
            value,
            threshold: 0.7,
            fires_above: false,
            clear: Some(0.75),
            active_for,
        }
    }

    #[test]
    fn why_names_the_trigger_its_distance_and_since_when() {
        let w = why(&trigger(Some(0.56), Some(Duration::from_secs(200))), 3661.0);
        assert_eq!(
            w,
            "cache_hit_ratio is 0.56, below its threshold 0.70 by 0.14 (20 %), active since 00:57:41 UTC (3 min 20 s)"
        );
        assert!(why(&trigger(None, None), 0.0).contains("no data"));
        assert!(why(&trigger(Some(0.9), None), 0.0).contains("not below"));
    }

    #[test]
    fn escape_covers_quotes_and_markup() {
        assert_eq!(escape("<a href='x'>\"&"), "&lt;a href='x'&gt;&quot;&amp;");
    }

    #[test]
    fn the_page_lists_down_targets_first_and_escapes_names_and_errors() {
        use crate::poll::{ErrorReason, PollError, PollOutput, Timing};
        let store = Store::new();
        let timing = Timing {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        };
        let a = TargetKey {
            collector: "redis",
            target: "a<b>".into(),
        };
        let z = TargetKey {
            collector: "redis",
            target: "z".into(),
        };
        store.register(a.clone(), timing, None);
        store.register(z.clone(), timing, None);
        let took = Duration::from_millis(1);
        store.record_success(&a, PollOutput::default(), took);
        store.record_failure(
            &z,
            &PollError::new(ErrorReason::Connect, "redis target \"z\": <refused>"),
            took,
            &[],
        );
        store.record_success_with(
            &a,
            PollOutput::default(),
            Some(serde_json::json!([
                {"fingerprint": "0a1b", "db": "app", "query": "SELECT <b> FROM t WHERE id = ?", "count": 7, "p95_seconds": 0.25},
                {"query": "select a", "fingerprint": "A1", "count": 1,
                 "example": "select a from t where x = '<pii>'",
                 "plan": {"error": null, "scans": [{"kind": "seq", "table": "t"}, {"kind": "index_only", "table": "u"}]}},
                {"query": "select b", "count": 1, "advice": {"state": "applied", "table": "t",
                 "columns": ["x", "y"], "text": "an index on t(x, y) would serve class B1…: …",
                 "p95_before_seconds": 0.25, "p95_after_seconds": 0.001}},
                {"query": "select c", "count": 1, "advice": {"state": "suggested", "text": "an index on t(x) would serve class C1…: t read whole (20 k rows)"}},
                {"query": "update d", "count": 1, "plan_skipped": "not_select"},
            ])),
            took,
        );
        let html = page(&snapshot(&store, Vec::new()));
        assert!(
            html.contains(
                "<tr data-db=\"app\" data-fingerprint=\"0a1b\"><td>SELECT &lt;b&gt; FROM t WHERE id = ?</td><td>7</td><td>250 ms</td><td class=\"plan\">–</td>"
            ),
            "the top query classes, escaped: {html}"
        );
        for cell in [
            "<tr data-db=\"\" data-fingerprint=\"A1\"><td>select a<details><summary>example</summary><code>select a from t where x = '&lt;pii&gt;'</code></details></td>",
            "<td class=\"plan\">seq scan of t, index-only scan of u</td>",
            "<td class=\"plan\">applied: index on t(x, y); p95 250 ms before, 1 ms after</td>",
            "<td class=\"plan\">an index on t(x) would serve class C1…: t read whole (20 k rows)</td>",
            "<td class=\"plan\">not planned (not select)</td>",
        ] {
            assert!(html.contains(cell), "{cell} in {html}");
        }
        let z_at = html.find("data-target=\"z\"").unwrap();
        let a_at = html.find("data-target=\"a&lt;b&gt;\"").unwrap();
        assert!(z_at < a_at, "the down target comes first");
        assert!(html.contains("redis target &quot;z&quot;: &lt;refused&gt;"));
        assert!(!html.contains("<refused>") && !html.contains("a<b>"));
        assert!(html.contains("no data yet"), "empty charts say so");
    }
}
