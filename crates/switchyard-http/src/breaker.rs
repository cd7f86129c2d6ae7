//! Circuit breakers, one per key (an endpoint, a provider host).
//!
//! ```text
//! closed ──(failure rate ≥ threshold over the window, with ≥ min_calls)──► open
//! open ──(cool-down elapsed)──► half_open (at most `half_open_probes` calls at once)
//! half_open ──(a probe succeeds)──► closed      half_open ──(a probe fails)──► open
//! ```
//! Time comes from a [`Clock`], so tests step through the machine without sleeping.
//! Outcomes are reported through the [`Permit`] a call was admitted with; a permit from an
//! earlier state (a slow call that started before the breaker opened) is ignored, so it can
//! neither close nor re-open the circuit behind the probes' back.

mod window;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::{Clock, SystemClock};
use crate::metrics as m;
use window::RollingWindow;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Open when `failed / calls` reaches this (0.0–1.0) …
    pub failure_rate: f64,
    /// … over this rolling window …
    pub window: Duration,
    /// … and the window holds at least this many calls (one failure of one call is no trend).
    pub min_calls: u32,
    /// How long to stay open before probing.
    pub cool_down: Duration,
    /// Concurrent probes allowed while half-open.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate: 0.5,
            window: Duration::from_secs(60),
            min_calls: 10,
            cool_down: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// `closed|open|half_open`, the metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call the breaker refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakerRejected {
    #[error("circuit open; next probe allowed in {}s", retry_in.as_secs())]
    Open { retry_in: Duration },
    #[error("circuit half-open and every probe slot is taken")]
    ProbesBusy,
}

impl BreakerRejected {
    pub fn code(&self) -> &'static str {
        "circuit_open"
    }

    /// How long until trying again can help (zero: a probe slot may free up any moment).
    pub fn retry_in(&self) -> Duration {
        match self {
            Self::Open { retry_in } => *retry_in,
            Self::ProbesBusy => Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32 },
}

impl Phase {
    fn state(self) -> BreakerState {
        match self {
            Self::Closed => BreakerState::Closed,
            Self::Open { .. } => BreakerState::Open,
            Self::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Bumped on every transition; permits carry the generation they were issued in.
    generation: u64,
    window: RollingWindow,
}

impl Inner {
    fn transition(&mut self, to: Phase) {
        let from = self.phase.state();
        self.phase = to;
        self.generation += 1;
        m::breaker_transition(from, to.state());
    }

    /// Open → half-open happens lazily, whenever someone looks after the cool-down.
    fn refresh(&mut self, now: Instant) {
        if let Phase::Open { until } = self.phase
            && now >= until
        {
            self.transition(Phase::HalfOpen { in_flight: 0 });
        }
    }
}

#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        let now = clock.now();
        m::breaker_created();
        Self {
            config,
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                generation: 0,
                window: RollingWindow::new(config.window, now),
            }),
            clock,
        }
    }

    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves `Inner` consistent, so a panic elsewhere does not poison it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn state(&self) -> BreakerState {
        let mut inner = self.lock();
        inner.refresh(self.clock.now());
        inner.phase.state()
    }

    /// Admission for one call. Report its outcome on the permit; a permit dropped without an
    /// outcome (the call was cancelled) frees its probe slot and counts as nothing.
    pub fn try_acquire(self: &Arc<Self>) -> Result<Permit, BreakerRejected> {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.refresh(now);
        let probe = match inner.phase {
            Phase::Closed => false,
            Phase::Open { until } => {
                m::breaker_rejected();
                return Err(BreakerRejected::Open {
                    retry_in: until.saturating_duration_since(now),
                });
            }
            Phase::HalfOpen { in_flight } if in_flight >= self.config.half_open_probes => {
                m::breaker_rejected();
                return Err(BreakerRejected::ProbesBusy);
            }
            Phase::HalfOpen { in_flight } => {
                inner.phase = Phase::HalfOpen {
                    in_flight: in_flight + 1,
                };
                true
            }
        };
        Ok(Permit {
            breaker: Arc::clone(self),
            generation: inner.generation,
            probe,
            settled: false,
        })
    }

    fn settle(&self, generation: u64, outcome: Option<bool>) {
        let now = self.clock.now();
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        match (inner.phase, outcome) {
            (Phase::Closed, Some(ok)) => {
                inner.window.record(now, ok);
                if !ok && self.should_open(inner.window.totals(now)) {
                    inner.transition(Phase::Open {
                        until: now + self.config.cool_down,
                    });
                }
            }
            (Phase::HalfOpen { .. }, Some(true)) => {
                inner.window.reset(now);
                inner.transition(Phase::Closed);
            }
            (Phase::HalfOpen { .. }, Some(false)) => inner.transition(Phase::Open {
                until: now + self.config.cool_down,
            }),
            (Phase::HalfOpen { in_flight }, None) => {
                inner.phase = Phase::HalfOpen {
                    in_flight: in_flight.saturating_sub(1),
                };
            }
            (Phase::Closed, None) | (Phase::Open { .. }, _) => {}
        }
    }

    fn should_open(&self, (ok, failed): (u64, u64)) -> bool {
        let calls = ok + failed;
        calls >= u64::from(self.config.min_calls)
            && calls > 0
            && failed as f64 / calls as f64 >= self.config.failure_rate
    }

    /// Closed, with no calls in the window: nothing would be lost by forgetting it.
    fn is_idle(&self) -> bool {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.refresh(now);
        matches!(inner.phase, Phase::Closed) && inner.window.totals(now) == (0, 0)
    }
}

