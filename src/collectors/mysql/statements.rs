//! `performance_schema.events_statements_summary_by_digest` as a slow-query
//! source (pure parts): the one statement that reads it, and the digest
//! text turned back into the shape of a logged query so `fingerprint()`
//! puts it in the same class as the slow log. The generic part (config,
//! deltas, digest, export) is shared with PostgreSQL:
//! `collectors::postgres::statements`.

/// The read: the `statements_digest` consumer's state joined with the top
/// `limit` digests by total time, so one statement says both whether the
/// table is being filled and what it holds (one row with NULL digest
/// columns when it is empty). Timer columns are picoseconds; the last
/// column is the row's age in microseconds (from FIRST_SEEN).
pub fn digest_sql(limit: usize) -> String {
    format!(
        "SELECT c.ENABLED, d.SCHEMA_NAME, d.DIGEST, d.DIGEST_TEXT, d.COUNT_STAR, d.SUM_TIMER_WAIT, \
d.SUM_LOCK_TIME, d.SUM_ROWS_SENT, d.SUM_ROWS_EXAMINED, d.SUM_NO_INDEX_USED, d.SUM_NO_GOOD_INDEX_USED, \
d.MAX_TIMER_WAIT, TIMESTAMPDIFF(MICROSECOND, d.FIRST_SEEN, NOW(6)) \
FROM performance_schema.setup_consumers c LEFT JOIN (SELECT * FROM performance_schema.events_statements_summary_by_digest \
WHERE DIGEST IS NOT NULL ORDER BY SUM_TIMER_WAIT DESC LIMIT {limit}) d ON TRUE \
WHERE c.NAME = 'statements_digest'"
    )
}

/// Words after which a digest's ` (` keeps its space (a keyword, not a
/// function name).
const KEEP_SPACE_BEFORE_PAREN: &[&str] = &[
    "and", "or", "not", "in", "exists", "values", "value", "from", "join", "on", "using", "as",
    "select", "where", "set", "into", "table", "any", "all", "some", "union", "when", "then",
    "else", "by", "having", "is", "like", "between", "case", "return", "returns",
];

/// A performance_schema DIGEST_TEXT as a logged query would read (pure):
/// backticks dropped, `(...)` and the `/* , ... */` of multi-row VALUES
/// made one `(?)` (pt-query-digest's `in(?+)` / `values(?+)` then match),
/// and the digest's space between every token removed where people write
/// none (`t . id` → `t.id`, `count ( * )` → `count(*)`, `a , b` → `a, b`).
/// Best effort: a query written with unusual spacing can still land in a
/// different class than its slow-log events.
pub fn digest_text_to_sql(digest: &str) -> String {
    let text = digest
        .replace("/* , ... */", "")
        .replace("(...)", "(?)")
        .replace('`', "");
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::with_capacity(text.len());
    for (i, tok) in tokens.iter().enumerate() {
        if i > 0 {
            let prev = tokens[i - 1];
            let glue = matches!(*tok, "," | ")" | ".")
                || prev == "("
                || prev == "."
                || (tok.starts_with('(')
                    && prev
                        .chars()
                        .last()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                    && !KEEP_SPACE_BEFORE_PAREN.contains(&prev.to_ascii_lowercase().as_str()));
            if !glue {
                out.push(' ');
            }
        }
        out.push_str(tok);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfwatch_slowlog::fingerprint;

    #[test]
    fn digests_fingerprint_like_logged_queries() {
        // (DIGEST_TEXT as MariaDB 10.11 shows it, the query as a slow log shows it)
        let cases = [
            (
                "SELECT * FROM `t` WHERE ID = ? ",
                "SELECT * FROM t WHERE id = 1",
            ),
            (
                "SELECT COUNT ( * ) FROM `t` WHERE `a` IN (...) ",
                "SELECT COUNT(*) FROM t WHERE a IN (1, 2, 3)",
            ),
            (
                "SELECT `t` . `id` , `lower` ( `b` ) FROM `t` WHERE `t` . `a` = ? AND `b` = ? ",
                "select t.id, lower(b) from t where t.a = 5 and b = 'q'",
            ),
            (
                "INSERT INTO `t` VALUES (...) /* , ... */ ",
                "insert into t values (3,3,'z'),(4,4,'w')",
            ),
            (
                "UPDATE `t` SET `a` = `a` + ? WHERE ID = ? ",
                "update t set a = a + 1 where id = 3",
            ),
            (
                "SELECT * FROM `t` WHERE ( `a` > ? ) AND EXISTS ( SELECT ? FROM `t` `t2` WHERE `t2` . `id` = `t` . `id` ) ",
                "select * from t where (a > 1) and exists (select 1 from t t2 where t2.id = t.id)",
            ),
            (
                "SELECT * FROM `t` WHERE ID = ? LIMIT ? ",
                "SELECT * FROM t WHERE id = 2 LIMIT 1",
            ),
            // MySQL 8.0 writes the same shapes.
            (
                "SELECT `driver_id` , SUM ( `fare` ) FROM `trip` WHERE `city` = ? GROUP BY `driver_id` ORDER BY SUM ( `fare` ) DESC LIMIT ?",
                "SELECT driver_id, SUM(fare) FROM trip WHERE city = 'x' GROUP BY driver_id ORDER BY SUM(fare) DESC LIMIT 10",
            ),
        ];
        for (digest, logged) in cases {
            assert_eq!(
                fingerprint(&digest_text_to_sql(digest)),
                fingerprint(logged),
                "{digest}"
            );
        }
    }

    #[test]
    fn the_read_is_one_statement_with_its_limit() {
        let sql = digest_sql(25);
        assert!(sql.contains("LIMIT 25"));
        assert!(!sql.contains(';'));
    }
}
