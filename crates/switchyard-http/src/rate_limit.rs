//! Per-key rate limits (GCRA): calls wait for their slot instead of failing, up to the
//! caller's deadline.
//!
//! [`RateLimiter`] holds the per-key rates and the waiting; a [`RateLimitBackend`] only
//! answers "may this key go now, and if not, when". [`InMemoryBackend`] uses `governor`
//! (one process); [`RedisBackend`] runs the same GCRA as one Redis script per decision, so
//! every process draws from one bucket per key.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Governor};
use tokio::time::Instant;

use crate::metrics as m;

mod redis_backend;
pub use redis_backend::RedisBackend;

/// A sustained rate, `calls` per `period` (a second or a minute), with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    calls: NonZeroU32,
    period: Duration,
    burst: NonZeroU32,
}

impl Rate {
    /// `n` calls per second, all of which may come at once.
    pub const fn per_second(n: NonZeroU32) -> Self {
        Self {
            calls: n,
            period: Duration::from_secs(1),
            burst: n,
        }
    }

    /// `n` calls per minute (Slack's tiers), all of which may come at once.
    pub const fn per_minute(n: NonZeroU32) -> Self {
        Self {
            calls: n,
            period: Duration::from_secs(60),
            burst: n,
        }
    }

    pub const fn with_burst(self, burst: NonZeroU32) -> Self {
        Self { burst, ..self }
    }

    /// The same period and `calls` and `burst` changed by `scale` (the adaptive limiter).
    #[must_use]
    pub fn scaled(self, scale: impl Fn(NonZeroU32) -> NonZeroU32) -> Self {
        Self {
            calls: scale(self.calls),
            burst: scale(self.burst),
            period: self.period,
        }
    }

    /// Calls per [`Rate::period`].
    pub const fn calls(self) -> NonZeroU32 {
        self.calls
    }

    pub const fn period(self) -> Duration {
        self.period
    }

    pub const fn burst(self) -> NonZeroU32 {
        self.burst
    }

    /// The time one call's slot takes to refill: `period / calls`.
    pub fn interval(self) -> Duration {
        self.period / self.calls.get()
    }

    fn quota(self) -> Quota {
        // An interval below a nanosecond (over 10^9 calls a second) is governor's
        // per-second quota, as it always was.
        Quota::with_period(self.interval())
            .unwrap_or_else(|| Quota::per_second(self.calls))
            .allow_burst(self.burst)
    }
}

/// A backend's answer for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The call took a slot and may go now.
    Ready,
    /// No slot now; the earliest one is this far away.
    RetryIn(Duration),
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// The next slot comes after the caller's deadline; waiting would not help, so the caller
    /// should reschedule (after `retry_in`) instead.
    #[error("rate limited: next slot in {} ms, after the deadline", retry_in.as_millis())]
    DeadlineExceeded { retry_in: Duration },
    /// A shared backend could not be asked.
    #[error("rate limit backend unavailable")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),
}

impl RateLimitError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::DeadlineExceeded { .. } => "rate_limited",
            Self::Backend(_) => "rate_limit_backend_unavailable",
        }
    }
}

/// Where the GCRA state lives.
pub trait RateLimitBackend: Send + Sync {
    /// Takes one slot for `key` under `rate` if one is free now.
    fn check(
        &self,
        key: &str,
        rate: Rate,
    ) -> impl Future<Output = Result<Admission, RateLimitError>> + Send;

