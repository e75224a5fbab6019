//! Building metric families for one poll, merging the families of every target
//! into one exposition, and encoding it with the `prometheus` crate.
//!
//! Collectors do not register long-lived metric objects: a poll returns a fresh
//! set of families, which replaces that target's previous set atomically. That
//! makes "drop the series of a dead target" and "a removed target's series
//! disappear on reload" a matter of forgetting one vector.

use std::collections::BTreeMap;

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType as ProtoType,
};

use crate::catalog::{MetricDef, MetricType};

/// Families of one poll, keyed by name so that samples of one family stay together.
#[derive(Debug, Default, Clone)]
pub struct Families {
    map: BTreeMap<String, MetricFamily>,
}

impl Families {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn family(&mut self, name: &str, help: &str, kind: ProtoType) -> &mut MetricFamily {
        self.map.entry(name.to_owned()).or_insert_with(|| {
            let mut f = MetricFamily::default();
            f.set_name(name.to_owned());
            f.set_help(help.to_owned());
            f.set_field_type(kind);
            f
        })
    }

    /// Adds one sample with `labels` to the family `name`, created with
    /// `help` and `kind` if it is new; `set_value` fills in the value.
    fn push(
        &mut self,
        name: &str,
        help: &str,
        kind: ProtoType,
        labels: &[(&str, &str)],
        set_value: impl FnOnce(&mut Metric),
    ) {
        let mut m = metric(labels);
        set_value(&mut m);
        self.family(name, help, kind).mut_metric().push(m);
    }

    /// Adds a gauge sample of a declared family.
    pub fn gauge(&mut self, def: &MetricDef, labels: &[(&str, &str)], value: f64) {
        check(def, MetricType::Gauge, labels);
        self.gauge_named(def.name, def.help, labels, value);
    }

    /// Adds a counter sample of a declared family.
    pub fn counter(&mut self, def: &MetricDef, labels: &[(&str, &str)], value: f64) {
        check(def, MetricType::Counter, labels);
        self.counter_named(def.name, def.help, labels, value);
    }

    /// Adds an untyped sample of a declared family (see
    /// [`MetricType::Untyped`]: a peer's gauge named like a histogram series).
    /// The value is kept in the sample's gauge field (the `prometheus`
    /// crate's untyped value is deprecated and its text encoder refuses
    /// untyped families: [`encode_text`] writes them itself), so everything
    /// reading a non-counter value reads it as it reads a gauge.
    pub fn untyped(&mut self, def: &MetricDef, labels: &[(&str, &str)], value: f64) {
        check(def, MetricType::Untyped, labels);
        self.untyped_named(def.name, def.help, labels, value);
    }

    /// Adds an untyped sample of a family named from a source's own list (a
    /// server setting whose name ends in `_count`); see [`Self::untyped`].
    pub fn untyped_named(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.gauge_field(name, help, ProtoType::UNTYPED, labels, value);
    }

    /// Adds a sample whose value is in the gauge field (gauges and untyped).
    fn gauge_field(
        &mut self,
        name: &str,
        help: &str,
        kind: ProtoType,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let mut g = Gauge::default();
        g.set_value(value);
        self.push(name, help, kind, labels, |m| m.set_gauge(g));
    }

    /// Adds a histogram sample of a declared family from non-cumulative
    /// bucket counts.
    pub fn histogram(&mut self, def: &MetricDef, labels: &[(&str, &str)], data: &HistogramData) {
        check(def, MetricType::Histogram, labels);
        self.histogram_named(def.name, def.help, labels, data);
    }

    /// Adds a gauge sample of a family the user named (custom queries);
    /// everything perfwatch names itself goes through a catalog ([`Self::gauge`]).
    pub fn gauge_named(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.gauge_field(name, help, ProtoType::GAUGE, labels, value);
    }

    /// Adds a counter sample of a family the user named (`name` must end in
    /// `_total`); see [`Self::gauge_named`].
    pub fn counter_named(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        debug_assert!(
            name.ends_with("_total"),
            "counter {name} must end in _total"
        );
        let mut c = Counter::default();
        c.set_value(value);
        self.push(name, help, ProtoType::COUNTER, labels, |m| m.set_counter(c));
    }

