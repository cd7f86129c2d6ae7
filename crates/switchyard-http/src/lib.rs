//! Outbound HTTP foundations: what every call Switchyard makes to the outside world goes
//! through. See `docs/outbound-http.md` for the policy behind each piece.
//!
//! - [`ssrf`]: [`SsrfPolicy`], the pure decision which destinations are allowed.
//! - [`client`]: [`GuardedClient`], a reqwest client that enforces the policy on resolved
//!   addresses at connect time and on literal addresses before sending; no redirects, no
//!   proxies.
//! - [`retry_after`]: `Retry-After` parsing, clamped to a window.
//! - [`backoff`]: exponential backoff with full jitter and the jittered fixed schedule.
//! - [`breaker`]: per-key circuit breakers driven by a [`clock::Clock`].
//! - [`rate_limit`]: per-key GCRA rate limits that wait for a slot up to a deadline.
//! - [`signals`]: a provider's rate-limit signals read off a response ([`SignalSpec`]).
//! - [`adaptive`]: per-scope pauses, pacing and rate factor driven by those signals.
//! - [`retry`]: which failed calls may be sent again (idempotency) and after how long.
//! - [`concurrency`]: a cap on calls in flight per scope.
//! - [`capture`]: redacted captures of calls for diagnostics ([`CaptureSpec`], [`CaptureSink`]).
//! - [`trace_context`]: W3C `traceparent` for each attempt.
//! - [`policy_spec`]: a manifest's limits section read into a [`ProviderPolicy`].
//! - [`sigv4`]: [`AwsSigV4`], the credential that signs each attempt (AWS Signature V4).
//! - [`provider`]: [`ProviderClient`], the whole stack every provider call goes through.
//! - [`observe`]: [`CallObserver`], told about every attempt (connection health).
//! - [`metrics`]: the metric names this crate records.

pub mod adaptive;
pub mod backoff;
pub mod breaker;
pub mod capture;
pub mod client;
pub mod clock;
pub mod concurrency;
pub mod metrics;
pub mod observe;
pub mod policy_spec;
pub mod provider;
pub mod rate_limit;
pub mod retry;
pub mod retry_after;
pub mod signals;
pub mod sigv4;
pub mod ssrf;
pub mod trace_context;

pub use adaptive::{AdaptiveConfig, AdaptiveLimits};
pub use backoff::{ExponentialBackoff, JitteredSchedule};
pub use breaker::{
    BreakerConfig, BreakerRegistry, BreakerRejected, BreakerState, CircuitBreaker, Permit,
};
pub use capture::{
    Capture, CaptureSink, CaptureSpec, CapturedBody, CapturedMessage, CapturedResponse, REDACTED,
};
pub use client::{GuardedClient, GuardedClientBuilder, GuardedResolver, OutboundError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use concurrency::{ConcurrencyExhausted, ConcurrencyLimits};
pub use observe::{AttemptRecord, CallObserver, OutcomeClass};
pub use policy_spec::PolicySpecError;
pub use provider::{
    CallScope, Credential, CredentialError, CredentialSource, LimitScope, NoCredentials,
    ProviderClient, ProviderError, ProviderPolicy, ProviderRequest, ProviderResponse,
};
pub use rate_limit::{
    Admission, ConfiguredBackend, InMemoryBackend, Rate, RateLimitBackend, RateLimitError,
    RateLimiter, RedisBackend,
};
pub use retry::{CallFailure, GiveUpReason, Repeatability, RetryDecision, RetryPolicy};
pub use retry_after::RetryAfterWindow;
pub use signals::{BodySignal, ResetFormat, SignalSpec, Signals, WindowReading, WindowSpec};
pub use sigv4::{AwsSigV4, SigV4Error};
pub use ssrf::{Denied, RangeClass, SsrfPolicy};
pub use trace_context::TraceContext;
