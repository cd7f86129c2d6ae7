//! The provider call stack against a real local server that misbehaves like providers do:
//! 429 with Retry-After, remaining/reset headers, rate-limit codes in a 400 body, 503
//! bursts, slow answers and dropped connections. Assertions are made where the calls arrive.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use secrecy::SecretString;
use switchyard_http::{
    AdaptiveConfig, AdaptiveLimits, BodySignal, BreakerConfig, BreakerRegistry, CallScope,
    Credential, CredentialError, CredentialSource, ExponentialBackoff, GuardedClient, ManualClock,
    NoCredentials, ProviderClient, ProviderError, ProviderPolicy, ProviderRequest, Rate,
    RateLimiter, ResetFormat, RetryPolicy, SignalSpec, SsrfPolicy, SystemClock, WindowSpec,
};
use tokio::time::Instant;

/// One call as the server saw it: when, and what credential came with it.
type Arrival = (Instant, Option<String>);

/// Each route's arrivals.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<HashMap<String, Vec<Arrival>>>>);

impl Arrivals {
    fn record(&self, route: &str, headers: &HeaderMap, query: Option<String>) -> usize {
        let credential = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or(query);
        let mut all = self.0.lock().unwrap();
        let list = all.entry(route.to_owned()).or_default();
        list.push((Instant::now(), credential));
        list.len()
    }

    fn count(&self, route: &str) -> usize {
        self.0.lock().unwrap().get(route).map_or(0, Vec::len)
    }

    fn times(&self, route: &str) -> Vec<Instant> {
        let all = self.0.lock().unwrap();
        all.get(route)
            .map(|l| l.iter().map(|(t, _)| *t).collect())
            .unwrap_or_default()
    }

    fn credentials(&self, route: &str) -> Vec<Option<String>> {
        let all = self.0.lock().unwrap();
        all.get(route)
            .map(|l| l.iter().map(|(_, c)| c.clone()).collect())
            .unwrap_or_default()
    }
}

/// The n-th (1-based) arrival on each route decides the answer.
async fn provider(
    State(arrivals): State<Arrivals>,
    Path(route): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let n = arrivals.record(&route, &headers, query);
    match route.as_str() {
        "ok" => "ok".into_response(),
        // 429 with Retry-After: 1 on the first call, then fine.
        "retry-after" if n == 1 => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response()
        }
        "retry-after" => "ok".into_response(),
        // Two 503s, then fine.
        "burst-503" if n <= 2 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "burst-503" => "ok".into_response(),
        "always-503" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "always-500" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        // A 400 that is really a rate limit, then fine.
        "body-limited" if n == 1 => (
            StatusCode::BAD_REQUEST,
            r#"{"ok":false,"error":"ratelimited"}"#,
        )
            .into_response(),
        "body-limited" => "ok".into_response(),
        "not-found" => StatusCode::NOT_FOUND.into_response(),
        // Two calls left in a window that refills in one second.
        "window" => (
            [("x-ratelimit-remaining", "2"), ("x-ratelimit-reset", "1")],
            "ok",
        )
            .into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late".into_response()
        }
        _ => StatusCode::IM_A_TEAPOT.into_response(),
    }
}

async fn server() -> (SocketAddr, Arrivals) {
    let arrivals = Arrivals::default();
    let app = Router::new()
        .route("/{route}", any(provider))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, arrivals)
}

/// A server that accepts connections and drops them at once: a connection reset.
async fn resetting_server() -> (SocketAddr, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(Mutex::new(0usize));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            *count.lock().unwrap() += 1;
            // Read the request first so the client has sent it, then close.
            let mut buf = [0u8; 1024];
            let _ = socket.readable().await;
            let _ = socket.try_read(&mut buf);
            drop(socket);
        }
    });
    (addr, accepted)
}

struct Stack<C: CredentialSource> {
    client: ProviderClient<switchyard_http::InMemoryBackend, C>,
    limiter: Arc<RateLimiter>,
    breaker_clock: ManualClock,
}

fn stack_with<C: CredentialSource>(credentials: C, breaker: BreakerConfig) -> Stack<C> {
    let policy = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
    let client = GuardedClient::builder(policy)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let breaker_clock = ManualClock::new();
    let breakers = BreakerRegistry::new(breaker, Arc::new(breaker_clock.clone()));
    let limiter = Arc::new(RateLimiter::in_memory(Rate::per_second(
        NonZeroU32::new(1000).unwrap(),
    )));
    let adaptive = AdaptiveLimits::new(AdaptiveConfig::default(), Arc::new(SystemClock));
    Stack {
        client: ProviderClient::new(
            client,
            Arc::clone(&limiter),
            Arc::new(adaptive),
            Arc::new(breakers),
            credentials,
        ),
        limiter,
        breaker_clock,
    }
}

