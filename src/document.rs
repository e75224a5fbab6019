//! The TOML document behind a config: parsing with spans, `${VAR}` expansion,
//! per-section deserialization that collects every error instead of stopping at
//! the first, and the mapping from byte spans to `line` + key path that every
//! error message carries.
//!
//! Why not one `toml::from_str::<Config>`: serde stops at the first error, and
//! users fixing a config by trial and error hate that. Deserializing each table
//! of the file on its own, and retrying after an unknown key is dropped, reports
//! all unknown keys and one type error per table in a single run.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use std::fmt;

/// One problem in a config file, located by line and key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as given on the command line.
    pub file: String,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `redis[0].keys.max_groups`; empty for syntax errors.
    pub key: String,
    /// What is wrong, quoting the bad value where there is one.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one config file (never empty).
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} problem{} in the config:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// A parsed config file: its source text (for line numbers) and spanned tree.
pub struct Document<'a> {
    /// The file name shown in error messages.
    pub file: String,
    source: &'a str,
    /// The root table with byte spans into `source`.
    pub root: Spanned<DeTable<'a>>,
}

impl<'a> Document<'a> {
    /// Parses `source`; syntax errors are pushed to `errors` (all of them, the
    /// parser recovers) and whatever could be parsed is returned.
    pub fn parse(file: &str, source: &'a str, errors: &mut Vec<ConfigError>) -> Self {
        let (root, syntax) = DeTable::parse_recoverable(source);
        let doc = Self {
            file: file.to_owned(),
            source,
            root,
        };
        for e in syntax {
            let line = e.span().map(|s| doc.line_of(s.start));
            errors.push(ConfigError {
                file: doc.file.clone(),
                line,
                key: String::new(),
                message: e.message().trim().to_owned(),
            });
        }
        doc
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.source.len());
        self.source.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// An error at a span, with the key path found by walking the tree from
    /// the root, so it names the key as the user wrote it (`redis[1].keys.max_groups`).
    pub fn error_at(&self, span: Option<Range<usize>>, message: String) -> ConfigError {
        let (line, key) = match span {
            Some(span) => (Some(self.line_of(span.start)), self.key_at(&span)),
            None => (None, String::new()),
        };
        ConfigError {
            file: self.file.clone(),
            line,
            key,
            message,
        }
    }

    /// The key path of the innermost key or element containing `span`.
    pub fn key_at(&self, span: &Range<usize>) -> String {
        let root = Spanned::new(
            self.root.span(),
            DeValue::Table(self.root.get_ref().clone()),
        );
        key_path_in(&root, span).trim_start_matches('.').to_owned()
    }

    /// An error about a key path (cross-field checks): located at the key
    /// when the file has it, else at the nearest enclosing key.
    pub fn error_in(&self, key: String, message: String) -> ConfigError {
        let root = Spanned::new(
            self.root.span(),
            DeValue::Table(self.root.get_ref().clone()),
        );
        ConfigError {
            file: self.file.clone(),
            line: span_of_path(&root, &key).map(|s| self.line_of(s.start)),
            key,
            message,
        }
    }
}

/// Deserializes one value of the document, collecting errors. The key an
/// error points at (unknown, or of the wrong type or value) is reported,
/// removed and the value retried, so every bad key in a table is listed in
/// one run. A removed key that was required then comes back as "missing
/// field": that is not news, and ends the attempt for this value.
pub fn deserialize_collecting<T: DeserializeOwned>(
    doc: &Document<'_>,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let mut value = value.clone();
    let mut removed: Vec<String> = Vec::new();
    // Bounded: each retry removes one key, and a table has finitely many.
    for _ in 0..64 {
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => return Some(v),
            Err(e) => {
                let msg = e.message().trim().to_owned();
                if missing_field(&msg).is_some_and(|f| removed.iter().any(|r| r == f)) {
                    return None;
                }
                let span = e.span();
                let mut err = doc.error_at(span.clone(), msg);
                if err.key.is_empty() {
                    err.key = key.to_owned();
                }
                if crate::secret::is_secret_key(&err.key) {
                    err.message = hide_values(&err.message);
                }
                errors.push(err);
                match span.and_then(|s| remove_entry_at(&mut value, &s)) {
                    Some(name) => removed.push(name),
                    None => return None,
                }
            }
        }
    }
    None
}

/// `x` of serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// A serde message without the values it quotes (`integer \`987654321\``,
/// `string "…"`): the message of a secret key must not echo what was
/// written there, which may be the secret itself.
fn hide_values(message: &str) -> String {
    static QUOTED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#" (?:`[^`]*`|"(?:[^"\\]|\\.)*")"#).expect("static regex")
    });
    QUOTED.replace_all(message, "").into_owned()
}

