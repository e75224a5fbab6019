//! Query fingerprints, following pt-query-digest's rules so queries group into
//! the same classes its reports show: literals, numbers and quoted strings
//! become `?`, `IN (…)` / `VALUES (…), (…)` lists collapse to `(?+)`,
//! comments go, whitespace and case fold, `LIMIT ?, ?` becomes `LIMIT ?`.
//!
//! The main pass is one scan over the bytes (this runs for every event of a
//! log that may be gigabytes); the few rules that need context run as
//! regexes afterwards, only when the query contains their keyword.

use std::sync::LazyLock;

use md5::{Digest, Md5};
use regex::Regex;

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The pt-query-digest fingerprint of one statement.
pub fn fingerprint(query: &str) -> String {
    let q = query.trim();
    let lower_start: String = q.chars().take(40).collect::<String>().to_ascii_lowercase();
    // Special cases pt-query-digest keeps as they are.
    if lower_start.starts_with("select /*!40001 sql_no_cache */ * from") {
        return "mysqldump".into();
    }
    if lower_start.starts_with("# administrator command:") {
        return q.to_owned();
    }
    if let Some(rest) = lower_start.strip_prefix("call ") {
        let name: String = rest
            .chars()
            .take_while(|c| *c != '(' && !c.is_whitespace())
            .collect();
        return format!("call {name}");
    }
    if lower_start.starts_with("use ") {
        return "use ?".into();
    }
    let mut out = scan(q.as_bytes());
    post_process(&mut out);
    out
}

