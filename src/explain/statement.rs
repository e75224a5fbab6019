//! Which examples may be planned: a `SELECT`, one statement, nothing a plan
//! cannot be made of (pure). The server enforces the rest (a read-only
//! transaction, a prepared statement refusing a second one); this check
//! keeps everything else from ever being sent.

/// Why an example is not planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotExplained {
    /// Not a `SELECT` (an `UPDATE`, a `CALL`, `WITH … DELETE`, DDL, ...).
    NotSelect,
    /// `SELECT … INTO` writes (a table in PostgreSQL, a file in MySQL).
    SelectInto,
    /// More than one statement.
    Several,
    /// Bind parameters (`$1`, `?`) without values: nothing to plan with.
    Parameters,
}

impl NotExplained {
    /// The `outcome`/`state` label value and API text.
    pub fn as_str(self) -> &'static str {
        match self {
            NotExplained::NotSelect => "not_select",
            NotExplained::SelectInto => "select_into",
            NotExplained::Several => "several_statements",
            NotExplained::Parameters => "bind_parameters",
        }
    }
}

/// The words of `text` outside quotes and comments, lowercased, with
/// whether a `;` (not at the very end), `$n` or `?` parameter appeared.
fn scan(text: &str) -> (Vec<String>, bool, bool) {
    let b = text.as_bytes();
    let (mut words, mut semicolon, mut params) = (Vec::new(), false, false);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' | b'`' => {
                // Quoted: skip to the closing quote (a doubled quote or a
                // backslash escape stays inside).
                i += 1;
                while i < b.len() {
                    if b[i] == b'\\' && c == b'\'' {
                        i += 2;
                        continue;
                    }
                    if b[i] == c {
                        if b.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b';' => {
                if !text[i + 1..].trim().is_empty() {
                    semicolon = true;
                }
                i += 1;
            }
            b'?' => {
                params = true;
                i += 1;
            }
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit)
                && !(i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                params = true;
                i += 1;
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'$')) {
                    i += 1;
                }
                words.push(text[start..i].to_ascii_lowercase());
            }
            _ => i += 1,
        }
    }
    (words, semicolon, params)
}

/// Whether `text` may be planned: `Ok` for a single `SELECT` (possibly in
/// parentheses) without `INTO` and without bind parameters.
pub fn check(text: &str) -> Result<(), NotExplained> {
    let (words, semicolon, params) = scan(text);
    if words.first().map(String::as_str) != Some("select") {
        return Err(NotExplained::NotSelect);
    }
    if semicolon {
        return Err(NotExplained::Several);
    }
    if words.iter().any(|w| w == "into") {
        return Err(NotExplained::SelectInto);
    }
    if params {
        return Err(NotExplained::Parameters);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_single_select_with_values_is_planned() {
        let cases: &[(&str, Result<(), NotExplained>)] = &[
            ("SELECT * FROM trip WHERE driver_id = 42", Ok(())),
            ("  /* app */ (select 1)", Ok(())),
            ("-- note\nselect count(*) from t", Ok(())),
            ("select 'a;b', \"x?y\" from t;", Ok(())),
            ("select 'it''s' from t where a = '$1'", Ok(())),
            (
                "UPDATE trip SET fare = 1 WHERE id = 2",
                Err(NotExplained::NotSelect),
            ),
            (
                "with x as (delete from t returning *) select * from x",
                Err(NotExplained::NotSelect),
            ),
            (
                "insert into t select * from u",
                Err(NotExplained::NotSelect),
            ),
            ("explain select 1", Err(NotExplained::NotSelect)),
            ("select 1; drop table t", Err(NotExplained::Several)),
            ("select * into t2 from t", Err(NotExplained::SelectInto)),
            (
                "select * from t where id = $1",
                Err(NotExplained::Parameters),
            ),
            (
                "select * from t where id = ?",
                Err(NotExplained::Parameters),
            ),
            ("", Err(NotExplained::NotSelect)),
        ];
        for (text, want) in cases {
            assert_eq!(check(text), *want, "{text}");
        }
    }
}
