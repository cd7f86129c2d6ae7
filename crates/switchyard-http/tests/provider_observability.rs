//! What the provider stack shows about its calls: `traceparent` at the provider, the cap on
//! calls in flight, redacted captures, observer records, and the canary: a credential the
//! stack injects never reaches logs, span fields, metrics, captures or observers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use secrecy::SecretString;
use serde_json::json;
use switchyard_http::{
    AdaptiveConfig, AdaptiveLimits, AttemptRecord, BreakerConfig, BreakerRegistry, CallObserver,
    CallScope, Capture, CaptureSink, CaptureSpec, CapturedBody, Credential, CredentialError,
    CredentialSource, GuardedClient, OutcomeClass, ProviderClient, ProviderError, ProviderPolicy,
    ProviderRequest, Rate, RateLimiter, SsrfPolicy, SystemClock, TraceContext,
};

const CANARY: &str = "canary-7f3a9c-do-not-log";

#[derive(Default)]
struct Seen {
    traceparents: Mutex<Vec<String>>,
    authorization: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

async fn trace(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> &'static str {
    let value = headers.get("traceparent").unwrap().to_str().unwrap();
    seen.traceparents.lock().unwrap().push(value.to_owned());
    "ok"
}

async fn slow(State(seen): State<Arc<Seen>>) -> &'static str {
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    "ok"
}

/// Echoes nothing secret back, but answers with PII the capture must hide.
async fn users(State(seen): State<Arc<Seen>>, headers: HeaderMap) -> axum::Json<serde_json::Value> {
    if let Some(auth) = headers.get("authorization") {
        seen.authorization
            .lock()
            .unwrap()
            .push(auth.to_str().unwrap().to_owned());
    }
    axum::Json(json!({
        "id": "00u1",
        "profile": {"email": "ada@example.com", "login": "ada"},
        "session_token": "tok-123",
    }))
}

async fn server() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/trace", get(trace))
        .route("/slow", get(slow))
        .route("/users", post(users))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

struct Bearer;

impl CredentialSource for Bearer {
    async fn credential(&self, _: &CallScope) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(Credential::Bearer(SecretString::from(CANARY))))
    }
}

#[derive(Default)]
struct Recorded {
    captures: Mutex<Vec<Capture>>,
    attempts: Mutex<Vec<AttemptRecord>>,
}

impl CaptureSink for Recorded {
    fn capture(&self, capture: Capture) {
        self.captures.lock().unwrap().push(capture);
    }
}

impl CallObserver for Recorded {
    fn attempt(&self, record: &AttemptRecord) {
        self.attempts.lock().unwrap().push(record.clone());
    }
}

fn client(recorded: &Arc<Recorded>) -> ProviderClient<switchyard_http::InMemoryBackend, Bearer> {
    let policy = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
    let client = GuardedClient::builder(policy)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let limiter = RateLimiter::in_memory(Rate::per_second(NonZeroU32::new(1000).unwrap()));
    let adaptive = AdaptiveLimits::new(AdaptiveConfig::default(), Arc::new(SystemClock));
    let breakers = BreakerRegistry::new(BreakerConfig::default(), Arc::new(SystemClock));
    ProviderClient::new(
        client,
        Arc::new(limiter),
        Arc::new(adaptive),
        Arc::new(breakers),
        Bearer,
    )
    .with_capture_sink(Arc::clone(recorded) as Arc<dyn CaptureSink>)
    .with_observer(Arc::clone(recorded) as Arc<dyn CallObserver>)
}

fn scope() -> CallScope {
    CallScope {
        tenant: "ten_a".to_owned(),
        provider: "okta".to_owned(),
        connection: Some("con_1".to_owned()),
    }
}

fn call(method: reqwest::Method, addr: SocketAddr, path: &str) -> ProviderRequest {
    let url = format!("http://{addr}{path}").parse().unwrap();
    // The route is the template: no query, no identifiers.
    let route = path.split('?').next().unwrap_or(path).to_owned();
    ProviderRequest::new(scope(), reqwest::Request::new(method, url), route)
}

#[tokio::test]
async fn each_attempt_carries_a_traceparent_in_the_caller_s_trace() {
    let (addr, seen) = server().await;
    let client = client(&Arc::new(Recorded::default()));
    let parent =
        TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    let policy = ProviderPolicy::default();
    client
        .call(
            &policy,
            call(reqwest::Method::GET, addr, "/trace").with_trace(parent),
        )
        .await
        .unwrap();
    // Without a parent, a new trace.
    client
        .call(&policy, call(reqwest::Method::GET, addr, "/trace"))
        .await
        .unwrap();
    let sent = seen.traceparents.lock().unwrap().clone();
    let child = TraceContext::parse(&sent[0]).unwrap();
    assert_eq!(child.trace_id, parent.trace_id);
    assert_ne!(child.span_id, parent.span_id);
    let root = TraceContext::parse(&sent[1]).unwrap();
    assert_ne!(root.trace_id, parent.trace_id);
}

