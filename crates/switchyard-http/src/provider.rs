//! The provider call stack: the one way Switchyard calls a provider (a sync page, an action,
//! a token exchange, a connection test).
//!
//! Per attempt, in this order: wait out the scope's adaptive pause and pacing, take a slot
//! from the proactive rate limiter (at the adaptively scaled rate), pass the connection's
//! circuit breaker, inject the credential into a copy of the request, send through the
//! SSRF-guarded client under the call's deadline, then read the provider's signals back into
//! the adaptive state and the breaker. Failed attempts are retried by [`RetryPolicy`]'s
//! idempotency rules. Every attempt is one `provider.call` span and a set of metrics.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Request, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tracing::Instrument;

use crate::adaptive::AdaptiveLimits;
use crate::breaker::{BreakerRegistry, BreakerRejected};
use crate::capture::{self, Capture, CaptureSink, CaptureSpec, CapturedMessage, CapturedResponse};
use crate::client::{GuardedClient, OutboundError};
use crate::concurrency::{ConcurrencyExhausted, ConcurrencyLimits};
use crate::metrics as m;
use crate::observe::{AttemptRecord, CallObserver, OutcomeClass};
use crate::rate_limit::{Rate, RateLimitBackend, RateLimitError, RateLimiter};
use crate::retry::{CallFailure, GiveUpReason, Repeatability, RetryDecision, RetryPolicy};
use crate::retry_after::RetryAfterWindow;
use crate::signals::SignalSpec;
use crate::sigv4::AwsSigV4;
use crate::trace_context::TraceContext;

/// W3C Trace Context's header.
const TRACEPARENT: &str = "traceparent";

/// How often a call sweeps idle rate-limit and adaptive state by default (per-key buckets
/// must not pile up in a long-running process).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Adaptive state untouched this long, with no pause or pacing left, is forgotten.
const FORGET_IDLE_AFTER: Duration = Duration::from_secs(15 * 60);
/// A per-call endpoint key longer than this is replaced by its hash, so a limit key stays
/// short whatever the manifest's key template renders.
const MAX_ENDPOINT_KEY: usize = 64;

/// Who a call is for: the keys of its rate-limit scope and its breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallScope {
    pub tenant: String,
    pub provider: String,
    pub connection: Option<String>,
}

/// Which callers share one rate budget, as the provider counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    /// Each connection has its own budget (per-token limits: GitHub, Slack).
    #[default]
    Connection,
    /// A tenant's connections to the provider share one (per-organisation limits: Okta).
    TenantProvider,
    /// Every tenant shares one (an app-wide quota).
    Provider,
}

impl CallScope {
    fn limit_key(&self, scope: LimitScope) -> String {
        match (scope, &self.connection) {
            (LimitScope::Connection, Some(connection)) => {
                format!("{}/{}/{connection}", self.tenant, self.provider)
            }
            (LimitScope::Connection | LimitScope::TenantProvider, _) => {
                format!("{}/{}", self.tenant, self.provider)
            }
            (LimitScope::Provider, _) => self.provider.clone(),
        }
    }

    /// Breakers are per (tenant, connection): one broken credential must not fail fast the
    /// provider for everyone.
    fn breaker_key(&self) -> String {
        match &self.connection {
            Some(connection) => format!("{}/{connection}", self.tenant),
            None => format!("{}/{}", self.tenant, self.provider),
        }
    }
}

/// A credential, placed on the request at send time. The plaintext exists only in this value
/// and in the one outgoing request built from it.
pub enum Credential {
    Bearer(SecretString),
    Basic {
        username: String,
        password: SecretString,
    },
    Header {
        name: HeaderName,
        prefix: String,
        value: SecretString,
    },
    Query {
        name: String,
        value: SecretString,
    },
    /// Several headers, each value whole (a manifest's `custom_headers` mode).
    Headers(Vec<(HeaderName, SecretString)>),
    /// A signature over the request (AWS Signature Version 4), made last, once every other
    /// header is on, at the attempt's own time.
    AwsSigV4(AwsSigV4),
}

