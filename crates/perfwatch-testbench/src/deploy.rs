//! The repository's alert rules and example Prometheus and Alertmanager
//! configs, rendered for a throwaway stack (the end-to-end test and
//! `perfwatch-demo` run exactly these files, with a few literal lines
//! replaced).
//!
//! The files are compiled in, so the demo binary needs no checkout.

/// `alerts/perfwatch.rules.yml`: the alerting and recording rules.
pub const RULES: &str = include_str!("../../../alerts/perfwatch.rules.yml");
/// Path of [`RULES`] in the repository, for messages.
pub const RULES_FILE: &str = "alerts/perfwatch.rules.yml";
/// `deploy/prometheus/prometheus.yml`.
pub const PROMETHEUS_EXAMPLE: &str = include_str!("../../../deploy/prometheus/prometheus.yml");
/// Path of [`PROMETHEUS_EXAMPLE`] in the repository, for messages.
pub const PROMETHEUS_EXAMPLE_FILE: &str = "deploy/prometheus/prometheus.yml";
/// `deploy/alertmanager/alertmanager.yml`.
pub const ALERTMANAGER_EXAMPLE: &str =
    include_str!("../../../deploy/alertmanager/alertmanager.yml");
/// Path of [`ALERTMANAGER_EXAMPLE`] in the repository, for messages.
pub const ALERTMANAGER_EXAMPLE_FILE: &str = "deploy/alertmanager/alertmanager.yml";
/// Where the Prometheus example expects the rules (relative to its config):
/// the name to give [`RULES`] in
/// [`PrometheusServer::start`](super::PrometheusServer::start).
pub const RULES_IN_PROMETHEUS: &str = "rules/perfwatch.rules.yml";
/// The job name of the example's scrape config.
pub const JOB: &str = "perfwatch";

/// What every `runbook_url` of [`RULES`] starts with: `docs/runbooks.md`,
/// relative to the repository, then `#` and the alert's name in lower case.
pub const RUNBOOKS_RELATIVE: &str = "docs/runbooks.md";

/// [`RULES`] (or a variant of it) with every runbook link under `base`
/// instead of [`RUNBOOKS_RELATIVE`]: what `scripts/render-rules.sh
/// --runbook-base <base>` prints for the rules file (`tests/rules.rs`
/// checks that the two agree). Only the quoted value's prefix changes; the
/// anchors stay.
///
/// # Panics
///
/// When `rules` has no runbook link to replace, or `base` holds a quote,
/// white space or `#` (the script refuses those too).
pub fn rules_with_runbook_base(rules: &str, base: &str) -> String {
    assert!(
        !base.contains(['\'', '#']) && !base.contains(char::is_whitespace),
        "runbook base `{base}` must not contain a quote, white space or '#'"
    );
    let relative = format!("runbook_url: '{RUNBOOKS_RELATIVE}#");
    assert!(
        rules.contains(&relative),
        "the rules have no line with `{relative}`"
    );
    rules.replace(&relative, &format!("runbook_url: '{base}#"))
}

/// Renders an example config: every `(from, to)` replaces one literal
/// substring that must occur exactly once in the template, so an edit of the
/// example that drops or duplicates one of them fails loudly instead of
/// silently running something else.
///
/// # Panics
///
/// When a `from` does not occur exactly once (the compiled-in example and
/// this module disagree: a bug, caught by the tests).
pub fn render(name: &str, template: &str, replacements: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (from, to) in replacements {
        let n = template.matches(from).count();
        assert_eq!(
            n, 1,
            "{name}: `{from}` is replaced and must occur exactly once, found {n} times"
        );
        out = out.replace(from, to);
    }
    out
}

/// [`PROMETHEUS_EXAMPLE`] with 1 s scrape and evaluation intervals, scraping
/// `perfwatch` and alerting to 127.0.0.1:`alertmanager_port`.
pub fn prometheus_config(perfwatch: std::net::SocketAddr, alertmanager_port: u16) -> String {
    let scrape = format!("- targets: [\"{perfwatch}\"]");
    let alerting = format!("- targets: [\"127.0.0.1:{alertmanager_port}\"]");
    render(
        PROMETHEUS_EXAMPLE_FILE,
        PROMETHEUS_EXAMPLE,
        &[
            ("scrape_interval: 15s", "scrape_interval: 1s"),
            ("evaluation_interval: 15s", "evaluation_interval: 1s"),
            ("- targets: [\"127.0.0.1:9896\"]", &scrape),
            ("- targets: [\"127.0.0.1:9093\"]", &alerting),
        ],
    )
}

