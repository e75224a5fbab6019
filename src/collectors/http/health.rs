//! Pure parsing of health-check JSON bodies.
//!
//! Accepted shapes (pointers configurable):
//! - `{"status": "healthy", "checks": {"database": {"status": "healthy"}, …}}`
//!   (the seeds' FastAPI app; also Spring Boot's `components`);
//! - checks as plain words or booleans: `"checks": {"cache": "ok", "db": true}`;
//! - checks as an array of `{"name": …, "status": …}` (MicroProfile Health).
//!
//! A status is healthy when it is `true` or one of the configured words
//! (case-insensitive); any other word is unhealthy. A check without a
//! readable status is skipped and counted.

use serde_json::Value;

/// What a health body says.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// The overall status, when the body has one.
    pub overall: Option<bool>,
    /// `(check name, healthy)`, sorted by name, at most `max_checks`.
    pub checks: Vec<(String, bool)>,
    /// Checks found in the body (before the `max_checks` cut).
    pub checks_found: usize,
    /// Checks skipped because their status could not be read.
    pub checks_unreadable: usize,
}

/// Longest check name kept as a label value.
const MAX_NAME_LEN: usize = 128;

/// Parses a health body. `Err` (a lowercase message) when the body is not
/// JSON, or is JSON with neither an overall status nor a check at the
/// pointers.
pub fn parse_health(
    body: &[u8],
    status_pointer: &str,
    checks_pointer: &str,
    healthy_values: &[String],
    max_checks: usize,
) -> Result<HealthReport, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("health body is not JSON: {e}"))?;
    let overall = json
        .pointer(status_pointer)
        .and_then(|v| status_of(v, healthy_values));
    let mut checks = Vec::new();
    let mut unreadable = 0;
    match json.pointer(checks_pointer) {
        Some(Value::Object(map)) => {
            for (name, v) in map {
                match check_status(v, healthy_values) {
                    Some(up) => checks.push((clip(name), up)),
                    None => unreadable += 1,
                }
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                let name = item.get("name").and_then(Value::as_str);
                match (name, check_status(item, healthy_values)) {
                    (Some(name), Some(up)) => checks.push((clip(name), up)),
                    _ => unreadable += 1,
                }
            }
        }
        _ => {}
    }
    if overall.is_none() && checks.is_empty() {
        return Err(format!(
            "health body has no readable status at \"{status_pointer}\" and no checks at \"{checks_pointer}\""
        ));
    }
    checks.sort();
    checks.dedup_by(|a, b| a.0 == b.0);
    let checks_found = checks.len();
    checks.truncate(max_checks);
    Ok(HealthReport {
        overall,
        checks,
        checks_found,
        checks_unreadable: unreadable,
    })
}

/// A check's status: the value itself or its `status` field.
fn check_status(v: &Value, healthy: &[String]) -> Option<bool> {
    match v {
        Value::Object(o) => o.get("status").and_then(|s| status_of(s, healthy)),
        other => status_of(other, healthy),
    }
}

fn status_of(v: &Value, healthy: &[String]) -> Option<bool> {
    match v {
        Value::String(s) => Some(healthy.iter().any(|h| h.eq_ignore_ascii_case(s.trim()))),
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn clip(name: &str) -> String {
    if name.len() <= MAX_NAME_LEN {
        return name.to_owned();
    }
    let mut end = MAX_NAME_LEN;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Vec<String> {
        ["healthy", "ok", "up", "pass"].map(String::from).to_vec()
    }

    type Want = Result<(Option<bool>, &'static [(&'static str, bool)], usize, usize), &'static str>;

    #[test]
    fn health_table() {
        let cases: &[(&str, Want)] = &[
            (
                r#"{"status":"healthy","checks":{"database":{"status":"healthy"},"cache":{"status":"unhealthy"}}}"#,
                Ok((Some(true), &[("cache", false), ("database", true)], 2, 0)),
            ),
            (
                r#"{"status":"degraded","checks":{"db":"OK","cache":false,"queue":"down"}}"#,
                Ok((
                    Some(false),
                    &[("cache", false), ("db", true), ("queue", false)],
                    3,
                    0,
                )),
            ),
            (
                r#"{"status":"UP","checks":[{"name":"db","status":"UP"},{"name":"disk","status":"DOWN"},{"status":"UP"}]}"#,
                Ok((Some(true), &[("db", true), ("disk", false)], 2, 1)),
            ),
            // only an overall status
            (r#"{"status":"pass"}"#, Ok((Some(true), &[], 0, 0))),
            // only checks; one unreadable
            (
                r#"{"checks":{"db":{"status":"ok"},"weird":{"state":1}}}"#,
                Ok((None, &[("db", true)], 1, 1)),
            ),
            ("<html>oops</html>", Err("health body is not JSON")),
            (
                r#"{"uptime": 12}"#,
                Err("health body has no readable status at \"/status\""),
            ),
            (r#"[1,2]"#, Err("no readable status")),
            ("", Err("health body is not JSON")),
        ];
        for (body, want) in cases {
            let got = parse_health(body.as_bytes(), "/status", "/checks", &words(), 50);
            match (got, want) {
                (Ok(r), Ok((overall, checks, found, unreadable))) => {
                    assert_eq!(r.overall, *overall, "{body}");
                    let got: Vec<(&str, bool)> =
                        r.checks.iter().map(|(n, u)| (n.as_str(), *u)).collect();
                    assert_eq!(got, checks.to_vec(), "{body}");
                    assert_eq!(r.checks_found, *found, "{body}");
                    assert_eq!(r.checks_unreadable, *unreadable, "{body}");
                }
                (Err(e), Err(w)) => assert!(e.contains(w), "{body}: {e}"),
                (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn checks_are_bounded_and_pointers_configurable() {
        let mut checks = serde_json::Map::new();
        for i in 0..200 {
            checks.insert(format!("c{i:03}"), Value::from("ok"));
        }
        let body = serde_json::json!({"health": {"overall": "green", "parts": checks}});
        let green = vec!["green".to_owned(), "ok".to_owned()];
        let r = parse_health(
            body.to_string().as_bytes(),
            "/health/overall",
            "/health/parts",
            &green,
            50,
        )
        .unwrap();
        assert_eq!(r.overall, Some(true));
        assert_eq!(r.checks.len(), 50);
        assert_eq!(r.checks_found, 200);
        assert_eq!(r.checks[0].0, "c000");
    }

    #[test]
    fn long_names_are_clipped() {
        let name = "é".repeat(100);
        let body = format!(r#"{{"checks":{{"{name}":"ok"}}}}"#);
        let r = parse_health(body.as_bytes(), "/status", "/checks", &words(), 50).unwrap();
        assert!(r.checks[0].0.len() <= MAX_NAME_LEN);
    }
}
