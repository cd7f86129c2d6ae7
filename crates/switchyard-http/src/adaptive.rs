//! Adaptive limiting: tightening a scope's budget from what the provider says, before the
//! provider pushes back harder.
//!
//! Three effects, all per scope (tenant + connection, tenant + provider, …):
//! - **pause**: after `Retry-After` or an exhausted window, no call goes until it has passed;
//! - **pacing**: while a window reports `remaining` calls for `reset_in`, calls are spaced
//!   `reset_in / remaining` apart so the budget lasts until the refill;
//! - **rate factor**: each rate-limited response halves the proactive rate (multiplicative
//!   decrease); each success gives back a step (additive increase), so a provider whose real
//!   limit is below the declared one is found within a few rejections.
//!
//! Only scopes with something to remember hold state: one back at full rate with no pause
//! or pacing is dropped, and [`AdaptiveLimits::forget_idle`] drops the rest once idle, so
//! scopes keyed per call (one per Slack channel) do not pile up.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::rate_limit::Rate;
use crate::signals::Signals;

/// How hard the limiter reacts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveConfig {
    /// Multiplier applied to the rate factor on each rate-limited response.
    pub decrease: f64,
    /// Added back to the factor on each success, up to 1.
    pub increase: f64,
    /// The factor never drops below this (the rate never reaches zero).
    pub floor: f64,
    /// Pause after a rate-limited response that said nothing about when to come back.
    pub default_pause: Duration,
    /// The longest pause any signal can impose.
    pub max_pause: Duration,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            decrease: 0.5,
            increase: 0.05,
            floor: 0.05,
            default_pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct ScopeState {
    factor: f64,
    paused_until: Option<Instant>,
    /// Spacing between calls and until when it applies (the window's reset).
    pacing: Option<(Duration, Instant)>,
    /// The earliest time the next paced call may go.
    next_slot: Option<Instant>,
    /// The last answer recorded or call reserved.
    last_seen: Instant,
}

/// A scope's rate factor when it has no state: the declared rate.
const FULL_RATE: f64 = 1.0;

impl ScopeState {
    fn fresh(now: Instant) -> Self {
        Self {
            factor: FULL_RATE,
            paused_until: None,
            pacing: None,
            next_slot: None,
            last_seen: now,
        }
    }

    /// No pause or pacing holds calls back any more.
    fn holds_nothing(&self, now: Instant) -> bool {
        self.paused_until.is_none_or(|until| until <= now)
            && self.pacing.is_none_or(|(_, until)| until <= now)
    }

    /// Behaves as a scope without state would.
    fn is_fresh(&self, now: Instant) -> bool {
        self.factor >= FULL_RATE && self.holds_nothing(now)
    }
}

/// Per-scope adaptive state, shared by every call in the process.
#[derive(Debug)]
pub struct AdaptiveLimits {
    config: AdaptiveConfig,
    clock: Arc<dyn Clock>,
    scopes: Mutex<HashMap<String, ScopeState>>,
}

impl AdaptiveLimits {
    pub fn new(config: AdaptiveConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            clock,
            scopes: Mutex::new(HashMap::new()),
        }
    }

    fn scopes(&self) -> MutexGuard<'_, HashMap<String, ScopeState>> {
        self.scopes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Folds one response's signals into the scope.
    pub fn record(&self, scope: &str, signals: &Signals) {
        let now = self.clock.now();
        let config = self.config;
        let mut scopes = self.scopes();
        let state = scopes
            .entry(scope.to_owned())
            .or_insert_with(|| ScopeState::fresh(now));
        state.last_seen = now;
        if signals.limited {
            state.factor = (state.factor * config.decrease).max(config.floor);
        } else {
            state.factor = (state.factor + config.increase).min(1.0);
        }
        let asked = signals
            .pause()
            .or(signals.limited.then_some(config.default_pause));
        if let Some(pause) = asked {
            let until = now + pause.min(config.max_pause);
            state.paused_until = Some(state.paused_until.map_or(until, |old| old.max(until)));
        }
        // The latest reading replaces the pacing: windows refill, and an old reading's
        // spacing would keep slowing calls after the provider has reset.
        state.pacing = signals.pacing().map(|spacing| {
            let refill = signals
                .windows
                .iter()
                .map(|w| w.reset_in)
                .max()
                .unwrap_or_default();
            (
                spacing.min(config.max_pause),
                now + refill.min(config.max_pause),
            )
        });
        match state.pacing {
            // The next call is one spacing after this answer at the earliest, or a caller
            // that waits for each answer would send two calls back to back.
            Some((spacing, _)) => {
                let after_this = now + spacing;
                state.next_slot = Some(state.next_slot.map_or(after_this, |n| n.max(after_this)));
            }
            None => state.next_slot = None,
        }
        if state.is_fresh(now) {
            scopes.remove(scope);
        }
    }

    /// Reserves the scope's next call: how long the caller must wait before sending it (zero
    /// when it may go now). Each reservation under pacing moves the next slot on, so
    /// concurrent callers queue behind each other rather than all going at the same instant.
    pub fn reserve(&self, scope: &str) -> Duration {
        let now = self.clock.now();
        let mut scopes = self.scopes();
        let Some(state) = scopes.get_mut(scope) else {
            return Duration::ZERO;
        };
        state.last_seen = now;
        let mut start = now;
        if let Some(until) = state.paused_until {
            if until > now {
                start = until;
            } else {
                state.paused_until = None;
            }
        }
        match state.pacing {
            Some((spacing, valid_until)) if valid_until > now => {
                let slot = state.next_slot.map_or(start, |next| next.max(start));
                state.next_slot = Some(slot + spacing);
                start = slot;
            }
            _ => {
                state.pacing = None;
                state.next_slot = None;
            }
        }
        start.saturating_duration_since(now)
    }

    /// The scope's current rate factor, in `[floor, 1]`.
    pub fn factor(&self, scope: &str) -> f64 {
        self.scopes().get(scope).map_or(FULL_RATE, |s| s.factor)
    }

    /// Drops the state of scopes that hold no pause or pacing and have seen no call for
    /// `idle`; a lowered rate factor is forgotten with them (the provider's budget has long
    /// refilled by then).
    pub fn forget_idle(&self, idle: Duration) {
        let now = self.clock.now();
        self.scopes().retain(|_, state| {
            !(state.holds_nothing(now) && now.saturating_duration_since(state.last_seen) >= idle)
        });
    }

    /// Scopes with state.
    pub fn tracked_scopes(&self) -> usize {
        self.scopes().len()
    }

    /// `base` scaled by the scope's factor (at least one call per its period and a burst of
    /// one).
    pub fn effective_rate(&self, scope: &str, base: Rate) -> Rate {
        let factor = self.factor(scope);
        if factor >= FULL_RATE {
            return base;
        }
        let scale = |n: NonZeroU32| {
            // The product is at most `n`, so the cast cannot overflow; at least 1 by clamp.
            let scaled = (f64::from(n.get()) * factor).floor().max(1.0) as u32;
            NonZeroU32::new(scaled).unwrap_or(NonZeroU32::MIN)
        };
        base.scaled(scale)
    }
}

#[cfg(test)]
mod tests;
