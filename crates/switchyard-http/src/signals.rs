//! Reading a provider's rate-limit signals off a response: `Retry-After`, remaining / limit /
//! reset headers in whichever style the provider uses, and "you are rate limited" codes in the
//! body. What each provider sends is declared in a [`SignalSpec`] (connector manifests carry
//! one); [`SignalSpec::read`] turns a response into a [`Signals`] reading that
//! [`crate::adaptive`] acts on.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde::Deserialize;

use crate::retry_after::RetryAfterWindow;

/// How a provider announces its limits. The default reads `Retry-After` and treats 429 as
/// "rate limited", which is right for most providers; windows and body signals are opt-in.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalSpec {
    /// Statuses that mean "rate limited" by themselves.
    pub limited_statuses: Vec<u16>,
    /// Honour `Retry-After` (seconds or HTTP date) on any response that carries it.
    pub retry_after: bool,
    /// Remaining/reset header sets; a provider with a per-minute and a per-hour budget declares
    /// two, and the strictest reading wins.
    pub windows: Vec<WindowSpec>,
    /// Rate-limit codes carried in the body (an HTTP 400 or 403 that is really a 429).
    pub body: Vec<BodySignal>,
}

impl Default for SignalSpec {
    fn default() -> Self {
        Self {
            limited_statuses: vec![429],
            retry_after: true,
            windows: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// The share of a window's limit under which calls are paced (see [`Signals::pacing`]).
pub const PACE_BELOW: f64 = 0.2;

/// One budget window announced in headers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Header holding the calls left in the window (`x-ratelimit-remaining`).
    pub remaining: String,
    /// Header holding the window's size (`x-ratelimit-limit`): with it, calls are paced only
    /// once the window runs low; without it, always.
    #[serde(default)]
    pub limit: Option<String>,
    /// Header saying when the window refills (`x-ratelimit-reset`).
    pub reset: String,
    /// What the reset header's value means.
    pub reset_format: ResetFormat,
}

/// The ways providers write "the window refills at / in".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetFormat {
    /// Unix time in seconds (GitHub, Okta).
    EpochSeconds,
    /// Unix time in milliseconds.
    EpochMillis,
    /// Seconds from now, possibly fractional (Jira, Discord-style).
    DeltaSeconds,
    /// An RFC 3339 timestamp, or ISO 8601 to the minute with `Z` or an offset
    /// (`2024-01-01T10:00Z`, Jira's form).
    Iso8601,
    /// An HTTP date (RFC 9110).
    HttpDate,
}

/// "The body says we are rate limited": the string at `pointer` (an RFC 6901 JSON pointer)
/// equals one of `values`, on one of `statuses` (any status when empty).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodySignal {
    #[serde(default)]
    pub statuses: Vec<u16>,
    pub pointer: String,
    pub values: Vec<String>,
}

/// What one response said about the budget.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Signals {
    /// The provider refused this call for rate reasons (status or body code).
    pub limited: bool,
    /// How long the provider asked us to wait, clamped.
    pub retry_after: Option<Duration>,
    /// Each declared window that the response carried, in declaration order.
    pub windows: Vec<WindowReading>,
}

/// One window's state as the provider reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowReading {
    pub remaining: u64,
    pub limit: Option<u64>,
    /// Time until the window refills, from the response's receipt; zero when already past.
    pub reset_in: Duration,
}

impl Signals {
    /// The longest wait any signal asks for before the next call: `Retry-After`, or the reset
    /// of an exhausted window.
    pub fn pause(&self) -> Option<Duration> {
        let exhausted = self
            .windows
            .iter()
            .filter(|w| w.remaining == 0)
            .map(|w| w.reset_in);
        self.retry_after.into_iter().chain(exhausted).max()
    }

    /// The smallest spacing between calls that keeps every window from running dry before it
    /// refills (`reset_in / remaining`, strictest window wins); `None` when no window was
    /// reported or all are exhausted (then [`Signals::pause`] applies).
    ///
    /// A window whose limit is known paces only once under [`PACE_BELOW`] of it is left:
    /// with plenty left, spacing calls would slow a sync for no reason (GitHub's 5,000 an
    /// hour would mean one call every 0.7 s from the first).
    pub fn pacing(&self) -> Option<Duration> {
        self.windows
            .iter()
            .filter(|w| w.remaining > 0)
            .filter(|w| {
                w.limit
                    .is_none_or(|limit| (w.remaining as f64) < PACE_BELOW * limit as f64)
            })
            .filter_map(|w| {
                let remaining = u32::try_from(w.remaining).unwrap_or(u32::MAX);
                w.reset_in.checked_div(remaining)
            })
            .max()
    }
}