    pub fn histogram_named(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        data: &HistogramData,
    ) {
        let mut h = Histogram::default();
        let mut cumulative = 0;
        let buckets = data
            .bounds
            .iter()
            .zip(&data.counts)
            .map(|(&upper, &n)| {
                cumulative += n;
                let mut b = Bucket::default();
                b.set_upper_bound(upper);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect();
        h.set_bucket(buckets);
        h.set_sample_count(data.count);
        h.set_sample_sum(data.sum);
        self.push(name, help, ProtoType::HISTOGRAM, labels, |m| {
            m.set_histogram(h)
        });
    }

    /// Adds families produced elsewhere (e.g. the process collector).
    pub fn extend(&mut self, families: impl IntoIterator<Item = MetricFamily>) {
        for mut f in families {
            let metrics = f.take_metric();
            let name = f.name().to_owned();
            let entry = self.map.entry(name).or_insert(f);
            entry.mut_metric().extend(metrics);
        }
    }

    /// Whether no family was added.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The families, sorted by name.
    pub fn into_vec(self) -> Vec<MetricFamily> {
        self.map.into_values().collect()
    }
}

/// In debug builds (every test run), a sample must match its declaration.
fn check(def: &MetricDef, kind: MetricType, labels: &[(&str, &str)]) {
    debug_assert_eq!(
        def.kind,
        kind,
        "{} is declared as a {}",
        def.name,
        def.kind.as_str()
    );
    debug_assert!(
        def.has_labels(labels),
        "{}: labels {:?} are not the declared {:?}",
        def.name,
        labels.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        def.labels
    );
}

fn metric(labels: &[(&str, &str)]) -> Metric {
    Metric::from_label(
        labels
            .iter()
            .map(|(k, v)| {
                let mut l = LabelPair::default();
                l.set_name((*k).to_owned());
                l.set_value((*v).to_owned());
                l
            })
            .collect(),
    )
}

/// Histograms are kept as plain data by the collectors (and by the
/// slow-query library, whose digest is built on them); see
/// [`perfwatch_slowlog::histogram`] for why the type lives there.
pub use perfwatch_slowlog::histogram::HistogramData;

/// `labels` followed by `more`: the labels of a family that carries those of
/// its group (a class, an index, a replication link) and its own.
pub fn with_labels<'a>(
    labels: &[(&'a str, &'a str)],
    more: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    [labels, more].concat()
}

/// Looks up the value of a gauge or counter sample by name and labels (all of
/// `labels` must match; other labels are ignored). Used by tests and the
/// landing page.
pub fn sample_value(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let f = families.iter().find(|f| f.name() == name)?;
    f.get_metric()
        .iter()
        .find(|m| {
            labels.iter().all(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            })
        })
        .map(|m| match f.get_field_type() {
            ProtoType::COUNTER => m.get_counter().get_value(),
            // Untyped samples keep their value in the gauge field.
            _ => m.get_gauge().get_value(),
        })
}

/// One row of [`assert_samples`]: a sample's name, labels and expected value
/// (`None`: no such sample).
#[cfg(test)]
pub(crate) type ExpectedSample<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<f64>);

/// Asserts `sample_value(families, name, labels) == want` for every row,
/// naming the series on failure: one table instead of an `assert_eq!` per
/// series in the collectors' export tests.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_samples(families: &[MetricFamily], rows: &[ExpectedSample]) {
    for (name, labels, want) in rows {
        assert_eq!(
            sample_value(families, name, labels),
            *want,
            "{name}{labels:?}"
        );
    }
}

/// Merges the families of several sources into one list with one entry per
/// name (the text format forbids a family appearing twice).
pub fn merge<'a>(sources: impl IntoIterator<Item = &'a [MetricFamily]>) -> Vec<MetricFamily> {
    let mut out = Families::new();
    for families in sources {
        out.extend(families.iter().cloned());
    }
    out.into_vec()
}

/// Encodes families in the Prometheus text format: untyped ones (see
/// [`Families::untyped`]) here, every other run of families by the
/// `prometheus` crate (whose encoder panics on an untyped family).
pub fn encode_text(families: &[MetricFamily]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut start = 0;
    for (i, f) in families.iter().enumerate() {
        if f.get_field_type() == ProtoType::UNTYPED {
            encode_typed(&families[start..i], &mut buf);
            encode_untyped(f, &mut buf);
            start = i + 1;
        }
    }
    encode_typed(&families[start..], &mut buf);
    buf
}

