//! Retry delays. Randomness comes from the caller's RNG so tests can seed it.
//!
//! Jitter matters here: after an outage every endpoint's failed deliveries would otherwise
//! retry in the same instant.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter: attempt `n` waits a uniform random time in
/// `[0, min(max, base · 2ⁿ)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExponentialBackoff {
    pub base: Duration,
    pub max: Duration,
}

impl ExponentialBackoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The upper bound of attempt `attempt`'s delay (0-based), saturating instead of
    /// overflowing.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(0);
        let grown = if factor == 0 {
            Duration::MAX
        } else {
            self.base.saturating_mul(factor)
        };
        grown.min(self.max)
    }

    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let ceiling = u64::try_from(self.ceiling(attempt).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=ceiling))
    }
}

/// A fixed list of delays, each spread by a relative jitter (±20 % by default).
#[derive(Debug, Clone, PartialEq)]
pub struct JitteredSchedule {
    steps: Vec<Duration>,
    jitter: f64,
}

impl JitteredSchedule {
    /// `jitter` is the relative spread, clamped to `[0, 1]` (0.2 means ±20 %).
    pub fn new(steps: Vec<Duration>, jitter: f64) -> Self {
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Self { steps, jitter }
    }

    /// Outbound webhook deliveries: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
    /// 20 h, 24 h (ten attempts over about three days), ±20 %.
    pub fn outbound_default() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 60 * MIN;
        let secs = [
            0,
            5,
            5 * MIN,
            30 * MIN,
            2 * HOUR,
            5 * HOUR,
            10 * HOUR,
            14 * HOUR,
            20 * HOUR,
            24 * HOUR,
        ];
        Self::new(secs.into_iter().map(Duration::from_secs).collect(), 0.2)
    }

    pub fn steps(&self) -> &[Duration] {
        &self.steps
    }

    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Number of attempts the schedule allows.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The un-jittered delay before attempt `attempt` (0-based), `None` once the schedule is
    /// exhausted.
    pub fn nominal(&self, attempt: usize) -> Option<Duration> {
        self.steps.get(attempt).copied()
    }

    /// The jittered delay before attempt `attempt`, `None` once the schedule is exhausted
    /// (the caller gives up: dead letter).
    pub fn delay<R: Rng + ?Sized>(&self, attempt: usize, rng: &mut R) -> Option<Duration> {
        let nominal = self.nominal(attempt)?;
        if self.jitter == 0.0 || nominal.is_zero() {
            return Some(nominal);
        }
        let factor = 1.0 + rng.random_range(-self.jitter..=self.jitter);
        // Not `mul_f64`: it panics on overflow, and the steps are caller-supplied.
        Some(Duration::try_from_secs_f64(nominal.as_secs_f64() * factor).unwrap_or(Duration::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn exponential_ceiling_doubles_and_caps() {
        let b = ExponentialBackoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let ceilings: Vec<u128> = (0..9).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
        );
        assert_eq!(b.ceiling(31), Duration::from_secs(10));
        assert_eq!(b.ceiling(32), Duration::from_secs(10));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(10));
        let unbounded = ExponentialBackoff::new(Duration::from_secs(u64::MAX / 2), Duration::MAX);
        assert_eq!(unbounded.ceiling(4), Duration::MAX);
    }

    #[test]
    fn full_jitter_stays_within_the_ceiling_and_uses_the_range() {
        let b = ExponentialBackoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 0..12 {
            let ceiling = b.ceiling(attempt);
            let samples: Vec<Duration> = (0..500).map(|_| b.delay(attempt, &mut rng)).collect();
            assert!(samples.iter().all(|d| *d <= ceiling));
            // Full jitter: both ends of [0, ceiling] are reached, not just a band near the top.
            assert!(
                samples.iter().any(|d| *d < ceiling / 10),
                "attempt {attempt}"
            );
            assert!(
                samples.iter().any(|d| *d > ceiling * 9 / 10),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn same_seed_same_delays() {
        let b = ExponentialBackoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let s = JitteredSchedule::outbound_default();
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut out: Vec<Duration> = (0..5).map(|n| b.delay(n, &mut rng)).collect();
            out.extend((0..s.len()).filter_map(|n| s.delay(n, &mut rng)));
            out
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn default_schedule_steps() {
        let s = JitteredSchedule::outbound_default();
        let secs: Vec<u64> = s.steps().iter().map(Duration::as_secs).collect();
        assert_eq!(
            secs,
            [
                0, 5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400
            ]
        );
        assert_eq!(s.len(), 10);
        assert_eq!(s.jitter(), 0.2);
    }

    #[test]
    fn schedule_jitter_stays_within_twenty_percent() {
        let s = JitteredSchedule::outbound_default();
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(s.delay(0, &mut rng), Some(Duration::ZERO));
        for attempt in 1..s.len() {
            let nominal = s.nominal(attempt).unwrap();
            let (low, high) = (nominal.mul_f64(0.8), nominal.mul_f64(1.2));
            let samples: Vec<Duration> = (0..1000)
                .map(|_| s.delay(attempt, &mut rng).unwrap())
                .collect();
            assert!(
                samples.iter().all(|d| (low..=high).contains(d)),
                "attempt {attempt}"
            );
            // Spread over the whole band, on both sides of the nominal delay.
            assert!(samples.iter().any(|d| *d < nominal.mul_f64(0.85)));
            assert!(samples.iter().any(|d| *d > nominal.mul_f64(1.15)));
        }
        assert_eq!(s.delay(s.len(), &mut rng), None);
    }

    #[test]
    fn jitter_is_clamped_and_zero_jitter_is_exact() {
        let exact = JitteredSchedule::new(vec![Duration::from_secs(10)], 0.0);
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(exact.delay(0, &mut rng), Some(Duration::from_secs(10)));
        assert_eq!(JitteredSchedule::new(vec![], 5.0).jitter(), 1.0);
        assert_eq!(JitteredSchedule::new(vec![], -1.0).jitter(), 0.0);
        assert_eq!(JitteredSchedule::new(vec![], f64::NAN).jitter(), 0.0);
        let empty = JitteredSchedule::new(vec![], 0.2);
        assert!(empty.is_empty());
        assert_eq!(empty.delay(0, &mut rng), None);
    }
}
