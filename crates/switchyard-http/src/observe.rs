//! What the provider stack tells the rest of Switchyard about each attempt: the input of
//! connection health. Observers are called synchronously on the call's task, so they must
//! only record (count, enqueue) and leave storage to a task of their own.

use std::time::{Duration, SystemTime};

/// How one attempt ended, in the classes connection health counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeClass {
    /// 2xx or 3xx.
    Success,
    /// 401 or 403: the credential was refused.
    AuthFailure,
    /// 429, or the provider's own "rate limited" signal.
    RateLimited,
    /// Any other 4xx: the provider answered, the request was wrong.
    ClientError,
    /// 5xx.
    ServerError,
    /// No answer before the deadline.
    Timeout,
    /// Connection refused or reset, TLS or body failure, a denied destination.
    Transport,
    /// The connection's breaker was open; nothing was sent.
    CircuitOpen,
}

impl OutcomeClass {
    pub const ALL: [Self; 8] = [
        Self::Success,
        Self::AuthFailure,
        Self::RateLimited,
        Self::ClientError,
        Self::ServerError,
        Self::Timeout,
        Self::Transport,
        Self::CircuitOpen,
    ];

    /// The stable name used in health documents and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::AuthFailure => "auth_failure",
            Self::RateLimited => "rate_limited",
            Self::ClientError => "client_error",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::CircuitOpen => "circuit_open",
        }
    }

    pub const fn is_success(self) -> bool {
        matches!(self, Self::Success)
    }

    /// The class of an answered attempt.
    pub const fn of_status(status: u16, limited: bool) -> Self {
        match status {
            _ if limited => Self::RateLimited,
            200..=399 => Self::Success,
            401 | 403 => Self::AuthFailure,
            429 => Self::RateLimited,
            400..=499 => Self::ClientError,
            _ => Self::ServerError,
        }
    }
}

/// One attempt, as observers see it. Carries no request or response content: the route is
/// the template, never the filled-in path, and `error` is a stable code, never a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub tenant: String,
    pub provider: String,
    pub connection: Option<String>,
    pub method: String,
    pub route: String,
    pub status: Option<u16>,
    pub class: OutcomeClass,
    pub latency: Duration,
    pub at: SystemTime,
    /// A stable error code for a failed attempt (`upstream_timeout`, `http_503`…).
    pub error: Option<String>,
}

/// Receives every attempt the stack makes.
pub trait CallObserver: Send + Sync {
    fn attempt(&self, record: &AttemptRecord);
}
