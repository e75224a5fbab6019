//! The metric tables of the docs (`README.md`, `docs/collectors/*.md`) are
//! checked against the metric catalogs: every name a table lists is declared,
//! with the type the table says; and every family a collector kind declares
//! is listed in that kind's page, so a new family cannot ship undocumented.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use perfwatch::metric_index::family_of_series;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One row of a markdown table that has a "Metric" and a "Type" column.
struct Row {
    file: String,
    line: usize,
    names: Vec<String>,
    kind: String,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.iter().map(|c| c.trim().to_owned()).collect()
}

/// Metric names in backticks: `name{labels}` or `name`.
fn metric_names(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(|code| code.split('{').next().unwrap_or("").trim().to_owned())
        .filter(|n| {
            n.contains('_')
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

fn metric_rows(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap();
    let file = path.strip_prefix(root()).unwrap().display().to_string();
    let mut rows = Vec::new();
    let mut columns: Option<(usize, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        if !line.trim_start().starts_with('|') {
            columns = None;
            continue;
        }
        let c = cells(line);
        if columns.is_none() {
            let metric = c.iter().position(|h| h.eq_ignore_ascii_case("metric"));
            let kind = c.iter().position(|h| h.eq_ignore_ascii_case("type"));
            columns = metric.zip(kind);
            continue;
        }
        let (m, k) = columns.unwrap();
        if c.get(m).is_some_and(|cell| cell.starts_with("---")) {
            continue;
        }
        let names = metric_names(c.get(m).map_or("", String::as_str));
        if !names.is_empty() {
            rows.push(Row {
                file: file.clone(),
                line: i + 1,
                names,
                kind: c.get(k).cloned().unwrap_or_default(),
            });
        }
    }
    rows
}

fn doc_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs/collectors")).unwrap() {
        files.push(e.unwrap().path());
    }
    files.sort();
    files
}

#[test]
fn every_metric_the_docs_list_is_declared_with_that_type() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in doc_files() {
        for row in metric_rows(&path) {
            for name in &row.names {
                checked += 1;
                let Some(def) = family_of_series(name) else {
                    problems.push(format!(
                        "{}:{}: {name} is declared in no catalog",
                        row.file, row.line
                    ));
                    continue;
                };
                let said = row.kind.to_ascii_lowercase();
                let declared = def.kind.as_str();
                let says_a_type = ["gauge", "counter", "histogram"]
                    .iter()
                    .any(|t| said.contains(t));
                if says_a_type && !said.contains(declared) {
                    problems.push(format!(
                        "{}:{}: {name} is listed as \"{}\" but declared a {declared}",
                        row.file, row.line, row.kind
                    ));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} names found: is the table parser broken?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_family_of_a_documented_kind_is_in_its_page() {
    let mut problems = Vec::new();
    for kind in perfwatch::collectors::KINDS {
        let page = root().join(format!("docs/collectors/{}.md", kind.section));
        if !page.exists() {
            continue;
        }
        let listed: BTreeSet<String> = metric_rows(&page)
            .into_iter()
            .flat_map(|r| r.names)
            .collect();
        for def in kind.catalog {
            if !listed.contains(def.name) {
                problems.push(format!(
                    "{}: {} ({}) is not in a metric table",
                    page.strip_prefix(root()).unwrap().display(),
                    def.name,
                    def.kind.as_str()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
