//! PostgreSQL's `pg_stat_statements` as a slow-query source: the read for
//! each server version, what a failed read means, and the statement text as
//! a logged query. The delta logic shared with MySQL is in
//! `collectors::statement_stats`.

/// pg_stat_statements' statement text as a logged query: `$1`-style
/// parameter symbols become `?`, so `fingerprint()` groups the statement
/// with the same query seen in a slow log (pure). Symbols inside quotes and
/// `$` inside identifiers (`a$1`) are left alone.
pub fn pg_statement_text(query: &str) -> String {
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len());
    let mut quote: Option<u8> = None;
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b'$'
                && b.get(i + 1).is_some_and(u8::is_ascii_digit)
                && !(i > 0
                    && (b[i - 1].is_ascii_alphanumeric() || matches!(b[i - 1], b'_' | b'$'))) =>
            {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                out.push_str(&query[copied..i]);
                out.push('?');
                copied = j;
                i = j;
                continue;
            }
            None => {}
        }
        i += 1;
    }
    out.push_str(&query[copied..]);
    out
}

/// What is missing, in words, for a failed pg_stat_statements read by
/// SQLSTATE (pure).
pub fn pg_missing_hint(sqlstate: Option<&str>, database: &str) -> String {
    match sqlstate {
        Some("42P01") => format!(
            "the pg_stat_statements view does not exist in database \"{database}\" (run CREATE EXTENSION pg_stat_statements there)"
        ),
        Some("55000") => "pg_stat_statements is not loaded (add it to shared_preload_libraries and restart the server)".into(),
        Some("42501") => "no privilege to read pg_stat_statements (GRANT pg_read_all_stats or pg_monitor TO <role>)".into(),
        Some("42703") => "pg_stat_statements has unexpected columns (run ALTER EXTENSION pg_stat_statements UPDATE)".into(),
        _ => "pg_stat_statements could not be read".into(),
    }
}

/// The read of pg_stat_statements for a server of major version `major`
/// (total_exec_time/max_exec_time since 13, total_time/max_time before;
/// top-level statements only and the reset time since 14). `$1` is the
/// row limit.
pub fn pg_statements_sql(major: u32) -> String {
    let (total, max) = if major >= 13 {
        ("total_exec_time", "max_exec_time")
    } else {
        ("total_time", "max_time")
    };
    let (toplevel, reset) = if major >= 14 {
        (
            " AND s.toplevel",
            "(SELECT extract(epoch FROM stats_reset)::float8 FROM pg_stat_statements_info)",
        )
    } else {
        ("", "NULL::float8")
    };
    format!(
        "SELECT s.userid::int8, s.dbid::int8, s.queryid, coalesce(d.datname, '')::text, \
left(s.query, 8192), s.calls, s.{total}::float8, s.{max}::float8, s.rows, {reset} \
FROM pg_stat_statements s LEFT JOIN pg_database d ON d.oid = s.dbid \
WHERE s.queryid IS NOT NULL{toplevel} ORDER BY s.{total} DESC LIMIT $1"
    )
}

/// The major version from `server_version` ("15.4 (Debian 15.4-1)" → 15;
/// unreadable → `u32::MAX`, i.e. the newest column names).
pub fn pg_major(server_version: &str) -> u32 {
    server_version
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;
    use perfwatch_slowlog::fingerprint;

    #[test]
    fn pg_placeholders_fingerprint_like_logged_queries() {
        // (pg_stat_statements text, the query as a slow log shows it)
        let cases = [
            (
                "SELECT count(*) FROM trip WHERE driver_id = $1",
                "SELECT count(*) FROM trip WHERE driver_id = 42",
            ),
            (
                "select * from t where a = $1 and b = $2 limit $3",
                "select * from t where a = 1 and b = 'x' limit 10",
            ),
            (
                "SELECT * FROM t WHERE id IN ($1, $2, $3)",
                "SELECT * FROM t WHERE id IN (1, 2, 3)",
            ),
            (
                "INSERT INTO kv (k, v) VALUES ($1, $2)",
                "INSERT INTO kv (k, v) VALUES (7, 'seven')",
            ),
            (
                "UPDATE t SET n = n + $1 WHERE id = $2",
                "UPDATE t SET n = n + 1 WHERE id = 9",
            ),
            ("SELECT $1::int + $2", "SELECT 1::int + 2"),
        ];
        for (stat, logged) in cases {
            assert_eq!(
                fingerprint(&pg_statement_text(stat)),
                fingerprint(logged),
                "{stat}"
            );
        }
        // Left alone: identifiers, quoted text, dollar quotes.
        for (input, want) in [
            ("select a$1 from t", "select a$1 from t"),
            ("select '$1', \"$2\"", "select '$1', \"$2\""),
            ("do $$ begin end $$", "do $$ begin end $$"),
            ("select $10+$2", "select ?+?"),
        ] {
            assert_eq!(pg_statement_text(input), want, "{input}");
        }
    }

    #[test]
    fn versions_and_hints() {
        assert_eq!(pg_major("15.4 (Debian 15.4-1.pgdg120+1)"), 15);
        assert_eq!(pg_major("12.17"), 12);
        assert_eq!(pg_major("16beta1"), 16);
        assert!(pg_statements_sql(pg_major("?")).contains("total_exec_time"));
        assert!(pg_statements_sql(15).contains("total_exec_time"));
        assert!(pg_statements_sql(15).contains("toplevel"));
        assert!(pg_statements_sql(12).contains("s.total_time"));
        assert!(!pg_statements_sql(12).contains("toplevel"));
        assert!(pg_missing_hint(Some("42P01"), "app").contains("CREATE EXTENSION"));
        assert!(pg_missing_hint(Some("55000"), "app").contains("shared_preload_libraries"));
        assert!(pg_missing_hint(Some("42501"), "app").contains("pg_read_all_stats"));
    }
}
