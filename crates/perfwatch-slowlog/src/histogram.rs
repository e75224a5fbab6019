//! Bucketed histograms as plain data, and quantiles from their buckets.
//!
//! The digest keeps one duration histogram per query class; the sidecar
//! exports it as a Prometheus histogram and its phase triggers take
//! `histogram_quantile` of exported histograms. Both need the same two
//! things, so they live here, in the lowest crate that needs them:
//! [`HistogramData`] (the sidecar's `exposition` re-exports it for every
//! collector, so there is one histogram type and no conversion per export)
//! and [`bucket_quantile`] (Prometheus' interpolation). Neither knows
//! anything about Prometheus' wire types.

/// A histogram kept across polls: fixed upper bounds, non-cumulative counts
/// (the `+Inf` bucket is implied by `count`).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramData {
    /// Upper bounds, ascending, without `+Inf`.
    pub bounds: &'static [f64],
    /// Observations per bucket (same length as `bounds`).
    pub counts: Vec<u64>,
    /// Number of observations.
    pub count: u64,
    /// Sum of observations.
    pub sum: f64,
}

impl HistogramData {
    /// An empty histogram over `bounds`.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }

    /// Records one observation.
    pub fn observe(&mut self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| value <= b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += value;
    }

    /// Adds `other`'s observations (same bounds).
    pub fn merge(&mut self, other: &HistogramData) {
        debug_assert_eq!(self.bounds, other.bounds);
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    /// The buckets as Prometheus has them: `(upper bound, cumulative
    /// count)`, `+Inf` last (the input of [`bucket_quantile`]).
    pub fn cumulative(&self) -> Vec<(f64, f64)> {
        let mut acc = 0u64;
        let mut out: Vec<(f64, f64)> = self
            .bounds
            .iter()
            .zip(&self.counts)
            .map(|(b, c)| {
                acc += c;
                (*b, acc as f64)
            })
            .collect();
        out.push((f64::INFINITY, self.count as f64));
        out
    }
}

/// The q-quantile of cumulative buckets, interpolated linearly within the
/// bucket like Prometheus' `histogram_quantile`; `None` without observations.
pub fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev_bound = 0.0;
    let mut prev_count = 0.0;
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                // Like Prometheus: the highest finite bound.
                return Some(prev_bound);
            }
            let in_bucket = count - prev_count;
            if in_bucket <= 0.0 {
                return Some(bound);
            }
            return Some(prev_bound + (bound - prev_bound) * (rank - prev_count) / in_bucket);
        }
        prev_bound = bound;
        prev_count = count;
    }
    Some(prev_bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_table() {
        let b = [(1.0, 10.0), (10.0, 90.0), (f64::INFINITY, 100.0)];
        let cases = [
            (0.0, Some(0.0)),
            (0.1, Some(1.0)),
            (0.5, Some(5.5)),
            (0.95, Some(10.0)),
        ];
        for (q, want) in cases {
            assert_eq!(bucket_quantile(q, &b), want, "q={q}");
        }
        assert_eq!(
            bucket_quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
    }

    #[test]
    fn observations_land_in_their_bucket_and_accumulate() {
        static BOUNDS: [f64; 3] = [0.1, 1.0, 10.0];
        let mut h = HistogramData::new(&BOUNDS);
        for v in [0.05, 0.1, 0.5, 0.7, 20.0] {
            h.observe(v);
        }
        assert_eq!(
            h.counts,
            [2, 2, 0],
            "a bound is inclusive; 20 is only in +Inf"
        );
        assert_eq!(h.count, 5);
        assert!((h.sum - 21.35).abs() < 1e-9, "{}", h.sum);
        assert_eq!(
            h.cumulative(),
            [(0.1, 2.0), (1.0, 4.0), (10.0, 4.0), (f64::INFINITY, 5.0)]
        );
        // The median (rank 2.5) is a quarter into the (0.1, 1] bucket.
        let median = bucket_quantile(0.5, &h.cumulative()).unwrap();
        assert!((median - 0.325).abs() < 1e-9, "{median}");
    }
}
