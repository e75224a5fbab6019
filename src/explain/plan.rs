//! A server's JSON plan (`EXPLAIN (FORMAT JSON)` on PostgreSQL,
//! `EXPLAIN FORMAT=JSON` on MySQL/MariaDB) as a bounded headline: each table
//! access with its kind and row estimate, and the column names its
//! conditions use; and the full plan, with literals masked when the user
//! keeps no examples (pure).

use serde::Serialize;
use serde_json::Value;

/// Most table accesses kept from one plan (a plan of a statement joining
/// hundreds of tables is summarized by its first ones).
pub const MAX_SCANS: usize = 64;
/// Longest plan (bytes of JSON) kept for the API; a longer one is served
/// as its headline only.
pub const MAX_PLAN_BYTES: usize = 64 * 1024;

/// How a table is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanKind {
    /// Every row (PostgreSQL `Seq Scan`, MySQL `ALL`).
    Seq,
    /// Through an index (index scan, `ref`, `range`, `eq_ref`, ...).
    Index,
    /// From the index alone (index-only scan, MySQL `using_index`).
    IndexOnly,
    /// Bitmap heap scan / index merge.
    Bitmap,
    /// Anything else that reads a relation (a full index scan, a function
    /// scan, ...).
    Other,
}

impl ScanKind {
    /// Every kind, in label order.
    pub const ALL: [ScanKind; 5] = [
        ScanKind::Seq,
        ScanKind::Index,
        ScanKind::IndexOnly,
        ScanKind::Bitmap,
        ScanKind::Other,
    ];

    /// The `scan` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanKind::Seq => "seq",
            ScanKind::Index => "index",
            ScanKind::IndexOnly => "index_only",
            ScanKind::Bitmap => "bitmap",
            ScanKind::Other => "other",
        }
    }
}

/// One table access of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scan {
    /// How the table is read.
    pub kind: ScanKind,
    /// The table.
    pub table: String,
    /// Its schema, when the plan says (PostgreSQL `VERBOSE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The index used, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// The planner's row estimate for this access (PostgreSQL: rows it
    /// yields after its filter; MySQL: rows it reads).
    pub estimated_rows: f64,
    /// Column names the access filters or joins by: identifiers of its own
    /// conditions and of the join conditions above it that name its alias
    /// (never a literal). Which of them are columns of the table is for
    /// the advice to check against the table's facts.
    #[serde(skip)]
    pub condition_columns: Vec<String>,
}

/// A plan's headline and the plan itself.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The table accesses, in plan order (at most [`MAX_SCANS`]).
    pub scans: Vec<Scan>,
    /// The plan's row estimate: PostgreSQL's top node's rows; MySQL's
    /// largest table access (the server estimates no result rows).
    pub estimated_rows: f64,
    /// The planner's total cost, where it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_cost: Option<f64>,
    /// The whole plan as the server gave it (conditions masked unless the
    /// user keeps examples); `None` beyond [`MAX_PLAN_BYTES`].
    pub full: Option<Value>,
}

impl Plan {
    /// How many table accesses of `kind` it has.
    pub fn count(&self, kind: ScanKind) -> usize {
        self.scans.iter().filter(|s| s.kind == kind).count()
    }
}

/// Why a plan could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// Not JSON.
    #[error("the plan is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not a plan of the expected shape.
    #[error("the plan has no {0}")]
    Shape(&'static str),
}

/// How a condition uses a column, for the order of an index's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Use {
    /// `=`, `IN`, `= ANY`: an index can lead with it.
    Eq,
    /// `<`, `>`, `BETWEEN`: one such column can follow the equalities.
    Range,
    /// Anything else (`LIKE`, `IS NULL`, a function's argument).
    Other,
    /// `<>` / `!=`: an index does not help.
    NotEq,
}

/// The comparison right after `rest` (spaces, `)` and casts skipped).
fn operator_after(rest: &str) -> Option<Use> {
    let mut r = rest.trim_start();
    loop {
        if let Some(x) = r.strip_prefix(')') {
            r = x.trim_start();
        } else if let Some(x) = r.strip_prefix("::") {
            let end = x
                .find(|c: char| {
                    !(c.is_ascii_alphanumeric() || c == '_' || c == '[' || c == ']' || c == ' ')
                })
                .unwrap_or(x.len());
            r = x[end..].trim_start();
        } else {
            break;
        }
    }
    operator_at(r)
}

