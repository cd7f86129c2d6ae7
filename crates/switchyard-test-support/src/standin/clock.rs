//! The data set's clock: it moves only when a test advances it, so timestamps are predictable.

use std::sync::{Mutex, PoisonError};

use time::{Duration, OffsetDateTime};

#[derive(Debug)]
pub(crate) struct Clock {
    now: Mutex<OffsetDateTime>,
}

impl Clock {
    pub(crate) fn starting_at(start: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The time a change made now is stamped with: whole seconds, as the real providers send.
    /// Several changes within one second share a timestamp, which is why `updated_since` is
    /// inclusive.
    pub(crate) fn stamp(&self) -> OffsetDateTime {
        let now = self.now();
        now.replace_nanosecond(0).unwrap_or(now)
    }

    /// Moves the clock forward; it never goes back, so `updated_at` never decreases.
    pub(crate) fn advance(&self, by: std::time::Duration) {
        let by = Duration::try_from(by).unwrap_or(Duration::MAX);
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.saturating_add(by);
    }
}
