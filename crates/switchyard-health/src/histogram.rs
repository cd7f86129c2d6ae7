//! The latency histogram: a fixed set of roughly log-spaced buckets, so counts from several
//! processes and minutes add up column by column and percentiles need no raw samples.

use std::time::Duration;

/// Upper bounds of the buckets, in milliseconds. The last bucket also holds anything slower.
pub const BOUNDS_MS: [u64; BUCKETS] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000,
];

/// How many buckets (and `latency_NN` columns) there are.
pub const BUCKETS: usize = 16;

/// Counts of attempts per latency bucket.
pub type Histogram = [u64; BUCKETS];

/// The bucket `latency` falls in: the first whose upper bound it does not exceed.
pub fn bucket_of(latency: Duration) -> usize {
    let micros = latency.as_micros();
    BOUNDS_MS
        .iter()
        .position(|bound| micros <= u128::from(*bound) * 1_000)
        .unwrap_or(BUCKETS - 1)
}

/// The `quantile` (0..=1) of the counted attempts, as the upper bound in milliseconds of the
/// bucket it falls in; `None` when nothing was counted.
pub fn percentile(histogram: &Histogram, quantile: f64) -> Option<u64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    // The rank of the attempt at `quantile`, 1-based (nearest-rank method).
    let rank = ((quantile.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (count, bound) in histogram.iter().zip(BOUNDS_MS) {
        seen += count;
        if seen >= rank {
            return Some(bound);
        }
    }
    BOUNDS_MS.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_increasing() {
        assert!(BOUNDS_MS.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn a_latency_goes_to_the_first_bound_it_does_not_exceed() {
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(Duration::from_millis(1)), 0);
        assert_eq!(bucket_of(Duration::from_micros(1_001)), 1);
        assert_eq!(bucket_of(Duration::from_millis(150)), 7);
        assert_eq!(bucket_of(Duration::from_secs(60)), BUCKETS - 1);
        assert_eq!(bucket_of(Duration::from_secs(600)), BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_bucket_upper_bounds() {
        let mut histogram = [0; BUCKETS];
        assert_eq!(percentile(&histogram, 0.5), None);
        // 90 fast attempts (≤ 10 ms) and 10 slow ones (≤ 2 s).
        histogram[bucket_of(Duration::from_millis(8))] = 90;
        histogram[bucket_of(Duration::from_millis(1_500))] = 10;
        assert_eq!(percentile(&histogram, 0.5), Some(10));
        assert_eq!(percentile(&histogram, 0.9), Some(10));
        assert_eq!(percentile(&histogram, 0.95), Some(2_000));
        assert_eq!(percentile(&histogram, 1.0), Some(2_000));
        assert_eq!(percentile(&histogram, 0.0), Some(10));
    }
}
