//! Why an attempt failed: the class handlers report and the retry policy acts on.

use std::{fmt, str::FromStr, time::Duration};

/// What kind of failure an attempt ended with, shared by the queue (retry policy), runs and
/// attempts (what users see) and alerts. The retry policy decides per class whether another
/// attempt can help (a bad credential will not fix itself; a timeout may).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The provider rejected the credential.
    Auth,
    /// The provider asked us to slow down (often with a retry-after).
    RateLimited,
    /// The provider was down or answered 5xx.
    ProviderUnavailable,
    /// No answer in time.
    Timeout,
    /// The provider answered something we cannot use.
    InvalidResponse,
    /// Our own bug or an infrastructure failure (also: a panicking handler, a lost lease).
    Internal,
}

impl FailureClass {
    pub const ALL: [FailureClass; 6] = [
        FailureClass::Auth,
        FailureClass::RateLimited,
        FailureClass::ProviderUnavailable,
        FailureClass::Timeout,
        FailureClass::InvalidResponse,
        FailureClass::Internal,
    ];

    /// Whether trying again later may succeed without anyone changing anything: rate limits,
    /// outages, timeouts and `internal` (mostly our own database or network hiccuping). Not
    /// `auth` (the credential must be fixed; retrying can lock the account) nor
    /// `invalid_response` (the same request gets the same unusable answer, and costs quota).
    pub fn is_retryable(self) -> bool {
        match self {
            FailureClass::RateLimited
            | FailureClass::ProviderUnavailable
            | FailureClass::Timeout
            | FailureClass::Internal => true,
            FailureClass::Auth | FailureClass::InvalidResponse => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Auth => "auth",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::ProviderUnavailable => "provider_unavailable",
            FailureClass::Timeout => "timeout",
            FailureClass::InvalidResponse => "invalid_response",
            FailureClass::Internal => "internal",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`FailureClass`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown failure class `{0}`")]
pub struct UnknownFailureClass(pub String);

impl FromStr for FailureClass {
    type Err = UnknownFailureClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FailureClass::ALL
            .into_iter()
            .find(|class| class.as_str() == s)
            .ok_or_else(|| UnknownFailureClass(s.to_owned()))
    }
}

/// The error a job handler returns: a class, a message for operators, and optionally how long
/// the provider asked us to wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct JobError {
    pub class: FailureClass,
    pub message: String,
    /// The earliest useful retry, when the provider said (`Retry-After`). The policy's
    /// backoff still applies when it is longer.
    pub retry_after: Option<Duration>,
}

impl JobError {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(FailureClass::Internal, message)
    }
}
