//! Reading the structured replies of `SENTINEL …` and `CLUSTER SHARDS`
//! (pure): a flat `[k, v, k, v, …]` array in RESP2, a map in RESP3.

use std::collections::HashMap;

use redis::Value;

/// A reply's text: bulk, simple or verbatim strings, integers, `OK`.
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(n) => Some(n.to_string()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

/// The pairs of a flat array or a map, by key; values kept as they are.
/// Anything else (an error, nil) has none.
pub(crate) fn pairs(v: &Value) -> HashMap<String, &Value> {
    let mut out = HashMap::new();
    let mut add = |k: &Value, v| {
        if let Some(k) = text(k) {
            out.insert(k, v);
        }
    };
    match v {
        Value::Array(items) => {
            for kv in items.chunks(2) {
                if let [k, v] = kv {
                    add(k, v);
                }
            }
        }
        Value::Map(items) => {
            for (k, v) in items {
                add(k, v);
            }
        }
        _ => {}
    }
    out
}

/// [`pairs`] whose values are text.
pub(crate) fn fields(v: &Value) -> HashMap<String, String> {
    pairs(v)
        .into_iter()
        .filter_map(|(k, v)| Some((k, text(v)?)))
        .collect()
}