/// The comparison `r` starts with.
fn operator_at(r: &str) -> Option<Use> {
    let lower = r.get(..8).unwrap_or(r).to_ascii_lowercase();
    if r.starts_with("<>") || r.starts_with("!=") {
        Some(Use::NotEq)
    } else if r.starts_with('=') {
        Some(Use::Eq)
    } else if r.starts_with('<') || r.starts_with('>') || lower.starts_with("between") {
        Some(Use::Range)
    } else if lower.starts_with("in ") || lower.starts_with("in(") {
        Some(Use::Eq)
    } else {
        None
    }
}

/// Identifiers of a condition in order of appearance, as `(qualifier,
/// name, use)`, lowercased: quoted strings, numbers and casts' type names
/// are skipped, so no literal is ever kept. `a.b.c` gives `(b, c)`;
/// backquoted and double-quoted identifiers (MySQL, PostgreSQL) count as
/// identifiers. The use is the comparison right after the identifier, or
/// else the one right before it (`5 = t.a`).
pub fn condition_identifiers(text: &str) -> Vec<(Option<String>, String, Use)> {
    let b = text.as_bytes();
    let mut out: Vec<(Option<String>, String, Use)> = Vec::new();
    let mut chain: Vec<String> = Vec::new();
    let mut i = 0;
    let mut after_cast = false;
    // The comparison seen since the last identifier (for `? = t.a`).
    let mut before: Option<Use> = None;
    while i < b.len() {
        let c = b[i];
        let ident = if c == b'`' || c == b'"' {
            let end = text[i + 1..].find(c as char).map_or(b.len(), |e| i + 1 + e);
            let id = text[i + 1..end].to_lowercase();
            i = (end + 1).min(b.len());
            Some(id)
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            Some(text[start..i].to_ascii_lowercase())
        } else {
            None
        };
        if let Some(id) = ident {
            // A function name, a cast's type, or a keyword is no column.
            let call = text[i..].trim_start().starts_with('(');
            if after_cast || call || is_keyword(&id) {
                after_cast = false;
                chain.clear();
                if matches!(id.as_str(), "and" | "or") {
                    before = None;
                }
                continue;
            }
            chain.push(id);
            if text[i..].starts_with('.') {
                i += 1;
                continue;
            }
            let used = operator_after(&text[i..]).or(before).unwrap_or(Use::Other);
            if let Some(name) = chain.pop() {
                out.push((chain.pop(), name, used));
            }
            chain.clear();
            before = None;
            continue;
        }
        match c {
            b'\'' => {
                // A string literal: skipped whole ('' stays inside).
                i += 1;
                while i < b.len() {
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b':' if b.get(i + 1) == Some(&b':') => {
                after_cast = true;
                i += 2;
            }
            b'0'..=b'9' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
            }
            b'=' | b'<' | b'>' | b'!' => {
                before = before.or(operator_at(&text[i..]));
                i += 1;
            }
            _ => i += 1,
        }
        chain.clear();
    }
    out
}

/// Words of condition texts that are never columns.
fn is_keyword(w: &str) -> bool {
    matches!(
        w,
        "and"
            | "or"
            | "not"
            | "is"
            | "null"
            | "true"
            | "false"
            | "in"
            | "any"
            | "all"
            | "like"
            | "ilike"
            | "between"
            | "case"
            | "when"
            | "then"
            | "else"
            | "end"
            | "array"
            | "subplan"
            | "hashed"
            | "distinct"
            | "from"
            | "collate"
            | "escape"
            | "multiexpr"
            | "initplan"
    )
}

/// The identifiers of `conds` that may be columns of a table read under
/// `alias` (or `table`): unqualified ones only from its own conditions,
/// qualified ones when the qualifier is its alias or name. Ordered for an
/// index: equalities first, then one range. Columns only compared with
/// `<>`, or only used inside an expression or a function (`status + 0 = 1`,
/// `lower(email) = ?`), are left out: no plain index on them serves that.
fn columns_for(own: &[&str], above: &[String], alias: Option<&str>, table: &str) -> Vec<String> {
    let table = table.to_lowercase();
    let mine = |q: &Option<String>| q.as_deref().is_some_and(|q| Some(q) == alias || q == table);
    let mut found: Vec<(String, Use)> = Vec::new();
    let mut note = |name: String, used: Use| match found.iter_mut().find(|f| f.0 == name) {
        Some(f) => f.1 = f.1.min(used),
        None => found.push((name, used)),
    };
    for text in own {
        for (q, name, used) in condition_identifiers(text) {
            if q.is_none() || mine(&q) {
                note(name, used);
            }
        }
    }
    for text in above.iter() {
        for (q, name, used) in condition_identifiers(text) {
            if mine(&q) {
                note(name, used);
            }
        }
    }
    let of = |u: Use| found.iter().filter(move |f| f.1 == u).map(|f| f.0.clone());
    of(Use::Eq).chain(of(Use::Range).take(1)).collect()
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// PostgreSQL's `EXPLAIN (FORMAT JSON, VERBOSE)` output.
pub fn parse_postgres(text: &str) -> Result<Plan, PlanError> {
    let v: Value = serde_json::from_str(text).map_err(|e| PlanError::NotJson(e.to_string()))?;
    let root = v
        .get(0)
        .and_then(|p| p.get("Plan"))
        .ok_or(PlanError::Shape("\"Plan\" node"))?;
    let mut scans = Vec::new();
    pg_walk(root, &mut Vec::new(), &mut scans);
    Ok(Plan {
        scans,
        estimated_rows: root.get("Plan Rows").and_then(num).unwrap_or(0.0),
        total_cost: root.get("Total Cost").and_then(num),
        full: Some(v),
    })
}

/// Join conditions of a PostgreSQL node (they name both sides' aliases).
const PG_JOIN_CONDS: [&str; 3] = ["Hash Cond", "Merge Cond", "Join Filter"];

fn pg_walk(node: &Value, above: &mut Vec<String>, out: &mut Vec<Scan>) {
    let s = |k: &str| node.get(k).and_then(Value::as_str);
    let pushed = PG_JOIN_CONDS
        .iter()
        .filter_map(|k| s(k).map(str::to_owned))
        .collect::<Vec<_>>();
    let n = pushed.len();
    above.extend(pushed);
    if let Some(table) = s("Relation Name")
        && out.len() < MAX_SCANS
    {
        let kind = match s("Node Type").unwrap_or("") {
            "Seq Scan" => ScanKind::Seq,
            "Index Scan" => ScanKind::Index,
            "Index Only Scan" => ScanKind::IndexOnly,
            "Bitmap Heap Scan" => ScanKind::Bitmap,
            _ => ScanKind::Other,
        };
        let own: Vec<&str> = ["Filter", "Index Cond", "Recheck Cond"]
            .iter()
            .filter_map(|k| s(k))
            .collect();
        out.push(Scan {
            kind,
            table: table.to_owned(),
            schema: s("Schema").map(str::to_owned),
            index: s("Index Name").map(str::to_owned),
            estimated_rows: node.get("Plan Rows").and_then(num).unwrap_or(0.0),
            condition_columns: columns_for(&own, above, s("Alias"), table),
        });
    }
    // A bitmap heap scan's index is its child's.
    if let Some(children) = node.get("Plans").and_then(Value::as_array) {
        for child in children {
            pg_walk(child, above, out);
        }
        if s("Node Type") == Some("Bitmap Heap Scan")
            && let Some(last) = out.iter_mut().rev().find(|x| x.kind == ScanKind::Bitmap)
            && last.index.is_none()
        {
            last.index = children
                .iter()
                .find_map(|c| c.get("Index Name").and_then(Value::as_str))
                .map(str::to_owned);
        }
    }
    above.truncate(above.len() - n);
}

/// MySQL's or MariaDB's `EXPLAIN FORMAT=JSON` output.
pub fn parse_mysql(text: &str) -> Result<Plan, PlanError> {
    let v: Value = serde_json::from_str(text).map_err(|e| PlanError::NotJson(e.to_string()))?;
    let block = v
        .get("query_block")
        .ok_or(PlanError::Shape("\"query_block\""))?;
    let mut scans = Vec::new();
    my_walk(block, &mut Vec::new(), &mut scans);
    let estimated_rows = scans.iter().map(|s| s.estimated_rows).fold(0.0, f64::max);
    let total_cost = block
        .get("cost_info")
        .and_then(|c| c.get("query_cost"))
        .or_else(|| block.get("cost"))
        .and_then(num);
    Ok(Plan {
        scans,
        estimated_rows,
        total_cost,
        full: Some(v),
    })
}

fn my_walk(node: &Value, conds: &mut Vec<String>, out: &mut Vec<Scan>) {
    match node {
        Value::Object(map) => {
            // A join buffer's condition names the tables it joins.
            let pushed = map
                .get("attached_condition")
                .and_then(Value::as_str)
                .filter(|_| !map.contains_key("table_name"))
                .map(str::to_owned);
            let n = usize::from(pushed.is_some());
            conds.extend(pushed);
            if let Some(table) = map.get("table_name").and_then(Value::as_str)
                && out.len() < MAX_SCANS
            {
                let s = |k: &str| map.get(k).and_then(Value::as_str);
                let using_index = map.get("using_index").and_then(Value::as_bool) == Some(true);
                let kind = match s("access_type").unwrap_or("") {
                    "ALL" => ScanKind::Seq,
                    _ if using_index => ScanKind::IndexOnly,
                    "index_merge" => ScanKind::Bitmap,
                    "range" | "ref" | "eq_ref" | "const" | "system" | "ref_or_null"
                    | "unique_subquery" | "index_subquery" | "fulltext" => ScanKind::Index,
                    _ => ScanKind::Other,
                };
                let rows = map
                    .get("rows")
                    .or_else(|| map.get("rows_examined_per_scan"))
                    .and_then(num)
                    .unwrap_or(0.0);
                let own: Vec<&str> = s("attached_condition").into_iter().collect();
                out.push(Scan {
                    kind,
                    table: table.to_owned(),
                    schema: None,
                    index: s("key").map(str::to_owned),
                    estimated_rows: rows,
                    condition_columns: columns_for(&own, conds, None, table),
                });
            }
            for (k, v) in map {
                if k != "attached_condition" {
                    my_walk(v, conds, out);
                }
            }
            conds.truncate(conds.len() - n);
        }
        Value::Array(items) => {
            for v in items {
                my_walk(v, conds, out);
            }
        }
        _ => {}
    }
}

/// Keys whose string values are names or kinds, never literals.
const STRUCTURAL_KEYS: &[&str] = &[
    "Node Type",
    "Relation Name",
    "Schema",
    "Alias",
    "Index Name",
    "Join Type",
    "Strategy",
    "Parent Relationship",
    "Scan Direction",
    "Partial Mode",
    "Subplan Name",
    "CTE Name",
    "Function Name",
    "Operation",
    "table_name",
    "access_type",
    "key",
    "possible_keys",
    "used_key_parts",
    "key_length",
    "select_type",
    "join_type",
    "buffer_type",
    "buffer_size",
    "message",
];

/// `plan` with every string that is not a name or a kind (conditions,
/// output expressions, sort keys) masked like a fingerprint: what a plan
/// shows when the user keeps no examples.
pub fn mask_literals(plan: &mut Value) {
    fn walk(v: &mut Value, structural: bool) {
        match v {
            Value::String(s) if !structural => {
                *s = perfwatch_slowlog::fingerprint(s);
            }
            Value::Array(items) => items.iter_mut().for_each(|x| walk(x, structural)),
            Value::Object(map) => {
                for (k, x) in map.iter_mut() {
                    walk(x, STRUCTURAL_KEYS.contains(&k.as_str()));
                }
            }
            _ => {}
        }
    }
    walk(plan, false);
}

/// Drops the full plan when it is larger than [`MAX_PLAN_BYTES`].
pub fn bound(plan: &mut Plan) {
    if plan
        .full
        .as_ref()
        .is_some_and(|v| v.to_string().len() > MAX_PLAN_BYTES)
    {
        plan.full = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG_SEQ: &str = r#"[{"Plan": {"Node Type": "Seq Scan", "Parallel Aware": false,
        "Relation Name": "trip", "Schema": "public", "Alias": "trip",
        "Startup Cost": 0.0, "Total Cost": 3583.0, "Plan Rows": 9, "Plan Width": 40,
        "Output": ["id", "driver_id", "'secret-literal'::text"],
        "Filter": "((trip.driver_id = 4242) AND ((trip.status)::text = 'done'::text))"}}]"#;

    const PG_JOIN: &str = r#"[{"Plan": {"Node Type": "Hash Join", "Join Type": "Inner",
        "Plan Rows": 120, "Total Cost": 9000.5,
        "Hash Cond": "(t.driver_id = d.id)",
        "Plans": [
          {"Node Type": "Seq Scan", "Relation Name": "trip", "Schema": "public", "Alias": "t", "Plan Rows": 200000},
          {"Node Type": "Hash", "Plan Rows": 3, "Plans": [
            {"Node Type": "Index Scan", "Relation Name": "driver", "Schema": "public", "Alias": "d",
             "Index Name": "driver_pkey", "Plan Rows": 3, "Index Cond": "(d.id = ANY ('{1,2,3}'::integer[]))"}]}]}}]"#;

    #[test]
    fn postgres_seq_scan_headline_and_filter_columns() {
        let p = parse_postgres(PG_SEQ).unwrap();
        assert_eq!(p.estimated_rows, 9.0);
        assert_eq!(p.total_cost, Some(3583.0));
        assert_eq!(p.scans.len(), 1);
        let s = &p.scans[0];
        assert_eq!((s.kind, s.table.as_str()), (ScanKind::Seq, "trip"));
        assert_eq!(s.schema.as_deref(), Some("public"));
        assert_eq!(s.condition_columns, ["driver_id", "status"]);
    }

    #[test]
    fn postgres_join_condition_columns_go_to_their_alias() {
        let p = parse_postgres(PG_JOIN).unwrap();
        let kinds: Vec<(ScanKind, &str)> =
            p.scans.iter().map(|s| (s.kind, s.table.as_str())).collect();
        assert_eq!(
            kinds,
            [(ScanKind::Seq, "trip"), (ScanKind::Index, "driver")]
        );
        assert_eq!(p.scans[0].condition_columns, ["driver_id"]);
        assert_eq!(p.scans[1].condition_columns, ["id"]);
        assert_eq!(p.scans[1].index.as_deref(), Some("driver_pkey"));
        assert_eq!(p.count(ScanKind::Seq), 1);
    }

    #[test]
    fn mariadb_and_mysql_table_accesses() {
        // MariaDB 10.11 (one table) and a join with a buffer.
        let one = r#"{"query_block": {"select_id": 1, "table": {"table_name": "trip",
            "access_type": "ALL", "rows": 199455, "filtered": 100,
            "attached_condition": "trip.driver_id = 4242"}}}"#;
        let p = parse_mysql(one).unwrap();
        assert_eq!(p.scans.len(), 1);
        assert_eq!(p.scans[0].kind, ScanKind::Seq);
        assert_eq!(p.scans[0].estimated_rows, 199455.0);
        assert_eq!(p.scans[0].condition_columns, ["driver_id"]);
        assert_eq!(p.estimated_rows, 199455.0);
        let join = r#"{"query_block": {"select_id": 1, "cost_info": {"query_cost": "51.25"},
            "nested_loop": [
              {"table": {"table_name": "d", "access_type": "range", "key": "PRIMARY", "rows": 3,
                         "using_index": true, "attached_condition": "`app`.`d`.`id` in (1,2,3)"}},
              {"block-nl-join": {"table": {"table_name": "t", "access_type": "ALL", "rows": 5000},
                  "buffer_type": "flat", "join_type": "BNL",
                  "attached_condition": "`app`.`t`.`driver_id` = `app`.`d`.`id`"}}]}}"#;
        let p = parse_mysql(join).unwrap();
        let kinds: Vec<ScanKind> = p.scans.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [ScanKind::IndexOnly, ScanKind::Seq]);
        assert_eq!(p.scans[1].condition_columns, ["driver_id"]);
        assert_eq!(p.total_cost, Some(51.25));
        assert!(parse_mysql("[]").is_err());
        assert!(parse_postgres("not json").is_err());
    }

    #[test]
    fn identifiers_never_include_literals() {
        let ids = condition_identifiers(
            "((t.name)::text = 'o''brien 42'::text) AND (lower(t.email) ~~ 'x%') AND (t.n > 3.5e3) AND (5 = t.k) AND (t.s <> 'x')",
        );
        let names: Vec<(&str, Use)> = ids.iter().map(|(_, n, u)| (n.as_str(), *u)).collect();
        assert_eq!(
            names,
            [
                ("name", Use::Eq),
                ("email", Use::Other),
                ("n", Use::Range),
                ("k", Use::Eq),
                ("s", Use::NotEq)
            ]
        );
        assert!(ids.iter().all(|(q, _, _)| q.as_deref() == Some("t")));
    }

    #[test]
    fn masking_keeps_names_and_hides_every_condition() {
        let mut p = parse_postgres(PG_SEQ).unwrap();
        let full = p.full.as_mut().unwrap();
        mask_literals(full);
        let text = full.to_string();
        assert!(!text.contains("4242"), "{text}");
        assert!(!text.contains("secret-literal"), "{text}");
        assert!(!text.contains("done"), "{text}");
        assert!(text.contains("\"Relation Name\":\"trip\""), "{text}");
        assert!(text.contains("driver_id = ?"), "{text}");
    }
}
