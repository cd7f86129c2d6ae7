//! `Retry-After` (RFC 9110 §10.2.3): delta seconds or an HTTP date, clamped to a window so a
//! server can neither make us hammer it (0) nor park a delivery for a year.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The range a `Retry-After` value is clamped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfterWindow {
    pub min: Duration,
    pub max: Duration,
}

impl Default for RetryAfterWindow {
    /// 1 s to 24 h: the outbound schedule's last step is 24 h, so a longer ask is no use.
    fn default() -> Self {
        Self {
            min: Duration::from_secs(1),
            max: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl RetryAfterWindow {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min: min.min(max),
            max: max.max(min),
        }
    }

    /// The delay a `Retry-After` value asks for, clamped; `None` when the value is neither
    /// form (the caller keeps its own schedule). A date in the past or a negative number means
    /// "now", which clamps to `min`; a number too large for `u64` clamps to `max`.
    pub fn parse(&self, value: &str, now: SystemTime) -> Option<Duration> {
        let value = value.trim();
        let asked = if let Some(digits) = value.strip_prefix('-') {
            all_digits(digits).then_some(Duration::ZERO)?
        } else if all_digits(value) {
            value
                .parse::<u64>()
                .map(Duration::from_secs)
                .unwrap_or(Duration::MAX)
        } else {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        };
        // Not `clamp`: the fields are public, and clamp panics on a reversed window.
        Some(asked.max(self.min).min(self.max))
    }

    /// [`RetryAfterWindow::parse`] on a response's first `Retry-After` header.
    pub fn from_headers(&self, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
        let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
        self.parse(value, now)
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const HOUR: Duration = Duration::from_secs(3600);

    fn window() -> RetryAfterWindow {
        RetryAfterWindow::new(Duration::from_secs(1), HOUR)
    }

    fn now() -> SystemTime {
        // Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example date.
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn delta_seconds() {
        let w = window();
        assert_eq!(w.parse("120", now()), Some(Duration::from_secs(120)));
        assert_eq!(w.parse(" 5 ", now()), Some(Duration::from_secs(5)));
        assert_eq!(w.parse("0", now()), Some(Duration::from_secs(1)));
        assert_eq!(w.parse("3600", now()), Some(HOUR));
        assert_eq!(w.parse("3601", now()), Some(HOUR));
    }

    #[test]
    fn http_dates_in_all_three_formats() {
        let w = window();
        let in_two_minutes = Some(Duration::from_secs(120));
        assert_eq!(
            w.parse("Sun, 06 Nov 1994 08:51:37 GMT", now()),
            in_two_minutes
        );
        assert_eq!(
            w.parse("Sunday, 06-Nov-94 08:51:37 GMT", now()),
            in_two_minutes
        );
        assert_eq!(w.parse("Sun Nov  6 08:51:37 1994", now()), in_two_minutes);
    }

    #[test]
    fn past_dates_and_negative_numbers_clamp_to_min() {
        let w = window();
        assert_eq!(w.parse("Sun, 06 Nov 1994 08:49:36 GMT", now()), Some(w.min));
        assert_eq!(w.parse("Thu, 01 Jan 1970 00:00:00 GMT", now()), Some(w.min));
        assert_eq!(w.parse("-1", now()), Some(w.min));
        assert_eq!(w.parse("-99999999999999999999999", now()), Some(w.min));
    }

    #[test]
    fn huge_values_clamp_to_max() {
        let w = window();
        assert_eq!(w.parse("99999999999999999999999999", now()), Some(HOUR));
        assert_eq!(w.parse(&u64::MAX.to_string(), now()), Some(HOUR));
        assert_eq!(w.parse("Fri, 31 Dec 9999 23:59:59 GMT", now()), Some(HOUR));
    }

    #[test]
    fn garbage_is_none() {
        let w = window();
        for garbage in [
            "",
            " ",
            "soon",
            "1.5",
            "+5",
            "5s",
            "0x10",
            "-",
            "--1",
            "1e3",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
        ] {
            assert_eq!(w.parse(garbage, now()), None, "{garbage:?}");
        }
    }

    #[test]
    fn reads_the_header() {
        let w = window();
        let mut headers = HeaderMap::new();
        assert_eq!(w.from_headers(&headers, now()), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        assert_eq!(
            w.from_headers(&headers, now()),
            Some(Duration::from_secs(30))
        );
        let non_utf8 = HeaderValue::from_bytes(b"\xff").unwrap();
        headers.insert(RETRY_AFTER, non_utf8);
        assert_eq!(w.from_headers(&headers, now()), None);
    }

    #[test]
    fn reversed_window_is_ordered() {
        let w = RetryAfterWindow::new(HOUR, Duration::from_secs(1));
        assert_eq!(w.parse("10", now()), Some(Duration::from_secs(10)));
    }
}
