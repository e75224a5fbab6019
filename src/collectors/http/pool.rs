//! Pure parsing of the app's connection-pool numbers: a JSON object (fields
//! found by JSON pointer) or SQLAlchemy's `QueuePool.status()` text, and the
//! derived saturation.
//!
//! SQLAlchemy's format (`lib/sqlalchemy/pool/impl.py`, `QueuePool.status`):
//!
//! ```text
//! Pool size: %d  Connections in pool: %d Current Overflow: %d Current Checked out connections: %d
//! ```
//!
//! with `size()`, `checkedin()`, `overflow()`, `checkedout()`. SQLAlchemy's
//! overflow starts at `-pool_size` and grows by one per connection opened, so
//! it is negative until the pool has opened `pool_size` connections:
//! `overflow = opened - pool_size`. Only a positive overflow means connections
//! beyond `pool_size` are open. `NullPool`, `StaticPool` and
//! `SingletonThreadPool` report no such numbers.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::config::{PoolFormat, PoolPointers};

/// The pool's numbers as the app reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolStats {
    /// Connections kept persistently (`pool_size`).
    pub size: f64,
    /// Connections in use.
    pub checked_out: f64,
    /// Idle connections in the pool, when reported.
    pub checked_in: Option<f64>,
    /// SQLAlchemy's overflow (may be negative, see the module doc), when reported.
    pub overflow: Option<f64>,
    /// The pool's overflow limit (`max_overflow`), when the app reports it.
    pub max_overflow: Option<f64>,
}

impl PoolStats {
    /// Connections open beyond `pool_size` (never negative).
    pub fn overflow_in_use(&self) -> Option<f64> {
        self.overflow.map(|o| o.max(0.0))
    }

    /// The overflow limit that applies: what the app reports, else what the
    /// config says; `None` when neither knows it.
    pub fn overflow_limit(&self, configured: Option<i64>) -> Option<f64> {
        self.max_overflow.or(configured.map(|m| m as f64))
    }

    /// How full the pool is, 0 to 1:
    /// - overflow limit known: checked_out / (pool_size + max_overflow);
    /// - limit unknown: the seed guide's rule, checked_out / pool_size, capped
    ///   at 1 (a pool using overflow reads as full). Assuming SQLAlchemy's
    ///   default limit instead made a fully exhausted pool read 0.67, so the
    ///   alert could never fire;
    /// - unlimited overflow (`max_overflow = -1`) or a zero capacity: `None`.
    pub fn saturation(&self, configured_max_overflow: Option<i64>) -> Option<f64> {
        let capacity = match self.overflow_limit(configured_max_overflow) {
            Some(m) if m < 0.0 => return None,
            Some(m) => self.size + m,
            None => self.size,
        };
        (capacity > 0.0).then(|| (self.checked_out / capacity).clamp(0.0, 1.0))
    }

    /// Connections open (idle + in use), when both are known.
    pub fn open(&self) -> Option<f64> {
        self.checked_in.map(|i| i + self.checked_out)
    }
}

static SQLALCHEMY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"Pool size:\s*(-?\d+)\s+Connections in pool:\s*(-?\d+)\s+Current Overflow:\s*(-?\d+)\s+Current Checked out connections:\s*(-?\d+)",
    )
    .expect("static regex")
});

/// Parses SQLAlchemy `QueuePool.status()` text.
pub fn parse_sqlalchemy(text: &str) -> Result<PoolStats, String> {
    let Some(c) = SQLALCHEMY.captures(text) else {
        let shown: String = text.trim().chars().take(80).collect();
        let hint = if ["NullPool", "StaticPool", "SingletonThreadPool"]
            .iter()
            .any(|p| shown.starts_with(p))
        {
            " (only QueuePool reports pool numbers)"
        } else {
            ""
        };
        return Err(format!(
            "pool body is not SQLAlchemy QueuePool.status() text: \"{}\"{hint}",
            shown.escape_debug()
        ));
    };
    let n = |i: usize| c[i].parse::<f64>().unwrap_or(0.0);
    Ok(PoolStats {
        size: n(1),
        checked_in: Some(n(2)),
        overflow: Some(n(3)),
        checked_out: n(4),
        // status() does not say; the config's max_overflow or the seed rule applies.
        max_overflow: None,
    })
}