/// The lexical pass: quotes, comments, numbers, booleans/null, case and
/// whitespace.
fn scan(b: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(b.len().min(4096));
    let mut i = 0;
    let n = b.len();
    let push_space = |out: &mut Vec<u8>| {
        if !out.is_empty() && out.last() != Some(&b' ') {
            out.push(b' ');
        }
    };
    while i < n {
        let c = b[i];
        match c {
            b'\'' | b'"' => {
                // A quoted string (backslash escapes and doubled quotes).
                i += 1;
                while i < n {
                    if b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == c {
                        if i + 1 < n && b[i + 1] == c {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                out.push(b'?');
            }
            b'/' if i + 1 < n && b[i + 1] == b'*' && !(i + 2 < n && b[i + 2] == b'!') => {
                match b[i + 2..].windows(2).position(|w| w == b"*/") {
                    Some(p) => i += p + 4,
                    None => i = n,
                }
                push_space(&mut out);
            }
            b'-' if i + 2 < n && b[i + 1] == b'-' && (b[i + 2] == b' ' || b[i + 2] == b'\t') => {
                while i < n && b[i] != b'\n' {
                    i += 1;
                }
                push_space(&mut out);
            }
            b'#' => {
                while i < n && b[i] != b'\n' {
                    i += 1;
                }
                push_space(&mut out);
            }
            b' ' | b'\n' | b'\t' | b'\r' | 0x0c => {
                push_space(&mut out);
                i += 1;
            }
            b'0'..=b'9' | b'+' | b'-' if i == 0 || !is_word(b[i - 1]) => {
                // pt: \b[0-9+-][0-9a-f.xb+-]* (case-sensitive) — a word boundary must precede,
                // so a sign only starts a number right before a digit.
                let starts_number = c.is_ascii_digit()
                    || (i + 1 < n && b[i + 1].is_ascii_digit() && (i == 0 || is_word(b[i - 1])));
                if !starts_number {
                    out.push(c);
                    i += 1;
                    continue;
                }
                i += 1;
                while i < n && matches!(b[i], b'0'..=b'9' | b'a'..=b'f' | b'.' | b'x' | b'+' | b'-')
                {
                    i += 1;
                }
                // pt: [xb.+-]\? → ? (signs and prefixes absorbed).
                if matches!(out.last(), Some(b'x' | b'b' | b'.' | b'+' | b'-')) {
                    out.pop();
                }
                out.push(b'?');
            }
            _ if is_word(c) => {
                let start = i;
                while i < n && is_word(b[i]) {
                    i += 1;
                }
                let word = &b[start..i];
                if word.eq_ignore_ascii_case(b"true")
                    || word.eq_ignore_ascii_case(b"false")
                    || word.eq_ignore_ascii_case(b"null")
                {
                    out.push(b'?');
                } else {
                    out.extend(word.iter().map(u8::to_ascii_lowercase));
                }
            }
            _ => {
                out.push(c.to_ascii_lowercase());
                i += 1;
            }
        }
    }
    while out.last() == Some(&b' ') {
        out.pop();
    }
    // The input was UTF-8 and we only replaced ASCII bytes or whole runs.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

static IN_LIST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(in|values?)(?:[\s,]*\([\s?,]*\))+").expect("static regex"));
static LIMIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\blimit \?(?:, ?\?| offset \?)?").expect("static regex"));
static ASC: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+asc\b").expect("static regex"));
static INSERT_VALUES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^((?:insert|replace)\b.*?\bvalues?\s*\(.*?\))\s*,\s*\(.*$").expect("static regex")
});

fn post_process(q: &mut String) {
    if (q.starts_with("insert") || q.starts_with("replace"))
        && let Some(c) = INSERT_VALUES.captures(q)
    {
        // pt cuts multi-row inserts after the first row.
        *q = c[1].to_owned();
    }
    if (q.contains("in") || q.contains("value"))
        && let std::borrow::Cow::Owned(s) = IN_LIST.replace_all(q, "$1(?+)")
    {
        *q = s;
    }
    if q.contains("limit")
        && let std::borrow::Cow::Owned(s) = LIMIT.replace(q, "limit ?")
    {
        *q = s;
    }
    if q.contains("order by")
        && q.contains(" asc")
        && let std::borrow::Cow::Owned(s) = ASC.replace_all(q, "")
    {
        *q = s;
    }
}

/// pt-query-digest's query id: the last 16 hex digits of the MD5 of the
/// fingerprint, upper case.
pub fn fingerprint_id(fingerprint: &str) -> String {
    let digest = Md5::digest(fingerprint.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex[16..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_table() {
        let cases = [
            (
                "SELECT * FROM trips WHERE driver_id = 42",
                "select * from trips where driver_id = ?",
            ),
            (
                "select  a,\n\tb from t where x='foo' and y=\"bar\"",
                "select a, b from t where x=? and y=?",
            ),
            (
                "SELECT * FROM t WHERE id IN (1, 2, 3)",
                "select * from t where id in(?+)",
            ),
            (
                "select * from t where id in ( 'a','b' )",
                "select * from t where id in(?+)",
            ),
            (
                "INSERT INTO t (a,b) VALUES (1,'x'),(2,'y'),(3,'z')",
                "insert into t (a,b) values(?+)",
            ),
            ("SELECT * FROM t LIMIT 10, 20", "select * from t limit ?"),
            (
                "SELECT * FROM t LIMIT 10 OFFSET 20",
                "select * from t limit ?",
            ),
            (
                "SELECT * FROM t /* comment */ WHERE a = 1",
                "select * from t where a = ?",
            ),
            (
                "SELECT * FROM t -- trailing comment\nWHERE a = 1",
                "select * from t where a = ?",
            ),
            ("SELECT /*!40001 SQL_NO_CACHE */ * FROM `t`", "mysqldump"),
            ("CALL refresh_summary(1, 2)", "call refresh_summary"),
            ("use drive_safe_db", "use ?"),
            (
                "select * from t1 where c2 = -1.5e3",
                "select * from t1 where c2 = ?",
            ),
            (
                "select * from t where flag = TRUE and x is NULL",
                "select * from t where flag = ? and x is ?",
            ),
            (
                "select * from t where h = 0xdeadbeef",
                "select * from t where h = ?",
            ),
            // pt's number rule is case-sensitive ([0-9a-f.xb+-]), lowercasing comes after.
            (
                "select * from t where h = 0xDEADBEEF",
                "select * from t where h = ?deadbeef",
            ),
            (
                "SELECT a FROM t ORDER BY a ASC",
                "select a from t order by a",
            ),
            ("select 'it''s' , 'a\\'b'", "select ? , ?"),
            (
                "# administrator command: Ping",
                "# administrator command: Ping",
            ),
            (
                "SELECT DATE(t.start_time) AS day, COUNT(*) FROM trip t WHERE t.driver_id = 7 GROUP BY day",
                "select date(t.start_time) as day, count(*) from trip t where t.driver_id = ? group by day",
            ),
        ];
        for (query, want) in cases {
            assert_eq!(fingerprint(query), want, "query {query:?}");
        }
    }

    #[test]
    fn ids_are_stable_and_match_pt_query_digest_format() {
        let id = fingerprint_id("select * from t where id = ?");
        assert_eq!(id.len(), 16);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_eq!(id, fingerprint_id("select * from t where id = ?"));
        assert_ne!(id, fingerprint_id("select * from t where id in(?+)"));
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            "'",
            "\"unterminated",
            "/* open",
            "--",
            "-",
            "+",
            "0x",
            "\u{0}\u{1}\u{ff}",
            "é'ü'",
            "",
        ] {
            let _ = fingerprint(input);
        }
    }
}
