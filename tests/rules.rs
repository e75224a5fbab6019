//! The alerting and recording rules in `alerts/perfwatch.rules.yml`:
//! `promtool check rules`, the `promtool test rules` unit tests in
//! `alerts/tests/`, the generated PrometheusRule in sync, the runbook links
//! under one configurable base, and the conventions every alert follows
//! (severity, annotations, a runbook section, unit tests that fire and stay
//! quiet, rate() only of counters, only metric names a metric catalog
//! declares).

mod support_commands;

mod support_promql;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use perfwatch_testbench::deploy::{RUNBOOKS_RELATIVE, rules_with_runbook_base};
use perfwatch_testbench::find_binary;
use promql_parser::parser::{self, Expr};
use serde_yaml_ng::Value;
use support_commands::output_ok;
use support_promql::Place;

const RULES: &str = "alerts/perfwatch.rules.yml";
const PROMETHEUS_RULE: &str = "deploy/kubernetes/prometheusrule.yaml";
const RUNBOOKS: &str = "docs/runbooks.md";
/// Series Prometheus makes itself for every scrape target, which alerts
/// about perfwatch being scraped at all may use.
const PROMETHEUS_OWN_SERIES: &[&str] = &["up"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn promtool() -> PathBuf {
    find_binary("promtool", "prometheus").unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `bash script args` in the repository; its stdout.
fn script_stdout(script: &str, args: &[&str]) -> Vec<u8> {
    output_ok(
        Command::new("bash")
            .arg(script)
            .args(args)
            .current_dir(root()),
    )
    .stdout
}

/// Runs `cmd` in the repository; its stdout and stderr.
fn run(cmd: &mut Command) -> String {
    let out = output_ok(cmd.current_dir(root()));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn unit_test_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("alerts/tests"))
        .expect("alerts/tests exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no unit tests in alerts/tests");
    files
}

/// Every rule of the rules file, as YAML mappings.
fn rules() -> Vec<Value> {
    rules_of(&yaml(&root().join(RULES)))
}

/// Every rule of a rules document.
fn rules_of(doc: &Value) -> Vec<Value> {
    doc["groups"]
        .as_sequence()
        .expect("groups is a list")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules is a list").clone())
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

#[test]
fn promtool_check_rules_is_clean() {
    let out = run(Command::new(promtool()).args(["check", "rules", RULES]));
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_unit_tests_pass() {
    let mut cmd = Command::new(promtool());
    cmd.args(["test", "rules"]).args(unit_test_files());
    let out = run(&mut cmd);
    assert!(!out.contains("FAILED"), "{out}");
}

#[test]
fn prometheusrule_is_generated_from_the_rules_file() {
    let generated = script_stdout("scripts/gen-prometheusrule.sh", &["--stdout"]);
    let committed = std::fs::read(root().join(PROMETHEUS_RULE)).expect("prometheusrule.yaml");
    assert!(
        generated == committed,
        "{PROMETHEUS_RULE} is out of date: run scripts/gen-prometheusrule.sh"
    );

    // The resource's spec is exactly the rules file's content.
    let resource = yaml(&root().join(PROMETHEUS_RULE));
    assert_eq!(
        str_of(&resource, "apiVersion"),
        Some("monitoring.coreos.com/v1")
    );
    assert_eq!(str_of(&resource, "kind"), Some("PrometheusRule"));
    assert!(str_of(&resource["metadata"], "name").is_some());
    assert_eq!(resource["spec"], yaml(&root().join(RULES)));
}

/// One base moves every runbook link, the same way for the plain rules file
/// (`scripts/render-rules.sh`), the PrometheusRule
/// (`scripts/gen-prometheusrule.sh`) and the test stack
/// (`deploy::rules_with_runbook_base`); nothing else changes.
#[test]
fn runbook_links_move_to_one_configurable_base() {
    let base = "https://git.example.com/ops/perfwatch/-/blob/main/docs/runbooks.md";
    let committed = std::fs::read_to_string(root().join(RULES)).expect("rules file");
    let rendered = String::from_utf8(script_stdout(
        "scripts/render-rules.sh",
        &["--runbook-base", base],
    ))
    .expect("utf-8");
    assert_eq!(rendered, rules_with_runbook_base(&committed, base));
    let as_is = script_stdout("scripts/render-rules.sh", &[]);
    assert!(
        as_is == committed.as_bytes(),
        "without a base the rules stay as committed"
    );

    let doc: Value = serde_yaml_ng::from_str(&rendered).expect("rendered rules are YAML");
    let links: Vec<String> = rules_of(&doc)
        .iter()
        .filter_map(|r| str_of(&r["annotations"], "runbook_url").map(str::to_owned))
        .collect();
    let alerts: Vec<String> = rules()
        .iter()
        .filter_map(|r| str_of(r, "alert").map(|a| format!("{base}#{}", a.to_lowercase())))
        .collect();
    assert_eq!(links, alerts, "one link per alert, under the base");
    // Only the links changed.
    let changed = committed
        .lines()
        .zip(rendered.lines())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        changed,
        alerts.len(),
        "lines other than runbook links changed"
    );

    let resource = String::from_utf8(script_stdout(
        "scripts/gen-prometheusrule.sh",
        &["--runbook-base", base, "--stdout"],
    ))
    .expect("utf-8");
    let resource: Value = serde_yaml_ng::from_str(&resource).expect("PrometheusRule is YAML");
    assert_eq!(resource["spec"], doc);

    for bad in ["it's", "a b", "x#y"] {
        let out = Command::new("bash")
            .args(["scripts/render-rules.sh", "--runbook-base", bad])
            .current_dir(root())
            .output()
            .expect("bash runs");
        assert!(!out.status.success(), "base {bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(bad), "the error names the bad base: {err}");
    }
}

#[test]
fn every_alert_has_severity_annotations_and_a_runbook_section() {
    let runbooks = std::fs::read_to_string(root().join(RUNBOOKS)).expect("docs/runbooks.md");
    let headings: BTreeSet<&str> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::trim)
        .collect();
    let mut problems = Vec::new();
    let mut alerts = 0;
    for rule in rules() {
        let Some(alert) = str_of(&rule, "alert") else {
            continue;
        };
        alerts += 1;
        let severity = str_of(&rule["labels"], "severity");
        if !matches!(severity, Some("critical" | "warning" | "info")) {
            problems.push(format!(
                "{alert}: severity {severity:?} is not critical|warning|info"
            ));
        }
        let ann = &rule["annotations"];
        for key in ["summary", "description", "runbook_url"] {
            if str_of(ann, key).is_none_or(str::is_empty) {
                problems.push(format!("{alert}: no {key} annotation"));
            }
        }
        if !str_of(ann, "description").is_some_and(|d| d.contains("$value")) {
            problems.push(format!("{alert}: description does not show $value"));
        }
        let want = format!("{RUNBOOKS_RELATIVE}#{}", alert.to_lowercase());
        if str_of(ann, "runbook_url") != Some(want.as_str()) {
            problems.push(format!("{alert}: runbook_url is not {want}"));
        }
        // GitHub's anchor of "## CacheHitRatioLow" is #cachehitratiolow.
        if !headings.contains(alert) {
            problems.push(format!("{alert}: no \"## {alert}\" section in {RUNBOOKS}"));
        }
    }
    assert!(alerts > 0, "no alerts in {RULES}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_alert_has_unit_tests_that_fire_and_stay_quiet() {
    // alertname -> (a test expects it firing, a test expects it quiet)
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for file in unit_test_files() {
        let doc = yaml(&file);
        for test in doc["tests"].as_sequence().into_iter().flatten() {
            for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
                let name = str_of(case, "alertname").expect("alertname").to_owned();
                let firing = case["exp_alerts"]
                    .as_sequence()
                    .is_some_and(|a| !a.is_empty());
                let e = seen.entry(name).or_default();
                if firing {
                    e.0 = true;
                } else {
                    e.1 = true;
                }
            }
        }
    }
    let alerts: BTreeSet<String> = rules()
        .iter()
        .filter_map(|r| str_of(r, "alert").map(str::to_owned))
        .collect();
    let mut problems = Vec::new();
    for alert in &alerts {
        match seen.get(alert) {
            None => problems.push(format!("{alert}: no unit test")),
            Some((fires, quiet)) => {
                if !fires {
                    problems.push(format!("{alert}: no unit test where it fires"));
                }
                if !quiet {
                    problems.push(format!("{alert}: no unit test where it stays quiet"));
                }
            }
        }
    }
    for name in seen.keys() {
        if !alerts.contains(name) {
            problems.push(format!("unit tests name {name}, which is no alert"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Metric names a PromQL expression selects, and those it takes a
/// counter-only function (`rate`, `irate`, `increase`, `resets`) of.
#[derive(Default)]
struct Selected {
    all: BTreeSet<String>,
    counter_fn_args: BTreeSet<String>,
}

fn walk(e: &Expr, under_counter_fn: bool, out: &mut Selected) {
    let step = |under_counter_fn, place| match place {
        Place::Aggregated | Place::Plain => under_counter_fn,
        Place::AggregationParam => false,
        Place::Argument(f) => matches!(f, "rate" | "irate" | "increase" | "resets"),
    };
    let mut found = Vec::new();
    support_promql::selectors_with(e, under_counter_fn, &step, &mut found);
    for (vs, under_counter_fn) in found {
        note(vs.name.as_deref(), under_counter_fn, out);
    }
}

fn note(name: Option<&str>, under_counter_fn: bool, out: &mut Selected) {
    let name = name.expect("every selector names its metric").to_owned();
    if under_counter_fn {
        out.counter_fn_args.insert(name.clone());
    }
    out.all.insert(name);
}

#[test]
fn rules_rate_only_counters_and_use_only_exported_metrics() {
    let mut problems = Vec::new();
    for rule in rules() {
        let name = str_of(&rule, "alert")
            .or_else(|| str_of(&rule, "record"))
            .expect("alert or record")
            .to_owned();
        let is_alert = str_of(&rule, "alert").is_some();
        let expr = str_of(&rule, "expr").expect("expr");
        let ast = match parser::parse(expr) {
            Ok(ast) => ast,
            Err(e) => {
                problems.push(format!("{name}: cannot parse expr: {e}"));
                continue;
            }
        };
        let mut sel = Selected::default();
        walk(&ast, false, &mut sel);
        for metric in &sel.counter_fn_args {
            if !(metric.ends_with("_total") || metric.ends_with("_bucket")) {
                problems.push(format!(
                    "{name}: rate()/increase() of {metric}, which is no counter"
                ));
            }
        }
        for metric in &sel.all {
            if metric.contains(':') {
                // A recording rule's output; alerts use raw metrics only, so a
                // scrape of perfwatch proves every name an alert needs.
                if is_alert {
                    problems.push(format!("{name}: uses the recorded series {metric}"));
                }
                continue;
            }
            if perfwatch::metric_index::family_of_series(metric).is_none()
                && !PROMETHEUS_OWN_SERIES.contains(&metric.as_str())
            {
                problems.push(format!("{name}: {metric} is declared in no metric catalog"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