impl fmt::Debug for Credential {
    /// Names the kind only: a credential's value never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::Bearer(_) => "bearer",
            Self::Basic { .. } => "basic",
            Self::Header { .. } => "header",
            Self::Query { .. } => "query",
            Self::Headers(_) => "headers",
            Self::AwsSigV4(_) => "aws_sigv4",
        };
        write!(f, "Credential({kind})")
    }
}

impl Credential {
    fn apply(&self, request: &mut Request) -> Result<(), ProviderError> {
        let sensitive = |value: String| {
            let mut value =
                HeaderValue::from_str(&value).map_err(|_| ProviderError::InvalidCredential)?;
            value.set_sensitive(true);
            Ok::<_, ProviderError>(value)
        };
        match self {
            Self::Bearer(token) => {
                let value = sensitive(format!("Bearer {}", token.expose_secret()))?;
                request.headers_mut().insert(AUTHORIZATION, value);
            }
            Self::Basic { username, password } => {
                use base64::Engine as _;
                let pair = format!("{username}:{}", password.expose_secret());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                let value = sensitive(format!("Basic {encoded}"))?;
                request.headers_mut().insert(AUTHORIZATION, value);
            }
            Self::Header {
                name,
                prefix,
                value,
            } => {
                let value = sensitive(format!("{prefix}{}", value.expose_secret()))?;
                request.headers_mut().insert(name.clone(), value);
            }
            Self::Query { name, value } => {
                request
                    .url_mut()
                    .query_pairs_mut()
                    .append_pair(name, value.expose_secret());
            }
            Self::Headers(headers) => {
                for (name, value) in headers {
                    let value = sensitive(value.expose_secret().to_owned())?;
                    request.headers_mut().insert(name.clone(), value);
                }
            }
            Self::AwsSigV4(signer) => {
                signer.sign(request, SystemTime::now()).map_err(|error| {
                    tracing::warn!(%error, "the request could not be signed");
                    ProviderError::InvalidCredential
                })?;
            }
        }
        Ok(())
    }
}

/// Where credentials come from at call time (the vault, in the server).
pub trait CredentialSource: Send + Sync {
    fn credential(
        &self,
        scope: &CallScope,
    ) -> impl Future<Output = Result<Option<Credential>, CredentialError>> + Send;

    /// What the provider granted the credential `scope`'s calls carry, when the source
    /// knows: a token it minted came with its scopes or permissions. `None` when it does not
    /// (a stored token, an API key).
    fn granted_scopes(
        &self,
        scope: &CallScope,
    ) -> impl Future<Output = Option<Vec<String>>> + Send {
        let _ = scope;
        std::future::ready(None)
    }
}

/// A credential source failed; the message is the source's own and must not carry secrets.
#[derive(Debug, thiserror::Error)]
#[error("credential {}: {message}", if *.refused { "refused" } else { "unavailable" })]
pub struct CredentialError {
    message: String,
    refused: bool,
}

impl CredentialError {
    /// The credential could not be had now (a store or vault failure, a token endpoint down):
    /// a later attempt may work.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            refused: false,
        }
    }

    /// The provider refused the credential (a token endpoint's `invalid_client`): only a new
    /// credential helps, so the call is `auth_failed` and not retried.
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            refused: true,
        }
    }

    pub fn is_refused(&self) -> bool {
        self.refused
    }
}

/// No credentials: public endpoints, or tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCredentials;

impl CredentialSource for NoCredentials {
    async fn credential(&self, _: &CallScope) -> Result<Option<Credential>, CredentialError> {
        Ok(None)
    }
}

/// What a provider declares about itself (a connector manifest's limits section).
#[derive(Debug, Clone)]
pub struct ProviderPolicy {
    /// Proactive rate; `None` relies on the provider's signals alone.
    pub rate: Option<Rate>,
    pub limit_scope: LimitScope,
    pub signals: SignalSpec,
    pub retry: RetryPolicy,
    /// Bodies are read up to this size; a larger body fails the call.
    pub max_body: usize,
    /// Calls in flight per scope (in this process); `None` for no cap.
    pub max_concurrency: Option<NonZeroU32>,
    /// Rates of endpoint classes the provider limits separately (Okta limits `/api/v1/users`
    /// and `/api/v1/logs` apart). A call of a class has its own budget, signals and pauses
    /// within its scope; a class without a rate here uses `rate`. A call that also names an
    /// endpoint key (Slack's channel for `chat.postMessage`) has a budget of its own per
    /// key, each at the class's rate.
    pub endpoint_rates: HashMap<String, Rate>,
    /// Whether and how calls are captured for diagnostics.
    pub capture: CaptureSpec,
}

