//! The shape of the code, checked: the top-level modules of the sidecar
//! library import each other without a cycle (unit-test code aside), so each
//! can be read, changed and tested from the bottom up. A cycle found is
//! printed as the chain of modules and the file that closes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules `lib.rs` declares.
fn top_level_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))?;
            Some(rest.trim_end_matches(';').trim().to_owned())
        })
        .collect()
}

/// Source without unit tests: cut at `#[cfg(test)]` (the modules keep their
/// tests last) and skip `tests.rs` files.
fn non_test_source(path: &Path) -> Option<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return None;
    }
    let text = std::fs::read_to_string(path).unwrap();
    Some(match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_owned(),
        None => text,
    })
}

/// The top-level modules `text` names through `crate::x` or `crate::{x, y}`.
fn referenced(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        let after = &text[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 0;
            let mut part = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(part.trim()));
                        part.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    part.push(c);
                }
            }
            out.insert(ident(part.trim()));
        } else {
            out.insert(ident(after));
        }
    }
    out.retain(|m| modules.contains(m));
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let modules = top_level_modules();
    assert!(modules.len() > 5, "lib.rs declares {modules:?}");
    // module -> (module it imports -> a file where it does)
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut files = Vec::new();
    walk(&src(), &mut files);
    for path in files {
        let rel = path.strip_prefix(src()).unwrap();
        let first = rel.components().next().unwrap().as_os_str();
        let module = first.to_string_lossy().trim_end_matches(".rs").to_owned();
        if !modules.contains(&module) {
            continue; // lib.rs, main.rs
        }
        let Some(text) = non_test_source(&path) else {
            continue;
        };
        for to in referenced(&text, &modules) {
            if to != module {
                edges
                    .entry(module.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| rel.display().to_string());
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeMap<String, String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(pos) = stack.iter().position(|s| s == m) {
            let chain = &stack[pos..];
            let closing = &edges[stack.last().unwrap()][m];
            cycles.push(format!(
                "{} -> {m} (closed in {closing})",
                chain.join(" -> ")
            ));
            return;
        }
        stack.push(m.to_owned());
        for to in edges.get(m).into_iter().flat_map(|e| e.keys()) {
            visit(to, edges, stack, done, cycles);
        }
        stack.pop();
        done.insert(m.to_owned());
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for m in &modules {
        visit(m, &edges, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(
        cycles.is_empty(),
        "import cycles between top-level modules:\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_reference_finder_sees_grouped_and_plain_paths() {
    let modules: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let found = referenced(
        "use crate::a::X;\nuse crate::{b::{Y, Z}, c};\nlet v = crate::d::f();",
        &modules,
    );
    assert_eq!(found, modules);
}