fn encode_typed(families: &[MetricFamily], buf: &mut Vec<u8>) {
    // Only fails on families the crate considers malformed (e.g. a missing
    // name), which `Families` never builds; leaving them out is the safe
    // fallback.
    if let Err(e) = prometheus::Encoder::encode(&prometheus::TextEncoder::new(), families, buf) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
}

/// Writes one untyped family as the crate writes a gauge (same escaping and
/// number format), with `# TYPE … untyped`.
fn encode_untyped(f: &MetricFamily, buf: &mut Vec<u8>) {
    use std::fmt::Write as _;
    let escape = |s: &str, quote: bool| {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '"' if quote => out.push_str("\\\""),
                c => out.push(c),
            }
        }
        out
    };
    let name = f.name();
    let mut text = String::new();
    if !f.help().is_empty() {
        let _ = writeln!(text, "# HELP {name} {}", escape(f.help(), false));
    }
    let _ = writeln!(text, "# TYPE {name} untyped");
    for m in f.get_metric() {
        text.push_str(name);
        for (i, l) in m.get_label().iter().enumerate() {
            text.push(if i == 0 { '{' } else { ',' });
            let _ = write!(text, "{}=\"{}\"", l.name(), escape(l.value(), true));
        }
        if !m.get_label().is_empty() {
            text.push('}');
        }
        let _ = writeln!(text, " {}", m.get_gauge().get_value());
    }
    buf.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untyped_families_are_encoded_between_the_others() {
        const U: MetricDef = MetricDef {
            name: "b_count",
            kind: MetricType::Untyped,
            help: "a \\ b",
            labels: &["k"],
        };
        let mut f = Families::new();
        f.gauge_named("a", "ha", &[], 1.0);
        f.untyped(&U, &[("k", "x\"y\n")], 2.5);
        f.untyped(&U, &[("k", "z")], 3.0);
        f.gauge_named("c", "hc", &[("k", "v")], 4.0);
        let families = f.into_vec();
        assert_eq!(sample_value(&families, "b_count", &[("k", "z")]), Some(3.0));
        let text = String::from_utf8(encode_text(&families)).unwrap();
        assert_eq!(
            text,
            "# HELP a ha\n# TYPE a gauge\na 1\n\
             # HELP b_count a \\\\ b\n# TYPE b_count untyped\n\
             b_count{k=\"x\\\"y\\n\"} 2.5\nb_count{k=\"z\"} 3\n\
             # HELP c hc\n# TYPE c gauge\nc{k=\"v\"} 4\n"
        );
    }

    #[test]
    fn merge_keeps_one_family_per_name() {
        let mut a = Families::new();
        a.gauge_named("x", "help", &[("target", "a")], 1.0);
        let mut b = Families::new();
        b.gauge_named("x", "help", &[("target", "b")], 2.0);
        b.counter_named("y_total", "help", &[], 3.0);
        let (a, b) = (a.into_vec(), b.into_vec());
        let merged = merge([a.as_slice(), b.as_slice()]);
        assert_eq!(merged.len(), 2);
        let text = String::from_utf8(encode_text(&merged)).unwrap();
        assert_eq!(text.matches("# TYPE x gauge").count(), 1);
        assert!(text.contains("x{target=\"a\"} 1\n"), "{text}");
        assert!(text.contains("x{target=\"b\"} 2\n"), "{text}");
        assert_eq!(sample_value(&merged, "y_total", &[]), Some(3.0));
    }

    #[test]
    fn histogram_is_cumulative() {
        static BOUNDS: [f64; 3] = [0.1, 1.0, 10.0];
        let mut h = HistogramData::new(&BOUNDS);
        for v in [0.05, 0.5, 0.7, 20.0] {
            h.observe(v);
        }
        let mut f = Families::new();
        f.histogram_named("d_seconds", "help", &[], &h);
        let text = String::from_utf8(encode_text(&f.into_vec())).unwrap();
        assert!(text.contains("d_seconds_bucket{le=\"0.1\"} 1\n"), "{text}");
        assert!(text.contains("d_seconds_bucket{le=\"1\"} 3\n"), "{text}");
        assert!(text.contains("d_seconds_bucket{le=\"10\"} 3\n"), "{text}");
        assert!(text.contains("d_seconds_bucket{le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("d_seconds_count 4\n"), "{text}");
    }
}