impl Default for ProviderPolicy {
    fn default() -> Self {
        Self {
            rate: None,
            limit_scope: LimitScope::Connection,
            signals: SignalSpec::default(),
            retry: RetryPolicy::default(),
            max_body: 16 * 1024 * 1024,
            max_concurrency: None,
            endpoint_rates: HashMap::new(),
            capture: CaptureSpec::default(),
        }
    }
}

/// One call to make.
#[derive(Debug)]
pub struct ProviderRequest {
    pub scope: CallScope,
    /// Without credentials: they are added per attempt.
    pub request: Request,
    /// The route template (`/orgs/{org}/members`) for spans and metrics; never the filled-in
    /// path, which can carry identifiers.
    pub route: String,
    pub repeatability: Repeatability,
    /// The whole call, retries and waits included, ends by then.
    pub deadline: Instant,
    /// The caller's trace: each attempt is sent as a child span of it.
    pub trace: Option<TraceContext>,
    /// The endpoint class the provider limits this call under, if it limits by endpoint.
    pub endpoint_class: Option<String>,
    /// Within the class, what the provider counts separately (a Slack channel id); ignored
    /// without a class.
    pub endpoint_key: Option<String>,
}

impl ProviderRequest {
    pub fn new(scope: CallScope, request: Request, route: impl Into<String>) -> Self {
        let repeatability = Repeatability::of(request.method());
        // A traceparent the caller already set is the parent; the stack sets its own.
        let trace = request
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse);
        Self {
            scope,
            request,
            route: route.into(),
            repeatability,
            deadline: Instant::now() + Duration::from_secs(60),
            trace,
            endpoint_class: None,
            endpoint_key: None,
        }
    }

    pub fn deadline_in(mut self, within: Duration) -> Self {
        self.deadline = Instant::now() + within;
        self
    }

    /// Limits the call under an endpoint class (see [`ProviderPolicy::endpoint_rates`]).
    pub fn with_endpoint_class(mut self, class: impl Into<String>) -> Self {
        self.endpoint_class = Some(class.into());
        self
    }

    /// Limits the call under its class's budget for `key` alone: `{scope}#{class}#{key}` at
    /// the class's rate (Slack's one post a second per channel).
    pub fn with_endpoint_key(mut self, key: impl Into<String>) -> Self {
        self.endpoint_key = Some(key.into());
        self
    }

    /// Sends the call's attempts as children of `trace`.
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = Some(trace);
        self
    }

    /// The request carries an idempotency key the provider honours: POSTs may be repeated.
    pub fn with_idempotency_key(mut self) -> Self {
        self.repeatability.idempotency_key = true;
        self
    }

    /// The rate-limit key and rate of this call, and the key its concurrency is capped under
    /// (the class, never the per-call key: one semaphore per channel would never be shared).
    fn limits(&self, policy: &ProviderPolicy) -> (String, Option<Rate>, String) {
        let scope_key = self.scope.limit_key(policy.limit_scope);
        let Some(class) = &self.endpoint_class else {
            return (scope_key.clone(), policy.rate, scope_key);
        };
        let class_key = format!("{scope_key}#{class}");
        let rate = policy.endpoint_rates.get(class).copied().or(policy.rate);
        match &self.endpoint_key {
            Some(key) => (format!("{class_key}#{}", bounded_key(key)), rate, class_key),
            None => (class_key.clone(), rate, class_key),
        }
    }
}

/// `key` itself when short, else a stable hash of it (FNV-1a, 64 bits: the same in every
/// process, so a shared Redis budget agrees). Two long keys sharing a hash would share a
/// budget, which only limits harder.
fn bounded_key(key: &str) -> Cow<'_, str> {
    if key.len() <= MAX_ENDPOINT_KEY {
        return Cow::Borrowed(key);
    }
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    Cow::Owned(format!("~{hash:016x}"))
}