/// The receivers of [`ALERTMANAGER_EXAMPLE`], by the `severity` label it
/// routes on (the top-level route's receiver takes warnings and anything
/// without a severity).
pub const RECEIVER_BY_SEVERITY: [(&str, &str); 3] = [
    ("critical", "perfwatch-critical"),
    ("warning", "perfwatch-warning"),
    ("info", "perfwatch-info"),
];

/// [`ALERTMANAGER_EXAMPLE`] delivering every receiver to `webhook_url` (the
/// notification's `receiver` field tells them apart) with `group_wait` and
/// `group_interval` of 1 s (and a 1 h `repeat_interval`, so every
/// notification is a state change).
pub fn alertmanager_config(webhook_url: &str) -> String {
    let url = format!("- url: {webhook_url}");
    render(
        ALERTMANAGER_EXAMPLE_FILE,
        ALERTMANAGER_EXAMPLE,
        &[
            ("group_wait: 30s", "group_wait: 1s"),
            ("group_interval: 5m", "group_interval: 1s"),
            ("repeat_interval: 4h", "repeat_interval: 1h"),
            ("- url: http://127.0.0.1:5001/critical", &url),
            ("- url: http://127.0.0.1:5001/warning", &url),
            ("- url: http://127.0.0.1:5001/info", &url),
        ],
    )
}

/// `for:` (and `keep_firing_for:`) of every rule in the fast variant.
pub const FAST_FOR: &str = "2s";

/// The fast variant of the alert rules: the real file with exactly two kinds
/// of textual change, so what fires is the real expressions, within seconds.
///
/// 1. Every `for: <duration>` and `keep_firing_for: <duration>` line (a YAML
///    key at the start of a line, after indentation or `- `) gets
///    [`FAST_FOR`]. Trailing comments are kept.
/// 2. Every `window="5m"` and `window="15m"` label matcher (either quote
///    style) becomes `window="1m"`: perfwatch computes
///    `perfwatch_cache_hit_ratio` and `perfwatch_cache_lookups_in_window` over
///    1m, 5m and 15m of poll history, and the 1m window is the one a
///    workload can dominate in seconds.
///
/// Range selectors (`[5m]`) are left alone: shortening them would change
/// what `rate()` thresholds mean.
pub fn rules_fast_variant(rules: &str) -> String {
    let mut out = String::with_capacity(rules.len());
    for line in rules.split_inclusive('\n') {
        out.push_str(&rewrite_for_line(line).unwrap_or_else(|| line.to_owned()));
    }
    for window in ["5m", "15m"] {
        for q in ['"', '\''] {
            out = out.replace(
                &format!("window={q}{window}{q}"),
                &format!("window={q}1m{q}"),
            );
        }
    }
    out
}

/// `    for: 10m  # x` → `    for: 2s  # x`; `None` for any other line.
pub fn rewrite_for_line(line: &str) -> Option<String> {
    let body = line.trim_end_matches(['\n', '\r']);
    let ending = &line[body.len()..];
    let indent_len = body.len() - body.trim_start().len();
    let (indent, rest) = body.split_at(indent_len);
    let (dash, rest) = match rest.strip_prefix("- ") {
        Some(r) => ("- ", r.trim_start()),
        None => ("", rest),
    };
    let (key, value) = rest.split_once(':')?;
    if key != "for" && key != "keep_firing_for" {
        return None;
    }
    let (duration, comment) = match value.find('#') {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    let duration = duration.trim();
    let looks_like_duration = !duration.is_empty()
        && duration.starts_with(|c: char| c.is_ascii_digit())
        && duration.chars().all(|c| c.is_ascii_alphanumeric());
    if !looks_like_duration {
        return None;
    }
    let comment = if comment.is_empty() {
        String::new()
    } else {
        format!("  {comment}")
    };
    Some(format!("{indent}{dash}{key}: {FAST_FOR}{comment}{ending}"))
}
