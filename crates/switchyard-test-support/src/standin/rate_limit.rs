//! A request budget per fixed window, signalled on every response the way GitHub does:
//! `x-ratelimit-limit`, `x-ratelimit-remaining`, `x-ratelimit-reset` (epoch seconds). A spent
//! budget answers `429` with `Retry-After` (seconds). A `304 Not Modified` costs nothing, as
//! GitHub's conditional requests do not.
//!
//! Windows run on the wall clock, not on the data set's test clock: the client under test
//! waits in real time, and the reset it reads must be a real epoch second.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};

use super::{
    problem::{Dialect, Problem},
    state::Shared,
};

/// How many requests a window allows. The default is GitHub's: 5,000 an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub window: Duration,
}

impl RateLimit {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new(5_000, Duration::from_secs(3_600))
    }
}

#[derive(Debug)]
pub(crate) struct Budget {
    rate: RateLimit,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    resets_at: SystemTime,
    used: u32,
}

/// What the headers say after a request.
#[derive(Debug, Clone, Copy)]
struct Signals {
    limit: u32,
    remaining: u32,
    resets_at: SystemTime,
}

impl Budget {
    pub(crate) fn new(rate: RateLimit) -> Self {
        Self {
            rate,
            window: Mutex::new(Window {
                resets_at: SystemTime::now() + rate.window,
                used: 0,
            }),
        }
    }

    /// Spends one request, or says the budget is spent.
    fn take(&self) -> Result<Signals, Signals> {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        if now >= window.resets_at {
            *window = Window {
                resets_at: now + self.rate.window,
                used: 0,
            };
        }
        let spent = window.used >= self.rate.limit;
        if !spent {
            window.used += 1;
        }
        let signals = self.signals(&window);
        if spent { Err(signals) } else { Ok(signals) }
    }

    fn refund(&self) -> Signals {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        window.used = window.used.saturating_sub(1);
        self.signals(&window)
    }

    fn signals(&self, window: &Window) -> Signals {
        Signals {
            limit: self.rate.limit,
            remaining: self.rate.limit.saturating_sub(window.used),
            resets_at: window.resets_at,
        }
    }
}

impl Signals {
    fn write(&self, headers: &mut HeaderMap) {
        let reset = self
            .resets_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
            .ceil();
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(reset as u64));
    }

    /// Whole seconds until the window resets, at least one.
    fn retry_after(&self) -> u64 {
        let wait = self
            .resets_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        (wait.as_secs_f64().ceil() as u64).max(1)
    }
}

pub(crate) async fn enforce(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(budget) = &shared.budget else {
        return next.run(request).await;
    };
    match budget.take() {
        Err(signals) => {
            let mut response =
                Problem::RateLimited.response(Dialect::of_path(request.uri().path()));
            signals.write(response.headers_mut());
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(signals.retry_after()),
            );
            response
        }
        Ok(mut signals) => {
            let mut response = next.run(request).await;
            if response.status() == StatusCode::NOT_MODIFIED {
                signals = budget.refund();
            }
            signals.write(response.headers_mut());
            response
        }
    }
}