/// The provider's answer (any status: a 404 is an answer, not a stack failure).
#[derive(Debug)]
pub struct ProviderResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Attempts made, the answering one included.
    pub attempts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The connection's breaker is open: the call was not sent.
    #[error("provider unavailable: circuit open")]
    Unavailable(#[from] BreakerRejected),
    /// The rate budget has no slot before the deadline.
    #[error(transparent)]
    RateLimited(#[from] RateLimitError),
    /// Says why: a credential source's messages carry no secrets.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error("the credential cannot be placed on the request")]
    InvalidCredential,
    /// The call failed and was not (or no longer) retried.
    #[error("provider call failed after {attempts} attempt(s) ({})", reason.as_str())]
    Failed {
        attempts: u32,
        reason: GiveUpReason,
        /// The last response, when the failure was a status.
        last_status: Option<StatusCode>,
        #[source]
        source: Option<OutboundError>,
    },
    #[error("the request body cannot be repeated")]
    BodyNotCloneable,
    /// The scope's cap on calls in flight left no slot before the deadline.
    #[error(transparent)]
    Busy(#[from] ConcurrencyExhausted),
}

impl ProviderError {
    /// Stable code, as the job engine classifies failures.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "provider_unavailable",
            Self::RateLimited(e) => e.code(),
            Self::Credential(error) if error.is_refused() => "auth_failed",
            Self::Credential(_) | Self::InvalidCredential => "credential_unavailable",
            Self::Failed {
                source: Some(e), ..
            } => e.code(),
            Self::Failed { .. } => "provider_error",
            Self::BodyNotCloneable => "request_not_repeatable",
            Self::Busy(_) => "concurrency_limited",
        }
    }
}

/// The shared parts of the stack; one per process.
pub struct ProviderClient<B: RateLimitBackend, C: CredentialSource> {
    client: GuardedClient,
    limiter: Arc<RateLimiter<B>>,
    adaptive: Arc<AdaptiveLimits>,
    breakers: Arc<BreakerRegistry>,
    credentials: C,
    retry_window: RetryAfterWindow,
    observers: Vec<Arc<dyn CallObserver>>,
    concurrency: ConcurrencyLimits,
    capture: Option<Arc<dyn CaptureSink>>,
    /// When idle limiter and adaptive state was last swept, and how often it is.
    last_sweep: Mutex<Instant>,
    sweep_every: Duration,
}

impl<B: RateLimitBackend, C: CredentialSource> fmt::Debug for ProviderClient<B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClient").finish_non_exhaustive()
    }
}

/// What one attempt came to.
enum Attempt {
    Answered(ProviderResponse),
    Failed {
        failure: CallFailure,
        wait: Option<Duration>,
        status: Option<StatusCode>,
        source: Option<OutboundError>,
        /// A failing status's response, returned as-is when retrying stops for a reason that
        /// says the answer stands (not retryable).
        response: Option<ProviderResponse>,
    },
}

impl<B: RateLimitBackend, C: CredentialSource> ProviderClient<B, C> {
    pub fn new(
        client: GuardedClient,
        limiter: Arc<RateLimiter<B>>,
        adaptive: Arc<AdaptiveLimits>,
        breakers: Arc<BreakerRegistry>,
        credentials: C,
    ) -> Self {
        Self {
            client,
            limiter,
            adaptive,
            breakers,
            credentials,
            retry_window: RetryAfterWindow::new(Duration::ZERO, Duration::from_secs(15 * 60)),
            observers: Vec::new(),
            concurrency: ConcurrencyLimits::new(),
            capture: None,
            last_sweep: Mutex::new(Instant::now()),
            sweep_every: SWEEP_EVERY,
        }
    }

    /// Where captures of providers whose policy enables them go.
    pub fn with_capture_sink(mut self, sink: Arc<dyn CaptureSink>) -> Self {
        self.capture = Some(sink);
        self
    }

