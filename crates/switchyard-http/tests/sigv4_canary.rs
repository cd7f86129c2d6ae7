//! The canary for the request signer: the secret access key and the session token of an
//! `AwsSigV4` credential never reach logs (at TRACE, the signing library's own included),
//! span fields, metrics, captures, observer records or errors. The session token is meant
//! for the provider, in `X-Amz-Security-Token`, and goes nowhere else. A binary of its own:
//! it installs the global log subscriber and metrics recorder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use secrecy::SecretString;
use switchyard_http::{
    AdaptiveConfig, AdaptiveLimits, AttemptRecord, AwsSigV4, BreakerConfig, BreakerRegistry,
    CallObserver, CallScope, Capture, CaptureSink, CaptureSpec, Credential, CredentialError,
    CredentialSource, GuardedClient, ProviderClient, ProviderPolicy, ProviderRequest, Rate,
    RateLimiter, SsrfPolicy, SystemClock,
};
use switchyard_test_support::LeakScanner;
use switchyard_test_support::leaks::CapturedLogs;

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<HeaderMap>>>);

async fn users(State(seen): State<Seen>, headers: HeaderMap) -> &'static str {
    seen.0.lock().unwrap().push(headers);
    r#"{"Users": []}"#
}

struct Keys {
    secret_access_key: String,
    session_token: String,
}

impl CredentialSource for Keys {
    async fn credential(&self, _: &CallScope) -> Result<Option<Credential>, CredentialError> {
        Ok(Some(Credential::AwsSigV4(AwsSigV4 {
            access_key_id: "AKIDCANARYEXAMPLE".to_owned(),
            secret_access_key: SecretString::from(self.secret_access_key.clone()),
            session_token: Some(SecretString::from(self.session_token.clone())),
            region: "us-east-1".to_owned(),
            service: "iam".to_owned(),
        })))
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

fn scope() -> CallScope {
    CallScope {
        tenant: "ten_a".to_owned(),
        provider: "aws-iam".to_owned(),
        connection: Some("con_1".to_owned()),
    }
}

fn form_post(addr: SocketAddr) -> ProviderRequest {
    let mut request = reqwest::Request::new(
        reqwest::Method::POST,
        format!("http://{addr}/").parse().unwrap(),
    );
    request.headers_mut().insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    *request.body_mut() = Some("Action=ListUsers&Version=2010-05-08".into());
    ProviderRequest::new(scope(), request, "/")
}

#[tokio::test]
async fn the_signing_keys_never_reach_logs_captures_metrics_observers_or_errors() {
    let logs = CapturedLogs::install_global();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    let mut scanner = LeakScanner::new();
    let keys = Keys {
        secret_access_key: scanner.canary("secret-access-key"),
        session_token: scanner.canary("session-token"),
    };
    let token = keys.session_token.clone();

    let seen = Seen::default();
    let app = Router::new()
        .route("/", post(users))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let guard = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
    let recorded = Arc::new(Recorded::default());
    let client = ProviderClient::new(
        GuardedClient::builder(guard)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        Arc::new(RateLimiter::in_memory(Rate::per_second(
            NonZeroU32::new(1000).unwrap(),
        ))),
        Arc::new(AdaptiveLimits::new(
            AdaptiveConfig::default(),
            Arc::new(SystemClock),
        )),
        Arc::new(BreakerRegistry::new(
            BreakerConfig::default(),
            Arc::new(SystemClock),
        )),
        keys,
    )
    .with_capture_sink(Arc::clone(&recorded) as Arc<dyn CaptureSink>)
    .with_observer(Arc::clone(&recorded) as Arc<dyn CallObserver>);
    let policy = ProviderPolicy {
        capture: CaptureSpec {
            enabled: true,
            ..CaptureSpec::default()
        },
        ..ProviderPolicy::default()
    };

    let response = client.call(&policy, form_post(addr)).await.unwrap();
    assert_eq!(response.status.as_u16(), 200);
    // The provider got the signature and the token, where they belong.
    let received = seen.0.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["x-amz-security-token"], token.as_str());
    assert!(
        received[0]["authorization"]
            .to_str()
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDCANARYEXAMPLE/")
    );

    // A request the signer refuses (a header that is not text): the error and its log line.
    let mut unsignable = form_post(addr);
    unsignable.request.headers_mut().insert(
        "x-opaque",
        reqwest::header::HeaderValue::from_bytes(b"\xfe\xff").unwrap(),
    );
    let refused = client.call(&policy, unsignable).await.unwrap_err();
    assert_eq!(refused.code(), "credential_unavailable");
    // A transport failure after signing.
    let nowhere = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let failed = client.call(&policy, form_post(nowhere)).await.unwrap_err();
    for err in [&refused, &failed] {
        tracing::error!(error = %err, debug = ?err, "call failed");
        scanner.add("error", format!("{err} {err:?}"));
    }

    let logged = logs.bytes();
    assert!(
        String::from_utf8_lossy(&logged).contains("could not be signed"),
        "the refusal was logged"
    );
    scanner.add("logs", logged);
    scanner.add("metrics", metrics.render());
    scanner.add(
        "captures",
        serde_json::to_vec(&*recorded.captures.lock().unwrap()).unwrap(),
    );
    scanner.add(
        "observer",
        format!("{:?}", recorded.attempts.lock().unwrap()),
    );
    assert!(!recorded.captures.lock().unwrap().is_empty());
    scanner.assert_no_leaks();
}