impl SignalSpec {
    /// Reads a response. `body` is what the caller kept of it (it may be a prefix; a body that
    /// is not JSON simply carries no body signal). `now` is the wall clock at receipt, needed
    /// for absolute reset times.
    pub fn read(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: Option<&[u8]>,
        now: SystemTime,
        retry_window: &RetryAfterWindow,
    ) -> Signals {
        let retry_after = if self.retry_after {
            retry_window.from_headers(headers, now)
        } else {
            None
        };
        let windows = self
            .windows
            .iter()
            .filter_map(|spec| spec.read(headers, now))
            .collect();
        let limited = self.limited_statuses.contains(&status) || self.body_limited(status, body);
        Signals {
            limited,
            retry_after,
            windows,
        }
    }

    fn body_limited(&self, status: u16, body: Option<&[u8]>) -> bool {
        let relevant: Vec<&BodySignal> = self
            .body
            .iter()
            .filter(|signal| signal.statuses.is_empty() || signal.statuses.contains(&status))
            .collect();
        if relevant.is_empty() {
            return false;
        }
        let Some(json) = body.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        else {
            return false;
        };
        relevant.iter().any(|signal| {
            json.pointer(&signal.pointer)
                .and_then(serde_json::Value::as_str)
                .is_some_and(|found| signal.values.iter().any(|v| v == found))
        })
    }
}

impl WindowSpec {
    fn read(&self, headers: &HeaderMap, now: SystemTime) -> Option<WindowReading> {
        let remaining = header_number(headers, &self.remaining)?;
        let limit = self
            .limit
            .as_deref()
            .and_then(|name| header_number(headers, name));
        let reset = header_str(headers, &self.reset)?;
        let reset_in = self.reset_format.reset_in(reset, now)?;
        Some(WindowReading {
            remaining,
            limit,
            reset_in,
        })
    }
}

impl ResetFormat {
    /// Time until `value` says the window refills; `None` when the value does not parse.
    pub fn reset_in(self, value: &str, now: SystemTime) -> Option<Duration> {
        let until = |at: SystemTime| at.duration_since(now).unwrap_or(Duration::ZERO);
        match self {
            Self::EpochSeconds => Some(until(epoch_plus(seconds(value)?)?)),
            Self::EpochMillis => Some(until(epoch_plus(seconds(value)? / 1000.0)?)),
            Self::DeltaSeconds => Duration::try_from_secs_f64(seconds(value)?.max(0.0)).ok(),
            Self::HttpDate => Some(until(httpdate::parse_http_date(value).ok()?)),
            Self::Iso8601 => Some(until(SystemTime::from(iso8601(value)?))),
        }
    }
}

/// RFC 3339, or the minute-precision ISO 8601 Jira writes (`2024-01-01T10:00Z`,
/// `2024-01-01T10:00+02:00`); RFC 3339 requires seconds, so it alone refuses the latter.
fn iso8601(value: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{OffsetDateTime, PrimitiveDateTime};

    if let Ok(at) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(at);
    }
    if let Some(local) = value.strip_suffix('Z') {
        let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
        return PrimitiveDateTime::parse(local, minutes)
            .ok()
            .map(PrimitiveDateTime::assume_utc);
    }
    let with_offset = format_description!(
        "[year]-[month]-[day]T[hour]:[minute][offset_hour sign:mandatory]:[offset_minute]"
    );
    OffsetDateTime::parse(value, with_offset).ok()
}

/// A non-negative, finite number of seconds (integers and decimals both occur).
fn seconds(value: &str) -> Option<f64> {
    let parsed: f64 = value.trim().parse().ok()?;
    (parsed.is_finite() && parsed >= 0.0).then_some(parsed)
}

fn epoch_plus(secs: f64) -> Option<SystemTime> {
    SystemTime::UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(secs).ok()?)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    header_str(headers, name)?.parse().ok()
}

#[cfg(test)]
mod tests;