    /// Sweeps idle limiter and adaptive state this often instead of once a minute.
    pub fn with_sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_every = every;
        self
    }

    /// Adds an observer told about every attempt (connection health).
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    fn observe(
        &self,
        call: &ProviderRequest,
        status: Option<StatusCode>,
        class: OutcomeClass,
        latency: Duration,
        error: Option<String>,
    ) {
        if self.observers.is_empty() {
            return;
        }
        let record = AttemptRecord {
            tenant: call.scope.tenant.clone(),
            provider: call.scope.provider.clone(),
            connection: call.scope.connection.clone(),
            method: call.request.method().to_string(),
            route: call.route.clone(),
            status: status.map(|s| s.as_u16()),
            class,
            latency,
            at: SystemTime::now(),
            error,
        };
        for observer in &self.observers {
            observer.attempt(&record);
        }
    }

    /// What the credential source says `scope`'s credential was granted.
    pub async fn granted_scopes(&self, scope: &CallScope) -> Option<Vec<String>> {
        self.credentials.granted_scopes(scope).await
    }

    /// Makes the call, with waits and retries, until an answer, a final failure or the
    /// deadline. Any status the retry policy does not retry (200, 404, 422…) is an answer.
    pub async fn call(
        &self,
        policy: &ProviderPolicy,
        call: ProviderRequest,
    ) -> Result<ProviderResponse, ProviderError> {
        self.sweep_if_due().await;
        let (limit_key, rate, concurrency_key) = call.limits(policy);
        let breaker_key = call.scope.breaker_key();
        let mut attempt = 1u32;
        loop {
            self.wait_for_slot(rate, &limit_key, call.deadline).await?;
            // Held for the attempt (sending and reading the body), not across retry waits.
            let _in_flight = match policy.max_concurrency {
                Some(limit) => Some(
                    self.concurrency
                        .acquire(&concurrency_key, limit, call.deadline)
                        .await?,
                ),
                None => None,
            };
            let request = call
                .request
                .try_clone()
                .ok_or(ProviderError::BodyNotCloneable)?;
            let span = tracing::info_span!(
                "provider.call",
                otel.kind = "client",
                provider = %call.scope.provider,
                tenant = %call.scope.tenant,
                connection = call.scope.connection.as_deref().unwrap_or(""),
                method = %call.request.method(),
                route = %call.route,
                attempt,
                status = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty,
            );
            // With trace export on, a caller's traceparent parents the exported span as well.
            if let Some(parent) = &call.trace {
                parent.adopt_as_parent(&span);
            }
            let outcome = self
                .attempt(policy, &call, &limit_key, &breaker_key, attempt, request)
                .instrument(span)
                .await?;
            let (failure, wait, status, source, response) = match outcome {
                Attempt::Answered(mut response) => {
                    response.attempts = attempt;
                    return Ok(response);
                }
                Attempt::Failed {
                    failure,
                    wait,
                    status,
                    source,
                    response,
                } => (failure, wait, status, source, response),
            };
            let time_left = call.deadline.saturating_duration_since(Instant::now());
            // Decided in its own statement: the thread-local generator must be dropped before
            // the retry's sleep, or the call's future would not be Send.
            let decision = policy.retry.decide(
                failure,
                call.repeatability,
                attempt,
                wait,
                time_left,
                &mut rand::rng(),
            );
            match decision {
                RetryDecision::RetryAfter(delay) => {
                    m::provider_retry(&call.scope.provider);
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                // A status the policy does not retry is the provider's answer.
                RetryDecision::GiveUp(GiveUpReason::NotRetryable) if response.is_some() => {
                    let mut response = response.ok_or(ProviderError::BodyNotCloneable)?;
                    response.attempts = attempt;
                    return Ok(response);
                }
                RetryDecision::GiveUp(reason) => {
                    return Err(ProviderError::Failed {
                        attempts: attempt,
                        reason,
                        last_status: status,
                        source,
                    });
                }
            }
        }
    }

    /// The adaptive pause and pacing, then the proactive limiter at the adapted rate.
    async fn wait_for_slot(
        &self,
        rate: Option<Rate>,
        limit_key: &str,
        deadline: Instant,
    ) -> Result<(), ProviderError> {
        let started = Instant::now();
        let wait = self.adaptive.reserve(limit_key);
        if !wait.is_zero() {
            if started + wait > deadline {
                return Err(RateLimitError::DeadlineExceeded { retry_in: wait }.into());
            }
            tokio::time::sleep(wait).await;
        }
        if let Some(base) = rate {
            let rate = self.adaptive.effective_rate(limit_key, base);
            self.limiter
                .until_ready_at(limit_key, rate, deadline)
                .await?;
        }
        m::provider_rate_wait(started.elapsed());
        Ok(())
    }

    /// Once every sweep interval (a minute by default), forgets limiter buckets that have
    /// refilled and adaptive state that has gone idle, so keys never seen again cost nothing.
    async fn sweep_if_due(&self) {
        let due = {
            let mut last = self
                .last_sweep
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let due = last.elapsed() >= self.sweep_every;
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            self.limiter.cleanup().await;
            self.adaptive.forget_idle(FORGET_IDLE_AFTER);
        }
    }

    /// Limit keys with adaptive state in this process (the in-memory limiter's buckets are
    /// counted by [`crate::InMemoryBackend::tracked_keys`]).
    pub fn tracked_adaptive_scopes(&self) -> usize {
        self.adaptive.tracked_scopes()
    }

    async fn attempt(
        &self,
        policy: &ProviderPolicy,
        call: &ProviderRequest,
        limit_key: &str,
        breaker_key: &str,
        attempt: u32,
        mut request: Request,
    ) -> Result<Attempt, ProviderError> {
        let permit = match self.breakers.try_acquire(breaker_key) {
            Ok(permit) => permit,
            Err(rejected) => {
                let code = Some("provider_unavailable".to_owned());
                self.observe(call, None, OutcomeClass::CircuitOpen, Duration::ZERO, code);
                return Err(rejected.into());
            }
        };
        let span = tracing::Span::current();
        // With trace export on, the header is the exported span's own context, so the
        // provider's spans join it; otherwise the stack makes one.
        let trace = TraceContext::of_span(&span).unwrap_or_else(|| {
            call.trace
                .map_or_else(TraceContext::new_root, |t| t.child())
        });
        span.record("trace_id", trace.trace_id_hex());
        span.record("span_id", trace.span_id_hex());
        if let Ok(value) = HeaderValue::from_str(&trace.to_string()) {
            request.headers_mut().insert(TRACEPARENT, value);
        }
        // Taken before the credential goes on: a capture never holds the plaintext.
        let pending = self.capture_request(policy, call, attempt, &request);
        if let Some(credential) = self.credentials.credential(&call.scope).await? {
            credential.apply(&mut request)?;
        }
        let started = Instant::now();
        let time_left = call.deadline.saturating_duration_since(started);
        let sent = tokio::time::timeout(time_left, self.client.execute(request)).await;
        let provider = call.scope.provider.as_str();
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                let failure = classify(&err);
                permit.failure();
                m::provider_request(provider, failure_label(failure), started.elapsed());
                let class = if err.code() == "upstream_timeout" {
                    OutcomeClass::Timeout
                } else {
                    OutcomeClass::Transport
                };
                let code = Some(err.code().to_owned());
                self.observe(call, None, class, started.elapsed(), code);
                self.finish_capture(policy, pending, None);
                return Ok(Attempt::Failed {
                    failure,
                    wait: None,
                    status: None,
                    source: Some(err),
                    response: None,
                });
            }
            Err(_elapsed) => {
                permit.failure();
                m::provider_request(provider, "timeout", started.elapsed());
                let code = Some("upstream_timeout".to_owned());
                self.observe(call, None, OutcomeClass::Timeout, started.elapsed(), code);
                self.finish_capture(policy, pending, None);
                return Ok(Attempt::Failed {
                    failure: CallFailure::MaybeSent,
                    wait: None,
                    status: None,
                    source: None,
                    response: None,
                });
            }
        };
        let status = response.status();
        span.record("status", status.as_u16());
        let headers = response.headers().clone();
        let body = read_body(response, policy.max_body).await;
        let signals = policy.signals.read(
            status.as_u16(),
            &headers,
            body.as_deref().ok(),
            SystemTime::now(),
            &self.retry_window,
        );
        self.adaptive.record(limit_key, &signals);
        m::provider_request(provider, status_class(status), started.elapsed());
        let latency = started.elapsed();
        let body = match body {
            Ok(body) => body,
            Err(err) => {
                permit.failure();
                let code = Some(err.code().to_owned());
                self.observe(call, Some(status), OutcomeClass::Transport, latency, code);
                self.finish_capture(policy, pending, Some((status, &headers, &[])));
                return Ok(Attempt::Failed {
                    failure: CallFailure::MaybeSent,
                    wait: None,
                    status: Some(status),
                    source: Some(err),
                    response: None,
                });
            }
        };
        // The breaker counts what says the provider is unwell; a rate signal says it is
        // healthy and busy, and a 4xx says the request was wrong.
        if status.is_server_error() {
            permit.failure();
        } else {
            permit.success();
        }
        let class = OutcomeClass::of_status(status.as_u16(), signals.limited);
        let code = (!class.is_success()).then(|| format!("http_{}", status.as_u16()));
        self.observe(call, Some(status), class, latency, code);
        self.finish_capture(policy, pending, Some((status, &headers, &body)));
        let response = ProviderResponse {
            status,
            headers,
            body,
            attempts: 0,
        };
        let failed = signals.limited || policy.retry.retry_statuses.contains(&status.as_u16());
        if !failed {
            return Ok(Attempt::Answered(response));
        }
        let failure = if signals.limited {
            CallFailure::RateLimited(status.as_u16())
        } else {
            CallFailure::Status(status.as_u16())
        };
        Ok(Attempt::Failed {
            failure,
            wait: signals.pause(),
            status: Some(status),
            source: None,
            response: Some(response),
        })
    }

    /// The redacted request half of a capture, when this provider's calls are captured.
    fn capture_request(
        &self,
        policy: &ProviderPolicy,
        call: &ProviderRequest,
        attempt: u32,
        request: &Request,
    ) -> Option<Capture> {
        if !policy.capture.enabled || self.capture.is_none() {
            return None;
        }
        let spec = &policy.capture;
        let body = request
            .body()
            .and_then(|b| b.as_bytes())
            .unwrap_or_default();
        Some(Capture {
            tenant: call.scope.tenant.clone(),
            provider: call.scope.provider.clone(),
            connection: call.scope.connection.clone(),
            route: call.route.clone(),
            attempt,
            at: capture::timestamp(SystemTime::now()),
            request: CapturedMessage {
                method: request.method().to_string(),
                url: spec.url(request.url()),
                headers: spec.headers(request.headers()),
                body: spec.body(content_type(request.headers()), body),
            },
            response: None,
        })
    }

    fn finish_capture(
        &self,
        policy: &ProviderPolicy,
        pending: Option<Capture>,
        response: Option<(StatusCode, &HeaderMap, &[u8])>,
    ) {
        let (Some(mut capture), Some(sink)) = (pending, &self.capture) else {
            return;
        };
        let spec = &policy.capture;
        capture.response = response.map(|(status, headers, body)| CapturedResponse {
            status: status.as_u16(),
            headers: spec.headers(headers),
            body: spec.body(content_type(headers), body),
        });
        sink.capture(capture);
    }
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

fn classify(err: &OutboundError) -> CallFailure {
    match err {
        // A denied destination is never sent; retrying it is pointless but harmless, and the
        // retry policy stops on the attempt count. Connect errors prove nothing left.
        OutboundError::Denied(_) => CallFailure::NotSent,
        OutboundError::Request(e) if e.is_connect() => CallFailure::NotSent,
        _ => CallFailure::MaybeSent,
    }
}

fn failure_label(failure: CallFailure) -> &'static str {
    match failure {
        CallFailure::NotSent => "connect_error",
        CallFailure::MaybeSent | CallFailure::Status(_) | CallFailure::RateLimited(_) => {
            "transport_error"
        }
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        429 => "429",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Reads the body up to `max` bytes; larger is an error rather than a silent truncation.
async fn read_body(mut response: reqwest::Response, max: usize) -> Result<Bytes, OutboundError> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(OutboundError::from)? {
        if body.len() + chunk.len() > max {
            return Err(OutboundError::BodyTooLarge { limit: max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
