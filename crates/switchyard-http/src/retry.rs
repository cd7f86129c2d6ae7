//! Which failed provider calls may be sent again, and after how long.
//!
//! The rule is idempotency: a call that may have reached the provider is repeated only when
//! repeating it cannot do the work twice. GET, HEAD, OPTIONS, PUT and DELETE are idempotent by
//! HTTP's definition (RFC 9110 §9.2.2); any other method only when the caller marks the
//! request idempotent or sends an idempotency key the provider honours. A failure that proves
//! the request never reached the provider is safe to repeat for every method: the connection
//! was never made, or the provider answered a status it documents as "rejected before doing
//! anything" ([`RetryPolicy::unprocessed_statuses`], Slack's 429).

use std::time::Duration;

use rand::Rng;
use reqwest::Method;

use crate::backoff::ExponentialBackoff;

/// How a call failed, as far as retrying cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFailure {
    /// No connection was made (DNS, refused, TLS handshake): the provider never saw it.
    NotSent,
    /// Timed out, or the connection broke after the request may have been written.
    MaybeSent,
    /// The provider answered with this status.
    Status(u16),
    /// The provider said "rate limited", by status or by a declared body code (a 400 that
    /// is really a 429): always worth another try once its pause is over.
    RateLimited(u16),
}

/// What the caller knows about the request's repeatability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeatability {
    /// The method is idempotent, or the caller marked the request so.
    pub idempotent: bool,
    /// The request carries an idempotency key the provider honours.
    pub idempotency_key: bool,
}

impl Repeatability {
    pub fn of(method: &Method) -> Self {
        let idempotent = [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::PUT,
            Method::DELETE,
        ]
        .contains(method);
        Self {
            idempotent,
            idempotency_key: false,
        }
    }

    fn may_repeat(self) -> bool {
        self.idempotent || self.idempotency_key
    }
}

/// The verdict for one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Send again after this delay.
    RetryAfter(Duration),
    /// Stop and report the failure.
    GiveUp(GiveUpReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The failure is not one that a retry could fix (a 4xx other than 429, …).
    NotRetryable,
    /// The request may have reached the provider and repeating it could do the work twice.
    NotIdempotent,
    /// The attempts are used up.
    AttemptsExhausted,
    /// The next attempt would start after the caller's deadline.
    DeadlineExceeded,
}

impl GiveUpReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRetryable => "not_retryable",
            Self::NotIdempotent => "not_idempotent",
            Self::AttemptsExhausted => "attempts_exhausted",
            Self::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

