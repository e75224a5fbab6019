//! Reads the Grafana dashboards in `dashboards/` and turns their panel
//! queries into plain PromQL. Shared by `tests/dashboards.rs` (static checks)
//! and the end-to-end test, which runs every query against a real Prometheus:
//!
//! ```ignore
//! mod support_dashboards;
//! for (dashboard, panel, expr) in support_dashboards::panel_queries() {
//!     let q = support_dashboards::substitute(&expr, ".+", ".+", ".+");
//!     // GET /api/v1/query?query=q
//! }
//! ```
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `dashboards/` of this crate.
pub fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Every `dashboards/*.json` with its parsed content, sorted by file name.
/// Panics with the file name when a file is not valid JSON.
pub fn dashboard_files() -> Vec<(PathBuf, Value)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dashboards_dir())
        .expect("dashboards/ exists")
        .map(|e| e.expect("readable dashboards/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", p.display()));
            (p, v)
        })
        .collect()
}

/// Every panel of a dashboard, including the ones nested in (collapsed) rows.
pub fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(nested) = p.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(p) = dashboard.get("panels") {
        walk(p, &mut out);
    }
    out
}

/// `(dashboard uid, panel title, expr)` for every Prometheus query of every
/// panel of every dashboard, Grafana variables still in place.
pub fn panel_queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (path, d) in dashboard_files() {
        let uid = d
            .get("uid")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| path.display().to_string());
        for p in all_panels(&d) {
            let title = p.get("title").and_then(Value::as_str).unwrap_or("");
            for t in p
                .get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(expr) = t.get("expr").and_then(Value::as_str) {
                    out.push((uid.clone(), title.to_owned(), expr.to_owned()));
                }
            }
        }
    }
    out
}

/// Replaces Grafana's variables in `expr` so that Prometheus can run it:
/// `$job`, `$instance`, `$target` (also as `${job}` or `${job:regex}`) by the
/// given values, inserted verbatim (the dashboards use them in `=~` matchers,
/// so pass a regex such as `.+` for "All"); `$__rate_interval` by `1m`,
/// `$__interval` by `15s`, `$__range` by `5m`. Anything else starting with
/// `$` is left as it is (a test checks no query has one).
pub fn substitute(expr: &str, job: &str, instance: &str, target: &str) -> String {
    substitute_with(expr, |name| match name {
        "job" => Some(job),
        "instance" => Some(instance),
        "target" => Some(target),
        _ => None,
    })
}

/// Grafana's interval variables as [`substitute`] replaces them:
/// `$__rate_interval` by `1m`, `$__interval` by `15s`, `$__range` by `5m`.
pub fn grafana_interval(name: &str) -> Option<&'static str> {
    match name {
        "__rate_interval" => Some("1m"),
        "__interval" => Some("15s"),
        "__range" => Some("5m"),
        _ => None,
    }
}

/// Replaces every `$name`, `${name}` and `${name:format}` for which
/// `variable(name)` has a value, and Grafana's interval variables
/// ([`grafana_interval`]); anything else starting with `$` stays as it is.
pub fn substitute_with<'a>(expr: &str, variable: impl Fn(&str) -> Option<&'a str>) -> String {
    let value = |name: &str| variable(name).or_else(|| grafana_interval(name));
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(braced) = after.strip_prefix('{')
            && let Some(end) = braced.find('}')
        {
            // ${name} or ${name:format}
            let inner = &braced[..end];
            let name = inner.split(':').next().unwrap_or(inner);
            if let Some(v) = value(name) {
                out.push_str(v);
                rest = &braced[end + 1..];
                continue;
            }
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if let Some(v) = value(&after[..len]) {
                out.push_str(v);
                rest = &after[len..];
                continue;
            }
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    out
}
