//! GitHub's primary rate limit, counted per credential, and secondary limits on demand.
//!
//! Every answer carries `x-ratelimit-limit`, `-remaining`, `-used`, `-reset` (epoch seconds)
//! and `-resource: core`. A `304` is refunded: GitHub does not count conditional requests
//! answered "not modified" when they were authorized. Windows run on the wall clock: the
//! client under test waits in real time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};

use super::{Shared, auth::Caller, errors};
use crate::standin::RateLimit;

const RATE_LIMIT_DOCS: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api";

#[derive(Debug)]
pub(crate) struct Budgets {
    rate: Option<RateLimit>,
    windows: Mutex<HashMap<&'static str, Window>>,
    secondary: Mutex<Option<Secondary>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    resets_at: SystemTime,
    used: u32,
}

#[derive(Debug, Clone, Copy)]
struct Secondary {
    status: StatusCode,
    retry_after: u64,
    times: u32,
}

impl Budgets {
    pub(crate) fn new(rate: Option<RateLimit>) -> Self {
        Self {
            rate,
            windows: Mutex::new(HashMap::new()),
            secondary: Mutex::new(None),
        }
    }

    /// # Panics
    /// When `status` is not 403 or 429, GitHub's secondary-limit statuses: a test mistake.
    pub(crate) fn secondary_limit(&self, status: u16, retry_after: u64, times: u32) {
        assert!(
            status == 403 || status == 429,
            "GitHub answers secondary limits with 403 or 429"
        );
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
        *self
            .secondary
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Secondary {
            status,
            retry_after,
            times,
        });
    }

    fn take_secondary(&self) -> Option<Secondary> {
        let mut pending = self
            .secondary
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let due = pending.as_mut().filter(|s| s.times > 0)?;
        due.times -= 1;
        Some(*due)
    }

    /// Spends one request of `key`'s window, or says it is spent.
    fn take(&self, rate: RateLimit, key: &'static str) -> Result<Window, Window> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        let window = windows.entry(key).or_insert(Window {
            resets_at: now + rate.window,
            used: 0,
        });
        if now >= window.resets_at {
            *window = Window {
                resets_at: now + rate.window,
                used: 0,
            };
        }
        if window.used >= rate.limit {
            return Err(*window);
        }
        window.used += 1;
        Ok(*window)
    }

    fn refund(&self, key: &'static str) -> Option<Window> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let window = windows.get_mut(key)?;
        window.used = window.used.saturating_sub(1);
        Some(*window)
    }
}

fn write(headers: &mut HeaderMap, rate: RateLimit, window: Window) {
    let reset = window
        .resets_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        .ceil() as u64;
    headers.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(rate.limit.saturating_sub(window.used)),
    );
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    headers.insert("x-ratelimit-used", HeaderValue::from(window.used));
    headers.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
}

pub(crate) async fn enforce(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let key = match request.extensions().get::<Caller>() {
        Some(Caller::User) => "user",
        Some(Caller::Installation) => "installation",
        None => "app",
    };
    if let Some(secondary) = shared.budgets.take_secondary() {
        let mut response = errors::error(
            secondary.status,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.",
            "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(secondary.retry_after),
        );
        return response;
    }
    let Some(rate) = shared.budgets.rate else {
        return next.run(request).await;
    };
    match shared.budgets.take(rate, key) {
        Err(window) => {
            let mut response = errors::error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.",
                RATE_LIMIT_DOCS,
            );
            write(response.headers_mut(), rate, window);
            response
        }
        Ok(mut window) => {
            let mut response = next.run(request).await;
            if response.status() == StatusCode::NOT_MODIFIED
                && let Some(refunded) = shared.budgets.refund(key)
            {
                window = refunded;
            }
            write(response.headers_mut(), rate, window);
            response
        }
    }
}
