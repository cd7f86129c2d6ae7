//! How a failed provider call becomes a job failure: the class decides whether the job is
//! retried, and a wait the provider or the stack knows about becomes the retry's earliest time.

use reqwest::StatusCode;
use switchyard_http::{OutboundError, ProviderError, RateLimitError};

use super::failure::{FailureClass, JobError};

impl From<&ProviderError> for JobError {
    fn from(err: &ProviderError) -> Self {
        // The stack's messages carry no URL, header or body, so they are safe to keep.
        let message = format!("{}: {err}", err.code());
        match err {
            ProviderError::Unavailable(rejected) => {
                JobError::new(FailureClass::ProviderUnavailable, message)
                    .with_retry_after(rejected.retry_in())
            }
            ProviderError::RateLimited(RateLimitError::DeadlineExceeded { retry_in }) => {
                JobError::new(FailureClass::RateLimited, message).with_retry_after(*retry_in)
            }
            // A credential the provider refused must be replaced, not retried.
            ProviderError::Credential(error) if error.is_refused() => {
                JobError::new(FailureClass::Auth, message)
            }
            ProviderError::RateLimited(RateLimitError::Backend(_))
            | ProviderError::Credential(_)
            | ProviderError::BodyNotCloneable => JobError::internal(message),
            ProviderError::Busy(_) => JobError::new(FailureClass::RateLimited, message),
            // A credential that cannot be put on a request must be fixed, not retried.
            ProviderError::InvalidCredential => JobError::new(FailureClass::Auth, message),
            ProviderError::Failed {
                last_status: Some(status),
                ..
            } => JobError::new(status_class(*status), message),
            ProviderError::Failed {
                source: Some(source),
                ..
            } => JobError::new(transport_class(source), message),
            ProviderError::Failed { .. } => JobError::new(FailureClass::Timeout, message),
        }
    }
}

fn status_class(status: StatusCode) -> FailureClass {
    match status.as_u16() {
        401 | 403 => FailureClass::Auth,
        429 => FailureClass::RateLimited,
        500..=599 => FailureClass::ProviderUnavailable,
        // A 4xx that was retried is one the provider declared as "rate limited" in its body.
        _ => FailureClass::RateLimited,
    }
}

fn transport_class(err: &OutboundError) -> FailureClass {
    match err {
        // The destination is refused by policy: the same call will be refused again.
        OutboundError::Denied(_) => FailureClass::InvalidResponse,
        OutboundError::BodyTooLarge { .. } => FailureClass::InvalidResponse,
        OutboundError::Request(e) if e.is_timeout() => FailureClass::Timeout,
        OutboundError::Request(_) => FailureClass::ProviderUnavailable,
        OutboundError::Build(_) => FailureClass::Internal,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard_http::{BreakerRejected, ConcurrencyExhausted, CredentialError, GiveUpReason};

    use super::*;

    fn failed(status: Option<u16>) -> ProviderError {
        ProviderError::Failed {
            attempts: 4,
            reason: GiveUpReason::AttemptsExhausted,
            last_status: status.map(|s| StatusCode::from_u16(s).unwrap()),
            source: None,
        }
    }

    #[test]
    fn an_open_breaker_is_provider_unavailable_with_its_cool_down() {
        let open = ProviderError::Unavailable(BreakerRejected::Open {
            retry_in: Duration::from_secs(30),
        });
        let job = JobError::from(&open);
        assert_eq!(job.class, FailureClass::ProviderUnavailable);
        assert_eq!(job.retry_after, Some(Duration::from_secs(30)));
        assert!(
            job.message.starts_with("provider_unavailable"),
            "{}",
            job.message
        );
    }

    #[test]
    fn statuses_and_waits_map_to_their_classes() {
        let limited = ProviderError::RateLimited(RateLimitError::DeadlineExceeded {
            retry_in: Duration::from_secs(5),
        });
        let job = JobError::from(&limited);
        assert_eq!(
            (job.class, job.retry_after),
            (FailureClass::RateLimited, Some(Duration::from_secs(5)))
        );
        let cases = [
            (failed(Some(503)), FailureClass::ProviderUnavailable),
            (failed(Some(429)), FailureClass::RateLimited),
            (failed(Some(401)), FailureClass::Auth),
            (failed(None), FailureClass::Timeout),
            (
                ProviderError::Busy(ConcurrencyExhausted { limit: 2 }),
                FailureClass::RateLimited,
            ),
            (ProviderError::InvalidCredential, FailureClass::Auth),
            (ProviderError::BodyNotCloneable, FailureClass::Internal),
            (
                ProviderError::Credential(CredentialError::refused("invalid_client")),
                FailureClass::Auth,
            ),
            (
                ProviderError::Credential(CredentialError::unavailable("vault: sealed")),
                FailureClass::Internal,
            ),
        ];
        for (err, class) in cases {
            assert_eq!(JobError::from(&err).class, class, "{err:?}");
        }
        let refused = ProviderError::Credential(CredentialError::refused("invalid_client"));
        assert_eq!(refused.code(), "auth_failed");
    }
}