#[tokio::test]
async fn calls_in_flight_per_scope_never_exceed_the_cap() {
    let (addr, seen) = server().await;
    let client = Arc::new(client(&Arc::new(Recorded::default())));
    let capped = ProviderPolicy {
        max_concurrency: NonZeroU32::new(3),
        ..ProviderPolicy::default()
    };
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let (client, capped) = (Arc::clone(&client), capped.clone());
            tokio::spawn(async move {
                client
                    .call(&capped, call(reqwest::Method::GET, addr, "/slow"))
                    .await
                    .map(|r| r.status)
            })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), 200);
    }
    assert_eq!(seen.max_in_flight.load(Ordering::SeqCst), 3);

    // A slot that does not free up before the deadline is a typed error.
    let one = ProviderPolicy {
        max_concurrency: NonZeroU32::new(1),
        ..ProviderPolicy::default()
    };
    let first = {
        let (client, one) = (Arc::clone(&client), one.clone());
        tokio::spawn(async move {
            client
                .call(&one, call(reqwest::Method::GET, addr, "/slow"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let late = call(reqwest::Method::GET, addr, "/slow").deadline_in(Duration::from_millis(20));
    let err = client.call(&one, late).await.unwrap_err();
    assert!(matches!(err, ProviderError::Busy(_)), "{err:?}");
    assert_eq!(err.code(), "concurrency_limited");
    first.await.unwrap().unwrap();
}

fn capturing() -> ProviderPolicy {
    ProviderPolicy {
        capture: CaptureSpec {
            enabled: true,
            redact_fields: vec![
                "/profile/email".to_owned(),
                "session_token".to_owned(),
                "password".to_owned(),
            ],
            ..CaptureSpec::default()
        },
        ..ProviderPolicy::default()
    }
}

#[tokio::test]
async fn captures_hold_both_halves_with_authorization_and_pii_redacted() {
    let (addr, seen) = server().await;
    let recorded = Arc::new(Recorded::default());
    let client = client(&recorded);
    let mut request = call(reqwest::Method::POST, addr, "/users?password=pw-secret-q");
    *request.request.body_mut() = Some(r#"{"login":"ada","password":"hunter2"}"#.into());
    request
        .request
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    client.call(&capturing(), request).await.unwrap();
    // The provider did get the credential.
    assert_eq!(
        seen.authorization.lock().unwrap().as_slice(),
        [format!("Bearer {CANARY}")]
    );

    let captures = recorded.captures.lock().unwrap().clone();
    assert_eq!(captures.len(), 1);
    let capture = &captures[0];
    assert_eq!(capture.request.url, "/users?password=%5Bredacted%5D");
    assert!(
        capture
            .request
            .headers
            .iter()
            .all(|(n, _)| n != "authorization"),
        "added after capture"
    );
    assert_eq!(
        capture.request.body,
        CapturedBody::Json {
            value: json!({"login": "ada", "password": "[redacted]"})
        }
    );
    let response = capture.response.as_ref().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        CapturedBody::Json {
            value: json!({
                "id": "00u1",
                "profile": {"email": "[redacted]", "login": "ada"},
                "session_token": "[redacted]",
            })
        }
    );
    let stored = serde_json::to_string(&captures).unwrap();
    for hidden in [
        CANARY,
        "hunter2",
        "ada@example.com",
        "tok-123",
        "pw-secret-q",
    ] {
        assert!(!stored.contains(hidden), "{hidden} in {stored}");
    }
}

/// Everything the process writes as logs, into one buffer.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_injected_credential_never_reaches_logs_spans_metrics_captures_or_observers() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    // Under nextest each test has its own process; under cargo test this is the only test
    // in this binary that installs a recorder.
    metrics::set_global_recorder(recorder).unwrap();
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (addr, _) = server().await;
    let recorded = Arc::new(Recorded::default());
    let client = client(&recorded);
    let mut request = call(reqwest::Method::POST, addr, "/users");
    *request.request.body_mut() = Some("{}".into());
    client.call(&capturing(), request).await.unwrap();
    // A failing call too: errors are logged and observed.
    let nowhere = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let err = client
        .call(&capturing(), call(reqwest::Method::GET, nowhere, "/users"))
        .await
        .unwrap_err();
    tracing::error!(error = %err, debug = ?err, "call failed");

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("provider.call"),
        "the span was logged: {logs}"
    );
    assert!(logs.contains("trace_id"), "{logs}");
    assert!(!logs.contains(CANARY), "{logs}");
    let rendered = metrics.render();
    assert!(
        rendered.contains("switchyard_provider_requests_total"),
        "{rendered}"
    );
    assert!(!rendered.contains(CANARY));
    let captures = serde_json::to_string(&*recorded.captures.lock().unwrap()).unwrap();
    assert!(
        captures.contains("/users") && !captures.contains(CANARY),
        "{captures}"
    );
    let attempts = recorded.attempts.lock().unwrap().clone();
    assert!(attempts.iter().any(|a| a.class == OutcomeClass::Success));
    assert!(attempts.iter().any(|a| a.class == OutcomeClass::Transport));
    assert!(!format!("{attempts:?}").contains(CANARY));
}