fn stack() -> Stack<NoCredentials> {
    stack_with(NoCredentials, BreakerConfig::default())
}

fn scope() -> CallScope {
    CallScope {
        tenant: "ten_a".to_owned(),
        provider: "github".to_owned(),
        connection: Some("con_1".to_owned()),
    }
}

/// Quick retries so tests do not wait on backoff.
fn policy() -> ProviderPolicy {
    ProviderPolicy {
        retry: RetryPolicy {
            backoff: ExponentialBackoff::new(Duration::from_millis(10), Duration::from_millis(50)),
            ..RetryPolicy::default()
        },
        ..ProviderPolicy::default()
    }
}

fn request(method: reqwest::Method, addr: SocketAddr, route: &str) -> ProviderRequest {
    let url = format!("http://{addr}/{route}").parse().unwrap();
    ProviderRequest::new(scope(), reqwest::Request::new(method, url), "/{route}")
        .deadline_in(Duration::from_secs(10))
}

fn get(addr: SocketAddr, route: &str) -> ProviderRequest {
    request(reqwest::Method::GET, addr, route)
}

fn post(addr: SocketAddr, route: &str) -> ProviderRequest {
    request(reqwest::Method::POST, addr, route)
}

#[tokio::test]
async fn retry_after_is_honoured_before_the_retry() {
    let (addr, arrivals) = server().await;
    let stack = stack();
    let response = stack
        .client
        .call(&policy(), get(addr, "retry-after"))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.attempts, 2);
    let times = arrivals.times("retry-after");
    let gap = times[1] - times[0];
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
}

#[tokio::test]
async fn a_retry_after_pause_also_holds_the_scope_s_next_call() {
    let (addr, arrivals) = server().await;
    let stack = stack();
    // No retries: the 429 is the answer, but its Retry-After still pauses the scope.
    let once = ProviderPolicy {
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..policy()
    };
    let first = stack.client.call(&once, get(addr, "retry-after")).await;
    assert!(
        matches!(first, Err(ProviderError::Failed { .. })),
        "{first:?}"
    );
    stack.client.call(&once, get(addr, "ok")).await.unwrap();
    let gap = arrivals.times("ok")[0] - arrivals.times("retry-after")[0];
    assert!(gap >= Duration::from_millis(950), "next call after {gap:?}");
}

#[tokio::test]
async fn a_503_burst_is_retried_for_a_get() {
    let (addr, arrivals) = server().await;
    let response = stack()
        .client
        .call(&policy(), get(addr, "burst-503"))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.attempts, 3);
    assert_eq!(arrivals.count("burst-503"), 3);
}

#[tokio::test]
async fn a_post_without_an_idempotency_key_is_sent_once() {
    let (addr, arrivals) = server().await;
    let err = stack()
        .client
        .call(&policy(), post(addr, "always-503"))
        .await
        .unwrap_err();
    assert_eq!(arrivals.count("always-503"), 1);
    let ProviderError::Failed {
        attempts,
        last_status,
        ..
    } = err
    else {
        panic!("{err:?}");
    };
    assert_eq!((attempts, last_status.map(|s| s.as_u16())), (1, Some(503)));
}

