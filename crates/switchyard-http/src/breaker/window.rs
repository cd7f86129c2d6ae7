//! Rolling success/failure counts in fixed buckets: constant memory however busy the key.

use std::time::{Duration, Instant};

const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    ok: u32,
    failed: u32,
}

/// Counts over the last `window` (to bucket granularity: a tenth of the window).
#[derive(Debug, Clone)]
pub(crate) struct RollingWindow {
    origin: Instant,
    bucket_nanos: u128,
    buckets: [Bucket; BUCKETS],
}

impl RollingWindow {
    pub(crate) fn new(window: Duration, origin: Instant) -> Self {
        Self {
            origin,
            bucket_nanos: (window.as_nanos() / BUCKETS as u128).max(1),
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    fn epoch(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(elapsed / self.bucket_nanos).unwrap_or(u64::MAX)
    }

    pub(crate) fn record(&mut self, now: Instant, ok: bool) {
        let epoch = self.epoch(now);
        let bucket = &mut self.buckets[(epoch % BUCKETS as u64) as usize];
        if bucket.epoch != epoch {
            *bucket = Bucket {
                epoch,
                ..Bucket::default()
            };
        }
        if ok {
            bucket.ok = bucket.ok.saturating_add(1);
        } else {
            bucket.failed = bucket.failed.saturating_add(1);
        }
    }

    /// `(ok, failed)` within the window ending at `now`.
    pub(crate) fn totals(&self, now: Instant) -> (u64, u64) {
        let current = self.epoch(now);
        self.buckets
            .iter()
            .filter(|b| b.epoch <= current && current - b.epoch < BUCKETS as u64)
            .fold((0, 0), |(ok, failed), b| {
                (ok + u64::from(b.ok), failed + u64::from(b.failed))
            })
    }

    pub(crate) fn reset(&mut self, now: Instant) {
        *self = Self {
            origin: now,
            bucket_nanos: self.bucket_nanos,
            buckets: [Bucket::default(); BUCKETS],
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_expire_bucket_by_bucket() {
        let start = Instant::now();
        let mut w = RollingWindow::new(Duration::from_secs(10), start);
        w.record(start, false);
        w.record(start + Duration::from_millis(500), true);
        w.record(start + Duration::from_secs(5), false);
        assert_eq!(w.totals(start + Duration::from_secs(5)), (1, 2));
        // The first second's bucket falls out of the window after 10 s.
        assert_eq!(w.totals(start + Duration::from_secs(10)), (0, 1));
        assert_eq!(w.totals(start + Duration::from_secs(15)), (0, 0));
        // Reusing a ring slot starts it empty.
        w.record(start + Duration::from_secs(20), true);
        assert_eq!(w.totals(start + Duration::from_secs(20)), (1, 0));
        w.reset(start + Duration::from_secs(21));
        assert_eq!(w.totals(start + Duration::from_secs(21)), (0, 0));
    }
}
