//! What a finished attempt means for its delivery: done, retry when, or give up.

use std::time::{Duration, SystemTime};

use rand::Rng;
use switchyard_http::{JitteredSchedule, RetryAfterWindow};
use time::OffsetDateTime;

use super::send::SendResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Succeeded,
    Retry {
        at: OffsetDateTime,
    },
    /// No step left in the schedule: dead letter.
    Exhausted,
    /// 410 Gone: the delivery fails and the endpoint is disabled.
    Gone,
}

impl Decision {
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Retry { .. } => "retrying",
            Self::Exhausted => "failed",
            Self::Gone => "gone",
        }
    }
}

/// Statuses that say "slow down": the endpoint is paused for their `Retry-After`.
pub(crate) fn throttles(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// The decision after an attempt, and how long to pause the whole endpoint (throttling).
///
/// `made` is the number of attempts of the current schedule run, this one included; the
/// schedule's step `made` is the wait before the next one. A throttling status waits for the
/// later of that step and its `Retry-After`.
pub(crate) fn decide<R: Rng + ?Sized>(
    result: &SendResult,
    made: usize,
    schedule: &JitteredSchedule,
    window: &RetryAfterWindow,
    rng: &mut R,
    now: OffsetDateTime,
) -> (Decision, Option<Duration>) {
    if result.succeeded() {
        return (Decision::Succeeded, None);
    }
    if result.status == Some(410) {
        return (Decision::Gone, None);
    }
    let throttle = result
        .status
        .filter(|s| throttles(*s))
        .map(|_| window.from_headers(&result.headers, SystemTime::now()));
    let Some(step) = schedule.delay(made, rng) else {
        return (Decision::Exhausted, None);
    };
    let retry_after = throttle.flatten();
    let wait = retry_after.map_or(step, |asked| asked.max(step));
    let at = now
        .checked_add(time::Duration::try_from(wait).unwrap_or(time::Duration::MAX))
        .unwrap_or(now);
    (Decision::Retry { at }, retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    fn result(status: u16, retry_after: Option<&str>) -> SendResult {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(
                RETRY_AFTER,
                HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
            );
        }
        SendResult {
            status: Some(status),
            headers,
            body: Bytes::new(),
            error_class: None,
            error: None,
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn schedule_then_exhausted() {
        let schedule = JitteredSchedule::new(
            vec![
                Duration::ZERO,
                Duration::from_secs(5),
                Duration::from_secs(60),
            ],
            0.0,
        );
        let window = RetryAfterWindow::default();
        let mut rng = StdRng::seed_from_u64(1);
        let now = OffsetDateTime::UNIX_EPOCH;
        let failed = result(500, None);
        let (first, _) = decide(&failed, 1, &schedule, &window, &mut rng, now);
        assert_eq!(
            first,
            Decision::Retry {
                at: now + time::Duration::seconds(5)
            }
        );
        let (second, _) = decide(&failed, 2, &schedule, &window, &mut rng, now);
        assert_eq!(
            second,
            Decision::Retry {
                at: now + time::Duration::seconds(60)
            }
        );
        assert_eq!(
            decide(&failed, 3, &schedule, &window, &mut rng, now).0,
            Decision::Exhausted
        );
        assert_eq!(
            decide(&result(204, None), 3, &schedule, &window, &mut rng, now).0,
            Decision::Succeeded
        );
        assert_eq!(
            decide(&result(410, None), 1, &schedule, &window, &mut rng, now).0,
            Decision::Gone
        );
    }

    #[test]
    fn retry_after_wins_when_later_and_throttles() {
        let schedule = JitteredSchedule::new(vec![Duration::ZERO, Duration::from_secs(5)], 0.0);
        let window = RetryAfterWindow::default();
        let mut rng = StdRng::seed_from_u64(1);
        let now = OffsetDateTime::UNIX_EPOCH;
        let (decision, throttle) = decide(
            &result(429, Some("120")),
            1,
            &schedule,
            &window,
            &mut rng,
            now,
        );
        assert_eq!(
            decision,
            Decision::Retry {
                at: now + time::Duration::seconds(120)
            }
        );
        assert_eq!(throttle, Some(Duration::from_secs(120)));
        // Retry-After on a status that does not throttle is ignored.
        let (decision, throttle) = decide(
            &result(500, Some("120")),
            1,
            &schedule,
            &window,
            &mut rng,
            now,
        );
        assert_eq!(
            decision,
            Decision::Retry {
                at: now + time::Duration::seconds(5)
            }
        );
        assert_eq!(throttle, None);
    }
}