#[tokio::test]
async fn a_post_with_an_idempotency_key_is_retried_up_to_the_limit() {
    let (addr, arrivals) = server().await;
    let call = post(addr, "always-503").with_idempotency_key();
    let err = stack().client.call(&policy(), call).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Failed { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(arrivals.count("always-503"), 4);
}

#[tokio::test]
async fn a_connection_reset_is_retried_for_a_get_but_not_for_a_post() {
    let (addr, accepted) = resetting_server().await;
    let stack = stack();
    let err = stack
        .client
        .call(&policy(), get(addr, "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Failed { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(*accepted.lock().unwrap(), 4);

    let err = stack
        .client
        .call(&policy(), post(addr, "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Failed { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(*accepted.lock().unwrap(), 5);
}

#[tokio::test]
async fn a_refused_connection_proves_nothing_was_sent_so_even_a_post_is_retried() {
    // Bind and drop: nothing listens on the port now.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let err = stack()
        .client
        .call(&policy(), post(addr, "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Failed { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "upstream_connect_failed");
}

#[tokio::test]
async fn a_client_error_is_the_provider_s_answer_and_not_retried() {
    let (addr, arrivals) = server().await;
    let response = stack()
        .client
        .call(&policy(), get(addr, "not-found"))
        .await
        .unwrap();
    assert_eq!((response.status.as_u16(), response.attempts), (404, 1));
    assert_eq!(arrivals.count("not-found"), 1);
}

#[tokio::test]
async fn a_rate_limit_code_in_a_400_body_is_retried_when_declared() {
    let (addr, arrivals) = server().await;
    let stack = stack();
    let undeclared = stack
        .client
        .call(&policy(), get(addr, "body-limited"))
        .await
        .unwrap();
    assert_eq!((undeclared.status.as_u16(), undeclared.attempts), (400, 1));

    let (addr, arrivals2) = server().await;
    let declared = ProviderPolicy {
        signals: SignalSpec {
            body: vec![BodySignal {
                statuses: vec![400],
                pointer: "/error".to_owned(),
                values: vec!["ratelimited".to_owned()],
            }],
            ..SignalSpec::default()
        },
        ..policy()
    };
    let response = stack
        .client
        .call(&declared, get(addr, "body-limited"))
        .await
        .unwrap();
    assert_eq!((response.status.as_u16(), response.attempts), (200, 2));
    assert_eq!(arrivals.count("body-limited"), 1);
    let times = arrivals2.times("body-limited");
    // No Retry-After: the adaptive default pause (1 s) applies before the retry.
    assert!(times[1] - times[0] >= Duration::from_millis(950));
}

#[tokio::test]
async fn remaining_and_reset_headers_space_the_calls_out() {
    let (addr, arrivals) = server().await;
    let stack = stack();
    let paced = ProviderPolicy {
        signals: SignalSpec {
            windows: vec![WindowSpec {
                remaining: "x-ratelimit-remaining".to_owned(),
                limit: None,
                reset: "x-ratelimit-reset".to_owned(),
                reset_format: ResetFormat::DeltaSeconds,
            }],
            ..SignalSpec::default()
        },
        ..policy()
    };
    for _ in 0..4 {
        stack
            .client
            .call(&paced, get(addr, "window"))
            .await
            .unwrap();
    }
    // Each answer says: 2 calls left for 1 s, so calls go 500 ms apart after the first.
    let times = arrivals.times("window");
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(450), "gap {gap:?}");
    }
}

#[tokio::test]
async fn concurrent_calls_never_exceed_the_proactive_budget() {
    let (addr, arrivals) = server().await;
    let stack = Arc::new(stack());
    let budget = ProviderPolicy {
        rate: Some(
            Rate::per_second(NonZeroU32::new(10).unwrap()).with_burst(NonZeroU32::new(2).unwrap()),
        ),
        ..policy()
    };
    let calls = (0..25).map(|_| {
        let stack = Arc::clone(&stack);
        let budget = budget.clone();
        tokio::spawn(async move {
            stack
                .client
                .call(&budget, get(addr, "ok"))
                .await
                .map(|r| r.status)
        })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap().unwrap(), 200);
    }
    // GCRA: any span of t seconds holds at most burst + rate · t arrivals. The slack is for
    // transit: a call admitted first may reach the server a little after one admitted later
    // (the limiter itself is checked exactly in limiter_conformance.rs).
    let mut times = arrivals.times("ok");
    times.sort();
    assert_eq!(times.len(), 25);
    for i in 0..times.len() {
        for j in i..times.len() {
            let span = (times[j] - times[i]).as_secs_f64() + 0.03;
            let arrived = (j - i + 1) as f64;
            assert!(
                arrived <= 2.0 + 10.0 * span,
                "{arrived} arrivals in {span:.3} s"
            );
        }
    }
}

#[tokio::test]
async fn a_slow_provider_is_cut_off_at_the_deadline() {
    let (addr, arrivals) = server().await;
    let started = Instant::now();
    let call = get(addr, "slow").deadline_in(Duration::from_millis(300));
    let err = stack().client.call(&policy(), call).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, ProviderError::Failed { .. }), "{err:?}");
    assert_eq!(arrivals.count("slow"), 1, "no retry past the deadline");
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_and_recovers_after_its_cool_down() {
    let (addr, arrivals) = server().await;
    let breaker = BreakerConfig {
        failure_rate: 0.5,
        window: Duration::from_secs(60),
        min_calls: 2,
        cool_down: Duration::from_secs(30),
        half_open_probes: 1,
    };
    let stack = stack_with(NoCredentials, breaker);
    let once = ProviderPolicy {
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..policy()
    };
    for _ in 0..2 {
        let err = stack
            .client
            .call(&once, get(addr, "always-500"))
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Failed { .. }), "{err:?}");
    }
    let err = stack.client.call(&once, get(addr, "ok")).await.unwrap_err();
    assert_eq!(err.code(), "provider_unavailable");
    assert_eq!(arrivals.count("ok"), 0, "an open breaker sends nothing");

    // Another connection of the same tenant has its own breaker.
    let mut other = get(addr, "ok");
    other.scope.connection = Some("con_2".to_owned());
    stack.client.call(&once, other).await.unwrap();

    stack.breaker_clock.advance(Duration::from_secs(31));
    let response = stack.client.call(&once, get(addr, "ok")).await.unwrap();
    assert_eq!(response.status, 200);
    stack.client.call(&once, get(addr, "ok")).await.unwrap();
    assert_eq!(arrivals.count("ok"), 3);
}

/// A credential source holding one canary secret, as the vault would.
struct CanarySource(Credential);

impl CredentialSource for CanarySource {
    async fn credential(&self, _: &CallScope) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(match &self.0 {
            Credential::Bearer(token) => Credential::Bearer(token.clone()),
            Credential::Query { name, value } => Credential::Query {
                name: name.clone(),
                value: value.clone(),
            },
            _ => unreachable!("the tests use bearer and query credentials"),
        }))
    }
}