/// Attempts, backoff and which statuses are worth another try.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub backoff: ExponentialBackoff,
    /// Statuses worth another attempt (429 and the transient 5xx by default).
    pub retry_statuses: Vec<u16>,
    /// Statuses the provider documents as "the request was not acted on" (Slack rejects a
    /// rate-limited call before doing anything): like a connection never made, they prove the
    /// call did nothing, so it is repeated whatever its method. Empty by default: a 429 or a
    /// 5xx alone does not prove that.
    pub unprocessed_statuses: Vec<u16>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            backoff: ExponentialBackoff::new(Duration::from_millis(200), Duration::from_secs(30)),
            retry_statuses: vec![429, 500, 502, 503, 504],
            unprocessed_statuses: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// Decides after attempt `attempt` (1-based) failed with `failure`. `provider_wait` is what
    /// the provider asked for (`Retry-After`, a window reset) and wins over the backoff when
    /// longer; `time_left` is what remains of the caller's deadline.
    pub fn decide<R: Rng + ?Sized>(
        &self,
        failure: CallFailure,
        repeatability: Repeatability,
        attempt: u32,
        provider_wait: Option<Duration>,
        time_left: Duration,
        rng: &mut R,
    ) -> RetryDecision {
        let worth_retrying = match failure {
            CallFailure::NotSent | CallFailure::MaybeSent => true,
            CallFailure::Status(status) => self.retry_statuses.contains(&status),
            CallFailure::RateLimited(_) => true,
        };
        if !worth_retrying {
            return RetryDecision::GiveUp(GiveUpReason::NotRetryable);
        }
        if !self.proves_unprocessed(failure) && !repeatability.may_repeat() {
            return RetryDecision::GiveUp(GiveUpReason::NotIdempotent);
        }
        if attempt >= self.max_attempts {
            return RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        let backoff = self.backoff.delay(attempt.saturating_sub(1), rng);
        let delay = provider_wait.map_or(backoff, |asked| asked.max(backoff));
        if delay >= time_left {
            return RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded);
        }
        RetryDecision::RetryAfter(delay)
    }

    /// Whether the failure proves the provider did nothing with the request.
    fn proves_unprocessed(&self, failure: CallFailure) -> bool {
        match failure {
            CallFailure::NotSent => true,
            CallFailure::MaybeSent => false,
            CallFailure::Status(status) | CallFailure::RateLimited(status) => {
                self.unprocessed_statuses.contains(&status)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    fn decide(failure: CallFailure, method: Method, attempt: u32) -> RetryDecision {
        RetryPolicy::default().decide(
            failure,
            Repeatability::of(&method),
            attempt,
            None,
            LONG,
            &mut StdRng::seed_from_u64(7),
        )
    }

    fn retries(decision: RetryDecision) -> bool {
        matches!(decision, RetryDecision::RetryAfter(_))
    }

    #[test]
    fn idempotent_methods_retry_transient_failures() {
        for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
            for failure in [
                CallFailure::NotSent,
                CallFailure::MaybeSent,
                CallFailure::Status(429),
                CallFailure::Status(503),
            ] {
                assert!(
                    retries(decide(failure, method.clone(), 1)),
                    "{method} {failure:?}"
                );
            }
        }
    }

    #[test]
    fn client_errors_are_never_retried() {
        for status in [400, 401, 403, 404, 409, 422] {
            assert_eq!(
                decide(CallFailure::Status(status), Method::GET, 1),
                RetryDecision::GiveUp(GiveUpReason::NotRetryable)
            );
        }
    }

    #[test]
    fn a_post_that_may_have_arrived_is_not_repeated() {
        for failure in [
            CallFailure::MaybeSent,
            CallFailure::Status(429),
            CallFailure::Status(502),
        ] {
            assert_eq!(
                decide(failure, Method::POST, 1),
                RetryDecision::GiveUp(GiveUpReason::NotIdempotent),
                "{failure:?}"
            );
        }
        // Never sent: safe for any method.
        assert!(retries(decide(CallFailure::NotSent, Method::POST, 1)));
        assert!(retries(decide(CallFailure::NotSent, Method::PATCH, 1)));
    }

    #[test]
    fn a_post_with_an_idempotency_key_or_marked_idempotent_is_repeated() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        for repeatability in [
            Repeatability {
                idempotent: false,
                idempotency_key: true,
            },
            Repeatability {
                idempotent: true,
                idempotency_key: false,
            },
        ] {
            let decision = policy.decide(
                CallFailure::Status(503),
                repeatability,
                1,
                None,
                LONG,
                &mut rng,
            );
            assert!(retries(decision), "{repeatability:?}");
        }
    }

    #[test]
    fn a_post_is_repeated_after_a_status_declared_unprocessed_and_only_then() {
        let policy = RetryPolicy {
            unprocessed_statuses: vec![429],
            ..RetryPolicy::default()
        };
        let post = Repeatability::of(&Method::POST);
        let mut rng = StdRng::seed_from_u64(5);
        let asked = Some(Duration::from_secs(1));
        // The declared status, read as a status or as a rate-limit signal: repeated, after
        // the provider's wait.
        for failure in [CallFailure::Status(429), CallFailure::RateLimited(429)] {
            assert_eq!(
                policy.decide(failure, post, 1, asked, LONG, &mut rng),
                RetryDecision::RetryAfter(Duration::from_secs(1)),
                "{failure:?}"
            );
        }
        // Anything else that may have reached the provider still is not.
        for failure in [
            CallFailure::MaybeSent,
            CallFailure::Status(503),
            CallFailure::RateLimited(200),
        ] {
            assert_eq!(
                policy.decide(failure, post, 1, None, LONG, &mut rng),
                RetryDecision::GiveUp(GiveUpReason::NotIdempotent),
                "{failure:?}"
            );
        }
        // The attempt limit and the deadline still hold.
        assert_eq!(
            policy.decide(
                CallFailure::Status(429),
                post,
                policy.max_attempts,
                None,
                LONG,
                &mut rng
            ),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
        assert_eq!(
            policy.decide(
                CallFailure::Status(429),
                post,
                1,
                asked,
                Duration::from_millis(500),
                &mut rng
            ),
            RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded)
        );
        // Declaring a status unprocessed does not make an unretried status retried.
        let odd = RetryPolicy {
            unprocessed_statuses: vec![409],
            ..RetryPolicy::default()
        };
        assert_eq!(
            odd.decide(CallFailure::Status(409), post, 1, None, LONG, &mut rng),
            RetryDecision::GiveUp(GiveUpReason::NotRetryable)
        );
    }

    #[test]
    fn attempts_are_bounded() {
        let max = RetryPolicy::default().max_attempts;
        assert!(retries(decide(
            CallFailure::Status(503),
            Method::GET,
            max - 1
        )));
        assert_eq!(
            decide(CallFailure::Status(503), Method::GET, max),
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
        );
    }

    #[test]
    fn the_provider_s_wait_wins_over_a_shorter_backoff_and_the_deadline_bounds_both() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(3);
        let get = Repeatability::of(&Method::GET);
        let asked = Some(Duration::from_secs(20));
        assert_eq!(
            policy.decide(CallFailure::Status(429), get, 1, asked, LONG, &mut rng),
            RetryDecision::RetryAfter(Duration::from_secs(20))
        );
        assert_eq!(
            policy.decide(
                CallFailure::Status(429),
                get,
                1,
                asked,
                Duration::from_secs(5),
                &mut rng
            ),
            RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded)
        );
    }

    #[test]
    fn backoff_grows_with_full_jitter() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(11);
        let get = Repeatability::of(&Method::GET);
        for attempt in 1..policy.max_attempts {
            let ceiling = policy.backoff.ceiling(attempt - 1);
            for _ in 0..50 {
                let RetryDecision::RetryAfter(delay) =
                    policy.decide(CallFailure::MaybeSent, get, attempt, None, LONG, &mut rng)
                else {
                    panic!("attempt {attempt} should retry");
                };
                assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
            }
        }
    }
}