/// The dotted key path (relative to `value`, e.g. `.keys.max_groups` or
/// `[1].url`) of the innermost key or value containing `span`.
///
/// Tables written as `[header]` sections have spans covering only their
/// header, not their keys, so the search descends into every table and array
/// rather than only into those whose span contains `span`.
pub fn key_path_in(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> String {
    fn search(v: &Spanned<DeValue<'_>>, span: &Range<usize>, path: &mut String) -> bool {
        match v.get_ref() {
            DeValue::Table(table) => {
                for (k, child) in table.iter() {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k.get_ref());
                    if contains(&k.span(), span) || search(child, span, path) {
                        return true;
                    }
                    if contains(&child.span(), span) && !child.get_ref().is_table() {
                        return true;
                    }
                    path.truncate(len);
                }
                false
            }
            DeValue::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    if search(child, span, path) || contains(&child.span(), span) {
                        return true;
                    }
                    path.truncate(len);
                }
                false
            }
            _ => false,
        }
    }
    let mut path = String::new();
    search(value, span, &mut path);
    path
}

/// The span of a dotted key path such as `redis[1].keys.max_groups`: of the
/// key itself when present, else of the nearest enclosing key or element.
pub fn span_of_path(root: &Spanned<DeValue<'_>>, path: &str) -> Option<Range<usize>> {
    let mut current = root;
    let mut best = None;
    for segment in path.split('.') {
        let (name, indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], &segment[i..]),
            None => (segment, ""),
        };
        let DeValue::Table(t) = current.get_ref() else {
            break;
        };
        let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref() == name) else {
            break;
        };
        best = Some(k.span());
        current = v;
        for idx in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            let (Ok(i), DeValue::Array(items)) = (idx.parse::<usize>(), current.get_ref()) else {
                break;
            };
            let Some(item) = items.get(i) else { break };
            best = Some(item.span());
            current = item;
        }
    }
    best
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer != &(0..0)
}

/// Removes the innermost entry whose key is `span` or whose value contains
/// it, anywhere below `value`; returns its key.
fn remove_entry_at(value: &mut Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<String> {
    match value.get_mut() {
        DeValue::Table(table) => {
            if let Some(name) = table.iter_mut().find_map(|(_, v)| remove_entry_at(v, span)) {
                return Some(name);
            }
            let hit = table
                .iter()
                .find(|(k, v)| &k.span() == span || contains(&v.span(), span))
                .map(|(k, _)| k.clone())?;
            table.remove(&hit);
            Some(hit.get_ref().to_string())
        }
        DeValue::Array(items) => items.iter_mut().find_map(|v| remove_entry_at(v, span)),
        _ => None,
    }
}

/// Expands `${VAR}` in every string value, in place. `$$` is a literal `$`.
/// Expansion happens after parsing, so a secret containing quotes or newlines
/// can never change the structure of the file.
pub fn expand_env(
    doc: &mut Document<'_>,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    let mut found = Vec::new();
    walk_strings(doc.root.get_mut(), &mut |s, span| {
        if !s.contains('$') {
            return;
        }
        match expand_str(s, lookup) {
            Ok(expanded) => *s = expanded,
            Err(var) => found.push((span, var)),
        }
    });
    for (span, var) in found {
        errors.push(doc.error_at(
            Some(span),
            format!("environment variable \"{var}\" is not set"),
        ));
    }
}

fn walk_strings(table: &mut DeTable<'_>, f: &mut dyn FnMut(&mut String, Range<usize>)) {
    for (_, v) in table.iter_mut() {
        walk_value(v, f);
    }
}

fn walk_value(v: &mut Spanned<DeValue<'_>>, f: &mut dyn FnMut(&mut String, Range<usize>)) {
    let span = v.span();
    match v.get_mut() {
        DeValue::String(s) => {
            let mut owned = s.to_string();
            let before = owned.clone();
            f(&mut owned, span);
            if owned != before {
                *s = owned.into();
            }
        }
        DeValue::Array(items) => items.iter_mut().for_each(|i| walk_value(i, f)),
        DeValue::Table(t) => walk_strings(t, f),
        _ => {}
    }
}

/// Expands one string; returns the name of the first unset variable on error.
pub fn expand_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                out.push('$');
                rest = after;
                continue;
            };
            let var = &body[..end];
            out.push_str(&lookup(var).ok_or_else(|| var.to_owned())?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_table() {
        let env = |k: &str| match k {
            "PW" => Some("s3cr\"et".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("plain", Ok("plain")),
            ("${PW}", Ok("s3cr\"et")),
            ("a${PW}b", Ok("as3cr\"etb")),
            ("$${PW}", Ok("${PW}")),
            ("cost $5", Ok("cost $5")),
            ("${EMPTY}x", Ok("x")),
            ("${MISSING}", Err("MISSING")),
            ("${unclosed", Ok("${unclosed")),
        ];
        for (input, want) in cases {
            let got = expand_str(input, &env);
            assert_eq!(
                got.as_deref().map_err(String::as_str),
                *want,
                "input {input:?}"
            );
        }
    }
}