const CANARY: &str = "canary-7f3a9c1e-provider-secret";

#[tokio::test]
async fn credentials_are_injected_on_every_attempt_and_never_appear_in_errors() {
    let (addr, arrivals) = server().await;
    let bearer = CanarySource(Credential::Bearer(SecretString::from(CANARY)));
    let stack = stack_with(bearer, BreakerConfig::default());
    stack
        .client
        .call(&policy(), get(addr, "burst-503"))
        .await
        .unwrap();
    let expected = Some(format!("Bearer {CANARY}"));
    assert_eq!(arrivals.credentials("burst-503"), vec![expected; 3]);

    let err = stack
        .client
        .call(&policy(), get(addr, "always-503"))
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?} {}", error_chain(&err));
    assert!(!shown.contains(CANARY), "{shown}");

    // A query-string credential: reqwest errors carry URLs, ours must not.
    let query = CanarySource(Credential::Query {
        name: "api_key".to_owned(),
        value: SecretString::from(CANARY),
    });
    let stack = stack_with(query, BreakerConfig::default());
    stack.client.call(&policy(), get(addr, "ok")).await.unwrap();
    assert_eq!(
        arrivals.credentials("ok"),
        vec![Some(format!("api_key={CANARY}"))]
    );
    let (reset_addr, _) = resetting_server().await;
    let err = stack
        .client
        .call(&policy(), get(reset_addr, "x"))
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?} {}", error_chain(&err));
    assert!(!shown.contains(CANARY), "{shown}");
    assert!(!format!("{:?}", Credential::Bearer(SecretString::from(CANARY))).contains(CANARY));
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut current = Some(err);
    while let Some(e) = current {
        out.push_str(&format!("{e} / {e:?} | "));
        current = e.source();
    }
    out
}

#[tokio::test]
async fn endpoint_classes_have_their_own_budgets_within_a_scope() {
    let (addr, arrivals) = server().await;
    let stack = stack();
    let one = Rate::per_second(NonZeroU32::new(1).unwrap());
    let classed = ProviderPolicy {
        rate: Some(Rate::per_second(NonZeroU32::new(100).unwrap())),
        endpoint_rates: [("logs".to_owned(), one)].into(),
        ..policy()
    };
    let logs = || get(addr, "ok").with_endpoint_class("logs");
    stack.client.call(&classed, logs()).await.unwrap();
    // The logs class is out of budget for a second; users and unclassed calls are not.
    let started = Instant::now();
    stack
        .client
        .call(&classed, get(addr, "ok").with_endpoint_class("users"))
        .await
        .unwrap();
    stack.client.call(&classed, get(addr, "ok")).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    stack.client.call(&classed, logs()).await.unwrap();
    let times = arrivals.times("ok");
    assert_eq!(times.len(), 4);
    assert!(
        times[3] - times[0] >= Duration::from_millis(950),
        "{:?}",
        times[3] - times[0]
    );
}

/// A policy whose `post` class allows one call a second per key.
fn keyed_policy() -> ProviderPolicy {
    ProviderPolicy {
        rate: Some(Rate::per_second(NonZeroU32::new(100).unwrap())),
        endpoint_rates: [("post".to_owned(), Rate::per_second(NonZeroU32::MIN))].into(),
        ..policy()
    }
}

