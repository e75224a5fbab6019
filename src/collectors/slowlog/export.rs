//! A slow-query digest as metric families: the one place where the
//! library's [`Series`](perfwatch_slowlog::digest::Series) becomes the
//! `perfwatch_slow_query*` families, for slow-log targets and for the
//! PostgreSQL/MySQL statement statistics alike (so their series cannot
//! differ).

use perfwatch_slowlog::Digest;
use perfwatch_slowlog::digest::{Counters, OTHER};

use super::catalog;
use crate::exposition::Families;

/// Exports `digest` as of its last `rank()` for target `target`: per class
/// (the top classes by their query id, the rest as `other` per database)
/// and per database.
pub(crate) fn digest(digest: &Digest, target: &str, out: &mut Families) {
    let series = digest.series();
    let emit = |out: &mut Families, db: &str, id: &str, c: &Counters| {
        let l = [("target", target), ("db", db), ("fingerprint", id)];
        out.histogram(&catalog::DURATION, &l, &c.hist);
        out.counter(&catalog::LOCK_SECONDS, &l, c.lock);
        out.counter(&catalog::ROWS_EXAMINED, &l, c.rows_examined as f64);
        out.counter(&catalog::ROWS_SENT, &l, c.rows_sent as f64);
    };
    for class in &series.own {
        emit(out, class.db, class.id, &class.counters);
        out.gauge(
            &catalog::FINGERPRINT_INFO,
            &[
                ("target", target),
                ("fingerprint", class.id),
                ("db", class.db),
                ("query", class.text),
            ],
            1.0,
        );
    }
    for (db, c) in &series.other {
        emit(out, db, OTHER, c);
    }
    for (db, totals) in &series.databases {
        let l = [("target", target), ("db", *db)];
        out.counter(&catalog::QUERIES, &l, totals.statements as f64);
        out.counter(&catalog::FULL_SCANS, &l, totals.full_scans as f64);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use perfwatch_slowlog::{SlowEvent, fingerprint_id};

    use super::*;
    use crate::exposition::sample_value;

    #[test]
    fn top_classes_by_id_the_rest_as_other() {
        let mut d = Digest::new(1, 100, Duration::from_secs(3600));
        let now = Instant::now();
        let mut add = |query: &str, duration: f64, full_scan: bool| {
            d.add(
                &SlowEvent {
                    db: Some("app".into()),
                    user: None,
                    duration,
                    lock_time: 0.5,
                    rows_sent: 1,
                    rows_examined: 10,
                    full_scan,
                    sample_rate: 1,
                    query: query.into(),
                    truncated: false,
                },
                now,
                0.0,
            )
        };
        add("select * from a where id = 1", 3.0, true);
        add("select * from a where id = 2", 3.0, false);
        add("select * from b", 1.0, false);
        d.rank();
        let mut f = Families::new();
        digest(&d, "t", &mut f);
        let fams = f.into_vec();
        let a = fingerprint_id("select * from a where id = ?");
        let v = |name: &str, fp: &str| {
            sample_value(
                &fams,
                name,
                &[("target", "t"), ("db", "app"), ("fingerprint", fp)],
            )
        };
        assert_eq!(v(catalog::ROWS_EXAMINED.name, &a), Some(20.0));
        assert_eq!(v(catalog::ROWS_EXAMINED.name, OTHER), Some(10.0));
        assert_eq!(v(catalog::LOCK_SECONDS.name, &a), Some(1.0));
        assert_eq!(v(catalog::ROWS_SENT.name, OTHER), Some(1.0));
        let info = sample_value(
            &fams,
            catalog::FINGERPRINT_INFO.name,
            &[
                ("fingerprint", &a),
                ("query", "select * from a where id = ?"),
            ],
        );
        assert_eq!(info, Some(1.0));
        let per_db = |name: &str| sample_value(&fams, name, &[("target", "t"), ("db", "app")]);
        assert_eq!(per_db(catalog::QUERIES.name), Some(3.0));
        assert_eq!(per_db(catalog::FULL_SCANS.name), Some(1.0));
        let hist = fams
            .iter()
            .find(|f| f.name() == catalog::DURATION.name)
            .unwrap();
        let counts: Vec<u64> = hist
            .get_metric()
            .iter()
            .map(|m| m.get_histogram().get_sample_count())
            .collect();
        assert_eq!(counts, [2, 1], "the own class first, then other");
    }
}