    /// Forgets keys whose state is the same as a fresh one (idle long enough to have refilled).
    fn cleanup(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// The backend a process is configured with: its own memory, or Redis shared with the other
/// processes (the server's provider stack).
#[derive(Debug)]
pub enum ConfiguredBackend {
    Memory(InMemoryBackend),
    Redis(RedisBackend),
}

impl RateLimitBackend for ConfiguredBackend {
    async fn check(&self, key: &str, rate: Rate) -> Result<Admission, RateLimitError> {
        match self {
            Self::Memory(backend) => backend.check(key, rate).await,
            Self::Redis(backend) => backend.check(key, rate).await,
        }
    }

    async fn cleanup(&self) {
        match self {
            Self::Memory(backend) => backend.cleanup().await,
            Self::Redis(backend) => backend.cleanup().await,
        }
    }
}

/// governor's clock following tokio's time, so paused-time tests and the sleeps in
/// [`RateLimiter::until_ready`] agree with the limiter.
#[derive(Debug, Clone, Copy)]
struct TokioClock {
    origin: Instant,
}

impl GovernorClock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

type KeyedGovernor =
    Governor<String, DefaultKeyedStateStore<String>, TokioClock, NoOpMiddleware<Nanos>>;

/// In-process GCRA state: one keyed `governor` limiter per distinct rate (a governor limiter
/// has one quota for all its keys; the number of distinct rates is small).
#[derive(Debug)]
pub struct InMemoryBackend {
    clock: TokioClock,
    limiters: Mutex<HashMap<Rate, Arc<KeyedGovernor>>>,
}

impl Default for InMemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryBackend {
    pub fn new() -> Self {
        Self {
            clock: TokioClock {
                origin: Instant::now(),
            },
            limiters: Mutex::new(HashMap::new()),
        }
    }

    fn limiters(&self) -> MutexGuard<'_, HashMap<Rate, Arc<KeyedGovernor>>> {
        self.limiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn limiter(&self, rate: Rate) -> Arc<KeyedGovernor> {
        let mut limiters = self.limiters();
        let limiter = limiters.entry(rate).or_insert_with(|| {
            Arc::new(Governor::new(
                rate.quota(),
                DefaultKeyedStateStore::default(),
                self.clock,
            ))
        });
        Arc::clone(limiter)
    }

    /// The synchronous check behind [`RateLimitBackend::check`].
    pub fn check_now(&self, key: &str, rate: Rate) -> Admission {
        match self.limiter(rate).check_key(&key.to_owned()) {
            Ok(()) => Admission::Ready,
            Err(not_until) => Admission::RetryIn(not_until.wait_time_from(self.clock.now())),
        }
    }

    pub fn cleanup_now(&self) {
        let limiters: Vec<Arc<KeyedGovernor>> = self.limiters().values().map(Arc::clone).collect();
        for limiter in limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Keys with live state, across all rates.
    pub fn tracked_keys(&self) -> usize {
        self.limiters().values().map(|l| l.len()).sum()
    }
}

impl RateLimitBackend for InMemoryBackend {
    fn check(
        &self,
        key: &str,
        rate: Rate,
    ) -> impl Future<Output = Result<Admission, RateLimitError>> + Send {
        std::future::ready(Ok(self.check_now(key, rate)))
    }

    fn cleanup(&self) -> impl Future<Output = ()> + Send {
        self.cleanup_now();
        std::future::ready(())
    }
}

/// Per-key rates over a backend.
#[derive(Debug)]
pub struct RateLimiter<B = InMemoryBackend> {
    backend: B,
    default_rate: Rate,
    rates: Mutex<HashMap<String, Rate>>,
}

impl RateLimiter<InMemoryBackend> {
    pub fn in_memory(default_rate: Rate) -> Self {
        Self::new(InMemoryBackend::new(), default_rate)
    }
}

impl<B: RateLimitBackend> RateLimiter<B> {
    pub fn new(backend: B, default_rate: Rate) -> Self {
        Self {
            backend,
            default_rate,
            rates: Mutex::new(HashMap::new()),
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn rates(&self) -> MutexGuard<'_, HashMap<String, Rate>> {
        self.rates.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives `key` its own rate (an endpoint's configured limit).
    pub fn set_rate(&self, key: &str, rate: Rate) {
        self.rates().insert(key.to_owned(), rate);
    }

    /// Back to the default rate (the endpoint's limit was removed, or the endpoint deleted).
    pub fn clear_rate(&self, key: &str) {
        self.rates().remove(key);
    }

    pub fn rate_for(&self, key: &str) -> Rate {
        self.rates().get(key).copied().unwrap_or(self.default_rate)
    }

    /// Takes a slot if one is free now, without waiting.
    pub async fn check(&self, key: &str) -> Result<Admission, RateLimitError> {
        let rate = self.rate_for(key);
        self.backend.check(key, rate).await
    }

    /// Waits for a slot for `key` at its configured rate (see [`RateLimiter::until_ready_at`]).
    pub async fn until_ready(&self, key: &str, deadline: Instant) -> Result<(), RateLimitError> {
        let rate = self.rate_for(key);
        self.until_ready_at(key, rate, deadline).await
    }

    /// Waits for a slot for `key` at `rate`, given per call rather than stored: callers with
    /// many short-lived keys (one per Slack channel) leave nothing behind here, and the
    /// backend forgets a key's bucket once it has refilled. Fails at once with
    /// [`RateLimitError::DeadlineExceeded`] when the next slot lies beyond `deadline`, rather
    /// than sleeping until it and failing anyway.
    pub async fn until_ready_at(
        &self,
        key: &str,
        rate: Rate,
        deadline: Instant,
    ) -> Result<(), RateLimitError> {
        loop {
            let retry_in = match self.backend.check(key, rate).await? {
                Admission::Ready => return Ok(()),
                Admission::RetryIn(wait) => wait,
            };
            let fits = Instant::now()
                .checked_add(retry_in)
                .is_some_and(|at| at <= deadline);
            if !fits {
                m::rate_limit_rejected();
                return Err(RateLimitError::DeadlineExceeded { retry_in });
            }
            m::rate_limit_waited();
            // Another waiter may take the slot first; then we simply wait for the next one.
            tokio::time::sleep(retry_in).await;
        }
    }

    /// Forgets idle keys' state (their configured rates stay).
    pub async fn cleanup(&self) {
        self.backend.cleanup().await;
    }
}

/// Runs [`RateLimiter::cleanup`] every `every` until the handle is aborted or the limiter's
/// last other owner is gone.
pub fn spawn_cleanup<B: RateLimitBackend + 'static>(
    limiter: &Arc<RateLimiter<B>>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(limiter);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(limiter) = weak.upgrade() else {
                return;
            };
            limiter.cleanup().await;
        }
    })
}

#[cfg(test)]
mod tests;