#[tokio::test]
async fn a_keyed_class_limits_each_key_apart_at_the_class_rate() {
    let (addr, arrivals) = server().await;
    let stack = stack();
    let policy = keyed_policy();
    let to = |channel: &str| {
        post(addr, "ok")
            .with_endpoint_class("post")
            .with_endpoint_key(channel)
    };
    let (a1, b1, a2, b2) = tokio::join!(
        stack.client.call(&policy, to("A")),
        stack.client.call(&policy, to("B")),
        stack.client.call(&policy, to("A")),
        stack.client.call(&policy, to("B")),
    );
    for response in [a1, b1, a2, b2] {
        assert_eq!(response.unwrap().attempts, 1);
    }
    // Two keys at one a second each: two calls at once, then two a second later; never four
    // at once (one budget per class) nor spread over three seconds (one budget for both).
    let times = arrivals.times("ok");
    assert_eq!(times.len(), 4);
    let first = times[0];
    let at: Vec<Duration> = times.iter().map(|t| *t - first).collect();
    assert!(at[1] < Duration::from_millis(300), "{at:?}");
    assert!(at[2] >= Duration::from_millis(950), "{at:?}");
    assert!(at[3] < Duration::from_millis(1_500), "{at:?}");
    // The class without a key, and other classes, have budgets of their own.
    let started = Instant::now();
    stack
        .client
        .call(&policy, post(addr, "ok").with_endpoint_class("post"))
        .await
        .unwrap();
    stack.client.call(&policy, post(addr, "ok")).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
}

/// Forty calls, each to a key of its own, in a class whose buckets refill within 1 ms.
async fn calls_to_many_keys(stack: &Stack<NoCredentials>, addr: SocketAddr) {
    let policy = ProviderPolicy {
        endpoint_rates: [(
            "post".to_owned(),
            Rate::per_second(NonZeroU32::new(1000).unwrap()).with_burst(NonZeroU32::MIN),
        )]
        .into(),
        ..policy()
    };
    for n in 0..40 {
        let call = post(addr, "ok")
            .with_endpoint_class("post")
            .with_endpoint_key(format!("C{n}"));
        stack.client.call(&policy, call).await.unwrap();
    }
}

#[tokio::test]
async fn per_key_state_does_not_pile_up() {
    let (addr, _) = server().await;
    // Without a sweep every key keeps its bucket...
    let kept = stack();
    calls_to_many_keys(&kept, addr).await;
    assert_eq!(kept.limiter.backend().tracked_keys(), 40);
    // ...which a sweep forgets once refilled; answered calls leave no adaptive state at all.
    let base = stack();
    let swept = Stack {
        client: base.client.with_sweep_interval(Duration::ZERO),
        ..base
    };
    calls_to_many_keys(&swept, addr).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    swept.client.call(&policy(), get(addr, "ok")).await.unwrap();
    assert_eq!(swept.limiter.backend().tracked_keys(), 0);
    assert_eq!(swept.client.tracked_adaptive_scopes(), 0);
    assert_eq!(kept.client.tracked_adaptive_scopes(), 0);
}

#[tokio::test]
async fn a_long_endpoint_key_is_limited_under_a_bounded_key() {
    let (addr, arrivals) = server().await;
    let stack = stack();
    let policy = keyed_policy();
    let long = "x".repeat(10_000);
    let call = || {
        post(addr, "ok")
            .with_endpoint_class("post")
            .with_endpoint_key(long.as_str())
    };
    stack.client.call(&policy, call()).await.unwrap();
    stack.client.call(&policy, call()).await.unwrap();
    let times = arrivals.times("ok");
    assert!(times[1] - times[0] >= Duration::from_millis(950));
}

#[tokio::test]
async fn a_post_is_repeated_after_a_status_declared_unprocessed_only() {
    let (addr, arrivals) = server().await;
    let stack = stack();
    // Undeclared, a 429 on a POST is not repeated: it may have been acted on.
    let err = stack
        .client
        .call(&policy(), post(addr, "retry-after"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Failed { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(arrivals.count("retry-after"), 1);

    let (addr, arrivals) = server().await;
    let declared = ProviderPolicy {
        retry: RetryPolicy {
            unprocessed_statuses: vec![429],
            ..policy().retry
        },
        ..policy()
    };
    let response = stack
        .client
        .call(&declared, post(addr, "retry-after"))
        .await
        .unwrap();
    assert_eq!((response.status.as_u16(), response.attempts), (200, 2));
    let times = arrivals.times("retry-after");
    assert!(
        times[1] - times[0] >= Duration::from_millis(950),
        "repeated before Retry-After: {:?}",
        times[1] - times[0]
    );
    // A 5xx still may have been acted on: sent once.
    let err = stack
        .client
        .call(&declared, post(addr, "always-503"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Failed { attempts: 1, .. }),
        "{err:?}"
    );
    assert_eq!(arrivals.count("always-503"), 1);
}
