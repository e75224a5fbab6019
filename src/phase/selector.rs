//! Trigger selectors: a PromQL vector selector (`name{label="v",other=~"re"}`)
//! or `histogram_quantile(q, selector)`, evaluated against the series
//! perfwatch itself exports. Parsing is promql-parser's; only these two
//! shapes are accepted, because perfwatch evaluates them itself.

use prometheus::proto::{MetricFamily, MetricType};
use promql_parser::label::Matcher;
use promql_parser::parser::{self, Expr};

/// A parsed trigger selector.
#[derive(Debug, Clone)]
pub struct Selector {
    /// The metric (family) name.
    pub name: String,
    /// Label matchers; all must match.
    pub matchers: Vec<Matcher>,
    /// `Some(q)` for `histogram_quantile(q, …)`.
    pub quantile: Option<f64>,
}

/// Parses a selector; errors quote the bad text.
pub fn parse(text: &str) -> Result<Selector, String> {
    let expr = parser::parse(text).map_err(|e| format!("selector \"{text}\" is not valid: {e}"))?;
    let unsupported = || {
        format!(
            "selector \"{text}\" must be `name{{label=\"value\"}}` or `histogram_quantile(q, name{{…}})`"
        )
    };
    let (vs, quantile) = match expr {
        Expr::VectorSelector(vs) => (vs, None),
        Expr::Call(call) if call.func.name == "histogram_quantile" && call.args.args.len() == 2 => {
            let q = match call.args.args[0].as_ref() {
                Expr::NumberLiteral(n) if (0.0..=1.0).contains(&n.val) => n.val,
                _ => {
                    return Err(format!(
                        "selector \"{text}\": the quantile must be a number in [0, 1]"
                    ));
                }
            };
            match call.args.args[1].as_ref() {
                Expr::VectorSelector(vs) => (vs.clone(), Some(q)),
                _ => return Err(unsupported()),
            }
        }
        _ => return Err(unsupported()),
    };
    if vs.offset.is_some() || vs.at.is_some() || !vs.matchers.or_matchers.is_empty() {
        return Err(unsupported());
    }
    let name = vs.name.clone().ok_or_else(unsupported)?;
    let matchers = vs
        .matchers
        .matchers
        .iter()
        .filter(|m| m.name != "__name__")
        .cloned()
        .collect();
    Ok(Selector {
        name,
        matchers,
        quantile,
    })
}

/// Cumulative histogram buckets `(upper bound, cumulative count)`, +Inf last.
pub type Buckets = Vec<(f64, f64)>;

/// What a selector matched in one set of families.
#[derive(Debug, Clone, PartialEq)]
pub enum Matched {
    /// Nothing matched.
    None,
    /// Values of matching gauge/counter series.
    Values(Vec<f64>),
    /// Matching histogram series' buckets, merged (summed per bound).
    Histogram(Buckets),
}

impl Selector {
    fn labels_match(&self, m: &prometheus::proto::Metric) -> bool {
        self.matchers.iter().all(|matcher| {
            let value = m
                .get_label()
                .iter()
                .find(|l| l.name() == matcher.name)
                .map(|l| l.value())
                .unwrap_or("");
            matcher.is_match(value)
        })
    }

    /// Evaluates against `families`.
    pub fn evaluate(&self, families: &[MetricFamily]) -> Matched {
        let Some(family) = families.iter().find(|f| f.name() == self.name) else {
            return Matched::None;
        };
        let metrics = family.get_metric().iter().filter(|m| self.labels_match(m));
        match family.get_field_type() {
            MetricType::HISTOGRAM => {
                let mut merged: Buckets = Vec::new();
                let mut any = false;
                for m in metrics {
                    any = true;
                    let h = m.get_histogram();
                    let mut buckets: Buckets = h
                        .get_bucket()
                        .iter()
                        .map(|b| (b.upper_bound(), b.cumulative_count() as f64))
                        .collect();
                    buckets.push((f64::INFINITY, h.get_sample_count() as f64));
                    if merged.is_empty() {
                        merged = buckets;
                    } else {
                        for (slot, (_, c)) in merged.iter_mut().zip(buckets) {
                            slot.1 += c;
                        }
                    }
                }
                if any {
                    Matched::Histogram(merged)
                } else {
                    Matched::None
                }
            }
            MetricType::COUNTER => {
                let v: Vec<f64> = metrics.map(|m| m.get_counter().get_value()).collect();
                if v.is_empty() {
                    Matched::None
                } else {
                    Matched::Values(v)
                }
            }
            // Gauges, and untyped families (their value is in the gauge field).
            _ => {
                let v: Vec<f64> = metrics.map(|m| m.get_gauge().get_value()).collect();
                if v.is_empty() {
                    Matched::None
                } else {
                    Matched::Values(v)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{Families, HistogramData};

    #[test]
    fn parse_table() {
        type Want = Result<(&'static str, usize, Option<f64>), &'static str>;
        let cases: &[(&str, Want)] = &[
            (
                "perfwatch_custom_query_value{query=\"trips_total\"}",
                Ok(("perfwatch_custom_query_value", 1, None)),
            ),
            ("x{a=~\"b.*\",c!=\"d\"}", Ok(("x", 2, None))),
            ("x", Ok(("x", 0, None))),
            (
                "histogram_quantile(0.95, d_seconds{t=\"a\"})",
                Ok(("d_seconds", 1, Some(0.95))),
            ),
            ("x{", Err("is not valid")),
            ("rate(x[5m])", Err("must be")),
            ("histogram_quantile(2, x)", Err("quantile must be")),
            ("x offset 5m", Err("must be")),
        ];
        for (text, want) in cases {
            match (parse(text), want) {
                (Ok(s), Ok((name, n, q))) => {
                    assert_eq!(
                        (s.name.as_str(), s.matchers.len(), s.quantile),
                        (*name, *n, *q),
                        "{text}"
                    )
                }
                (Err(e), Err(frag)) => assert!(e.contains(frag), "{text}: {e}"),
                (got, _) => panic!("{text}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn evaluate_values_and_histograms() {
        let mut f = Families::new();
        f.gauge_named("g", "h", &[("target", "a"), ("window", "5m")], 0.6);
        f.gauge_named("g", "h", &[("target", "b"), ("window", "5m")], 0.9);
        static B: [f64; 2] = [1.0, 10.0];
        let mut h = HistogramData::new(&B);
        h.observe(0.5);
        h.observe(20.0);
        f.histogram_named("d_seconds", "h", &[("target", "a")], &h);
        let fams = f.into_vec();
        let sel = |t: &str| parse(t).unwrap().evaluate(&fams);
        assert_eq!(sel("g{window=\"5m\"}"), Matched::Values(vec![0.6, 0.9]));
        assert_eq!(sel("g{target=~\"a|c\"}"), Matched::Values(vec![0.6]));
        assert_eq!(sel("g{target=\"zzz\"}"), Matched::None);
        assert_eq!(sel("missing"), Matched::None);
        assert_eq!(
            sel("histogram_quantile(0.5, d_seconds)"),
            Matched::Histogram(vec![(1.0, 1.0), (10.0, 1.0), (f64::INFINITY, 2.0)])
        );
    }
}
