//! Wall-clock time for the dispatcher: when a delivery is due, when a retry goes, when an
//! endpoint has failed long enough to be disabled. Tests use [`ManualClock`] to jump ahead
//! hours without sleeping; the same clock drives the circuit breakers (as a
//! [`switchyard_http::Clock`]), so breaker cool-downs and retry times move together.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: switchyard_http::Clock {
    fn now_utc(&self) -> OffsetDateTime;
}

/// The real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl switchyard_http::Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

impl Clock for SystemClock {
    fn now_utc(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Real time plus an offset that only grows: time keeps running (rows written with the real
/// time stay due) and [`ManualClock::advance`] jumps ahead. Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    offset: Arc<Mutex<Duration>>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(PoisonError::into_inner);
        *offset = offset.saturating_add(by);
    }

    fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl switchyard_http::Clock for ManualClock {
    fn now(&self) -> Instant {
        let now = Instant::now();
        now.checked_add(self.offset()).unwrap_or(now)
    }
}

impl Clock for ManualClock {
    fn now_utc(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.checked_add(time::Duration::try_from(self.offset()).unwrap_or(time::Duration::ZERO))
            .unwrap_or(now)
    }
}