/// Reads the pool numbers of a JSON object through the pointers. `pool_size`
/// and `checked_out` are required; an empty pointer turns an optional field off.
pub fn parse_json(json: &Value, p: &PoolPointers) -> Result<PoolStats, String> {
    let number = |ptr: &str| -> Result<Option<f64>, String> {
        if ptr.is_empty() {
            return Ok(None);
        }
        match json.pointer(ptr) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("pool field \"{ptr}\" is not a number: {v}")),
        }
    };
    let required = |ptr: &str| -> Result<f64, String> {
        number(ptr)?.ok_or_else(|| format!("pool body has no number at \"{ptr}\""))
    };
    Ok(PoolStats {
        size: required(&p.pool_size)?,
        checked_out: required(&p.checked_out)?,
        checked_in: number(&p.checked_in)?,
        overflow: number(&p.overflow)?,
        max_overflow: number(&p.max_overflow)?,
    })
}

/// Parses a pool body in the given format.
pub fn parse_pool(body: &[u8], format: PoolFormat, p: &PoolPointers) -> Result<PoolStats, String> {
    let text = std::str::from_utf8(body).map_err(|_| "pool body is not UTF-8".to_owned())?;
    match format {
        PoolFormat::Sqlalchemy => parse_sqlalchemy(text),
        PoolFormat::Json => {
            let json: Value =
                serde_json::from_str(text).map_err(|e| format!("pool body is not JSON: {e}"))?;
            parse_json(&json, p)
        }
        PoolFormat::Auto => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => parse_json(&Value::Object(o), p),
            // FastAPI returning `engine.pool.status()` sends a JSON string.
            Ok(Value::String(s)) => parse_sqlalchemy(&s),
            Ok(other) => Err(format!(
                "pool body is JSON but not an object: {}",
                kind_of(&other)
            )),
            Err(_) => parse_sqlalchemy(text),
        },
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointers() -> PoolPointers {
        PoolPointers {
            pool_size: "/pool_size".into(),
            checked_in: "/checked_in".into(),
            checked_out: "/checked_out".into(),
            overflow: "/overflow".into(),
            max_overflow: "/max_overflow".into(),
        }
    }

    type Want = Result<(f64, f64, Option<f64>, Option<f64>), &'static str>;

    #[test]
    fn pool_table() {
        let cases: &[(&str, PoolFormat, Want)] = &[
            // seed 003's endpoint
            (
                r#"{"pool_size":5,"checked_in":3,"checked_out":2,"overflow":0,"total_connections":5}"#,
                PoolFormat::Auto,
                Ok((5.0, 2.0, Some(3.0), Some(0.0))),
            ),
            // SQLAlchemy text, exactly as QueuePool.status() formats it
            (
                "Pool size: 5  Connections in pool: 0 Current Overflow: -3 Current Checked out connections: 2",
                PoolFormat::Auto,
                Ok((5.0, 2.0, Some(0.0), Some(-3.0))),
            ),
            (
                "Pool size: 5  Connections in pool: 0 Current Overflow: 4 Current Checked out connections: 9\n",
                PoolFormat::Sqlalchemy,
                Ok((5.0, 9.0, Some(0.0), Some(4.0))),
            ),
            // the same text as a JSON string (FastAPI returning pool.status())
            (
                r#""Pool size: 10  Connections in pool: 1 Current Overflow: -8 Current Checked out connections: 1""#,
                PoolFormat::Auto,
                Ok((10.0, 1.0, Some(1.0), Some(-8.0))),
            ),
            // the overflow limit reported
            (
                r#"{"pool_size":5,"checked_out":1,"max_overflow":2}"#,
                PoolFormat::Json,
                Ok((5.0, 1.0, None, None)),
            ),
            // optional fields missing
            (
                r#"{"pool_size":5,"checked_out":1}"#,
                PoolFormat::Json,
                Ok((5.0, 1.0, None, None)),
            ),
            (
                r#"{"pool_size":5}"#,
                PoolFormat::Auto,
                Err("pool body has no number at \"/checked_out\""),
            ),
            (
                r#"{"pool_size":"five","checked_out":1}"#,
                PoolFormat::Auto,
                Err("pool field \"/pool_size\" is not a number: \"five\""),
            ),
            (
                "NullPool",
                PoolFormat::Auto,
                Err("only QueuePool reports pool numbers"),
            ),
            (
                "<html>502</html>",
                PoolFormat::Auto,
                Err("not SQLAlchemy QueuePool.status() text"),
            ),
            (
                "[1,2]",
                PoolFormat::Auto,
                Err("JSON but not an object: an array"),
            ),
            (
                "Pool size: 5",
                PoolFormat::Json,
                Err("pool body is not JSON"),
            ),
        ];
        for (body, format, want) in cases {
            let got = parse_pool(body.as_bytes(), *format, &pointers());
            match (got, want) {
                (Ok(s), Ok((size, out, inn, ovf))) => {
                    assert_eq!(
                        (s.size, s.checked_out, s.checked_in, s.overflow),
                        (*size, *out, *inn, *ovf),
                        "{body}"
                    );
                }
                (Err(e), Err(w)) => assert!(e.contains(w), "{body}: {e}"),
                (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn nested_pointers() {
        let json = serde_json::json!({"db": {"pool": {"size": 20, "busy": 5, "extra": 2}}});
        let p = PoolPointers {
            pool_size: "/db/pool/size".into(),
            checked_in: String::new(),
            checked_out: "/db/pool/busy".into(),
            overflow: "/db/pool/extra".into(),
            max_overflow: String::new(),
        };
        let s = parse_json(&json, &p).unwrap();
        assert_eq!(
            (s.size, s.checked_out, s.checked_in, s.overflow),
            (20.0, 5.0, None, Some(2.0))
        );
    }

    #[test]
    fn derived_numbers() {
        let s = PoolStats {
            size: 5.0,
            checked_out: 2.0,
            checked_in: Some(0.0),
            overflow: Some(-3.0),
            max_overflow: None,
        };
        assert_eq!(s.saturation(Some(10)), Some(2.0 / 15.0));
        assert_eq!(s.saturation(Some(0)), Some(0.4));
        assert_eq!(s.saturation(Some(-1)), None);
        // No limit known: the seed rule checked_out / pool_size.
        assert_eq!(s.saturation(None), Some(0.4));
        // The field test's exhausted pool: 10 of 10 out, overflow 5 of 5.
        let exhausted = PoolStats {
            size: 10.0,
            checked_out: 10.0,
            checked_in: Some(0.0),
            overflow: Some(5.0),
            max_overflow: None,
        };
        assert_eq!(exhausted.saturation(None), Some(1.0));
        // What the app reports wins over the config.
        let reported = PoolStats {
            max_overflow: Some(5.0),
            checked_out: 15.0,
            ..exhausted
        };
        assert_eq!(reported.saturation(Some(10)), Some(1.0));
        assert_eq!(reported.overflow_limit(Some(10)), Some(5.0));
        assert_eq!(s.overflow_in_use(), Some(0.0));
        assert_eq!(s.open(), Some(2.0));
        let busy = PoolStats {
            overflow: Some(4.0),
            ..s
        };
        assert_eq!(busy.overflow_in_use(), Some(4.0));
        let empty = PoolStats { size: 0.0, ..s };
        assert_eq!(empty.saturation(Some(0)), None);
        assert_eq!(empty.saturation(None), None);
    }
}