impl Drop for CircuitBreaker {
    fn drop(&mut self) {
        m::breaker_dropped(self.lock().phase.state());
    }
}

/// Admission for one call; say how it went with [`Permit::success`] or [`Permit::failure`].
#[must_use = "report the call's outcome with success() or failure()"]
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<CircuitBreaker>,
    generation: u64,
    probe: bool,
    settled: bool,
}

impl Permit {
    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    pub fn success(mut self) {
        self.settled = true;
        self.breaker.settle(self.generation, Some(true));
    }

    /// The call failed in a way that says the destination is unhealthy (connect error,
    /// timeout, 5xx, 429), not that the request was wrong.
    pub fn failure(mut self) {
        self.settled = true;
        self.breaker.settle(self.generation, Some(false));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.breaker.settle(self.generation, None);
        }
    }
}

/// How many breakers are in each state: the metrics view (a gauge per key would be
/// unbounded cardinality).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub closed: usize,
    pub open: usize,
    pub half_open: usize,
}

/// Breakers by key, created on first use with the registry's config.
#[derive(Debug)]
pub struct BreakerRegistry {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    breakers: Mutex<HashMap<String, Arc<CircuitBreaker>>>,
}

impl BreakerRegistry {
    pub fn new(config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            clock,
            breakers: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_system_clock(config: BreakerConfig) -> Self {
        Self::new(config, Arc::new(SystemClock))
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<CircuitBreaker>>> {
        self.breakers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, key: &str) -> Arc<CircuitBreaker> {
        self.get_with(key, self.config)
    }

    /// The breaker for `key`, created with `config` if it does not exist yet (an existing
    /// breaker keeps its config).
    pub fn get_with(&self, key: &str, config: BreakerConfig) -> Arc<CircuitBreaker> {
        let mut map = self.map();
        if let Some(breaker) = map.get(key) {
            return Arc::clone(breaker);
        }
        let breaker = Arc::new(CircuitBreaker::new(config, Arc::clone(&self.clock)));
        map.insert(key.to_owned(), Arc::clone(&breaker));
        breaker
    }

    /// Shortcut for `get(key).try_acquire()`.
    pub fn try_acquire(&self, key: &str) -> Result<Permit, BreakerRejected> {
        self.get(key).try_acquire()
    }

    pub fn state(&self, key: &str) -> Option<BreakerState> {
        let breaker = self.map().get(key).map(Arc::clone)?;
        Some(breaker.state())
    }

    /// Forget a key (its endpoint was deleted).
    pub fn remove(&self, key: &str) -> Option<Arc<CircuitBreaker>> {
        self.map().remove(key)
    }

    /// Drops closed breakers with an empty window that nobody holds, so keys that stopped
    /// being called do not accumulate. Returns how many were dropped.
    pub fn prune_idle(&self) -> usize {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, breaker| Arc::strong_count(breaker) > 1 || !breaker.is_idle());
        before - map.len()
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    pub fn counts(&self) -> StateCounts {
        let breakers: Vec<Arc<CircuitBreaker>> = self.map().values().map(Arc::clone).collect();
        let mut counts = StateCounts::default();
        for breaker in breakers {
            match breaker.state() {
                BreakerState::Closed => counts.closed += 1,
                BreakerState::Open => counts.open += 1,
                BreakerState::HalfOpen => counts.half_open += 1,
            }
        }
        counts
    }

    /// Every key with its state, sorted by key (for an admin view, not for metrics).
    pub fn snapshot(&self) -> Vec<(String, BreakerState)> {
        let breakers: Vec<(String, Arc<CircuitBreaker>)> = self
            .map()
            .iter()
            .map(|(k, b)| (k.clone(), Arc::clone(b)))
            .collect();
        let mut out: Vec<(String, BreakerState)> =
            breakers.into_iter().map(|(k, b)| (k, b.state())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests;
