//! OpenTelemetry trace export end to end: the real `switchyard serve` with the standard OTLP
//! variables pointing at a collector stand-in in this test (OTLP/HTTP, protobuf, decoded with
//! the official generated types), a connection test against the provider stand-in, then
//! SIGTERM. The spans must arrive on shutdown, the provider call's span must be the one whose
//! context went out in `traceparent`, an incoming `traceparent` must be continued, and no
//! secret may be in anything exported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    routing::post,
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::{AnyValue, KeyValue, any_value::Value as AnyValueKind},
    trace::v1::{Span, span::SpanKind},
};
use prost::Message as _;
use serde_json::{Value, json};
use switchyard_test_support::{
    LeakScanner, ServerProcess, TestBackend, TestDatabase,
    standin::{StandIn, StandInOptions},
};

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");
const SERVICE_NAME: &str = "switchyard-otlp-test";
/// The trace of the API caller in the first connection test.
const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// What the collector stand-in received: each export request's raw body and its decoding.
#[derive(Default)]
struct Received {
    bodies: Vec<Vec<u8>>,
    exports: Vec<ExportTraceServiceRequest>,
}

/// An OTLP/HTTP collector on 127.0.0.1: `POST /v1/traces` with a protobuf body.
async fn start_collector() -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let app = Router::new()
        .route("/v1/traces", post(accept_traces))
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), received)
}

async fn accept_traces(
    State(received): State<Arc<Mutex<Received>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let protobuf = [(header::CONTENT_TYPE, "application/x-protobuf")];
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/x-protobuf")
    {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, protobuf, Vec::new());
    }
    let Ok(export) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return (StatusCode::BAD_REQUEST, protobuf, Vec::new());
    };
    let mut received = received.lock().unwrap();
    received.bodies.push(body.to_vec());
    received.exports.push(export);
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    (StatusCode::OK, protobuf, answer)
}

/// One exported span with its resource's `service.name`.
struct Exported {
    service: Option<String>,
    span: Span,
}

fn exported_spans(received: &Received) -> Vec<Exported> {
    let mut spans = Vec::new();
    for export in &received.exports {
        for resource_spans in &export.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|resource| string_attribute(&resource.attributes, "service.name"));
            for scope in &resource_spans.scope_spans {
                for span in &scope.spans {
                    spans.push(Exported {
                        service: service.clone(),
                        span: span.clone(),
                    });
                }
            }
        }
    }
    spans
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValueKind> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value: &AnyValue| value.value.as_ref())
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        AnyValueKind::StringValue(text) => Some(text.clone()),
        _ => None,
    }
}

/// A number, as an integer or (how the bridge exports unsigned fields) its decimal text.
fn number_attribute(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        AnyValueKind::IntValue(number) => Some(*number),
        AnyValueKind::StringValue(text) => text.parse().ok(),
        _ => None,
    }
}

/// The `traceparent` of each call the stand-in answered at `path`, in order.
fn traceparents_of(standin: &StandIn, path: &str) -> Vec<String> {
    standin
        .requests()
        .into_iter()
        .filter(|request| request.path == path)
        .map(|request| {
            request
                .headers
                .get("traceparent")
                .cloned()
                .expect("every provider call carries a traceparent")
        })
        .collect()
}

async fn run(backend: TestBackend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let (collector, received) = start_collector().await;
    let mut scanner = LeakScanner::new();
    let token = scanner.canary("connection token");
    let standin = StandIn::start(StandInOptions {
        token: Some(token.clone()),
        rate_limit: None,
        ..Default::default()
    })
    .await
    .unwrap();

    let data_dir = database.path("data");
    let manifests =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../switchyard-connectors/tests/manifests");
    let manifests = manifests.display().to_string();
    let env = [
        ("SWITCHYARD_OUTBOUND__ALLOW_HTTP", "true"),
        ("SWITCHYARD_OUTBOUND__ALLOW_CIDRS", "127.0.0.1/32"),
        ("SWITCHYARD_CONNECTORS__DIRECTORY", manifests.as_str()),
        // The standard variables, as an operator would set them.
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
        ("OTEL_SERVICE_NAME", SERVICE_NAME),
        // Batches are not due for ten minutes: what arrives after SIGTERM is the flush.
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
    ];
    let extra = ["--database-url", database.url()];
    // TRACE: every field any span or event has is exported or logged.
    let server = ServerProcess::start_with_env(Path::new(BINARY), &data_dir, &extra, "trace", &env);
    let admin_token = std::fs::read_to_string(data_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    scanner.watch("admin token", &admin_token);

    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url());
    let tenant: Value = http
        .post(url("/v1/tenants"))
        .bearer_auth(&admin_token)
        .json(&json!({"name": "Traced"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    let response = http
        .post(url(&format!("/v1/connections?tenant_id={tenant}")))
        .bearer_auth(&admin_token)
        .json(&json!({
            "provider": "standin-link",
            "name": "traced",
            "config": {"base_url": standin.url()},
            "credentials": {"token": token},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let connection: Value = response.json().await.unwrap();
    let connection = connection["id"].as_str().unwrap().to_owned();
    standin.clear_requests();

    // First with the caller's trace, then without one.
    let test_path = format!("/v1/connections/{connection}/test");
    for caller in [
        Some(format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01")),
        None,
    ] {
        let mut request = http
            .post(url(&format!("{test_path}?tenant_id={tenant}")))
            .bearer_auth(&admin_token)
            .json(&json!({}));
        if let Some(traceparent) = caller {
            request = request.header("traceparent", traceparent);
        }
        let result: Value = request.send().await.unwrap().json().await.unwrap();
        assert_eq!(result["success"], true, "{result}");
    }
    let sent = traceparents_of(&standin, "/me");
    assert_eq!(sent.len(), 2, "one check call per test: {sent:?}");

    // A full batch (512 spans) may go out early; the rest only on the shutdown flush, which
    // ends before the process exits.
    let before_shutdown = received.lock().unwrap().exports.len();
    let logs = server.terminate();
    assert!(
        received.lock().unwrap().exports.len() > before_shutdown,
        "the spans still batched were exported on SIGTERM"
    );
    let received = std::mem::take(&mut *received.lock().unwrap());
    let spans = exported_spans(&received);

    assert!(
        spans
            .iter()
            .all(|exported| exported.service.as_deref() == Some(SERVICE_NAME)),
        "service.name is set on every span's resource"
    );

    let provider_calls: Vec<&Span> = spans
        .iter()
        .map(|exported| &exported.span)
        .filter(|span| span.name == "provider.call")
        .collect();
    assert_eq!(
        provider_calls.len(),
        2,
        "one provider call per connection test"
    );
    // In the order the stand-in received them.
    let provider_calls: Vec<&Span> = sent
        .iter()
        .map(|traceparent| {
            *provider_calls
                .iter()
                .find(|call| traceparent.contains(&hex(&call.trace_id)))
                .expect("the traceparent's trace is a provider.call span's")
        })
        .collect();
    for (call, traceparent) in provider_calls.iter().zip(&sent) {
        assert_eq!(call.kind, SpanKind::Client as i32);
        let attributes = &call.attributes;
        assert_eq!(
            string_attribute(attributes, "provider").as_deref(),
            Some("standin-link")
        );
        assert_eq!(
            string_attribute(attributes, "route").as_deref(),
            Some("/me")
        );
        assert_eq!(
            string_attribute(attributes, "method").as_deref(),
            Some("GET")
        );
        assert_eq!(
            number_attribute(attributes, "status"),
            Some(200),
            "{attributes:?}"
        );
        // The header the provider got is this span's own context: same trace, and this span
        // is the parent of whatever the provider records.
        let trace_id = hex(&call.trace_id);
        let span_id = hex(&call.span_id);
        assert_eq!(traceparent, &format!("00-{trace_id}-{span_id}-01"));
        assert_eq!(
            string_attribute(attributes, "trace_id").as_deref(),
            Some(trace_id.as_str())
        );
    }

    // The first test continued the caller's trace; the second started its own.
    let first = provider_calls[0];
    let second = provider_calls[1];
    assert_eq!(hex(&first.trace_id), CALLER_TRACE_ID);
    assert_ne!(hex(&second.trace_id), CALLER_TRACE_ID);
    let caller_child = spans
        .iter()
        .map(|exported| &exported.span)
        .find(|span| hex(&span.parent_span_id) == CALLER_SPAN_ID)
        .expect("a span whose parent is the caller's");
    assert_eq!(caller_child.name, "request");
    assert_eq!(hex(&caller_child.trace_id), CALLER_TRACE_ID);

    // Each provider call sits under the HTTP server span of the route that made it.
    for call in [first, second] {
        let server_span = ancestors(&spans, call)
            .into_iter()
            .find(|span| span.kind == SpanKind::Server as i32)
            .expect("the provider call has an HTTP server span above it");
        assert_eq!(server_span.name, "http");
        assert_eq!(
            string_attribute(&server_span.attributes, "method").as_deref(),
            Some("POST")
        );
        assert_eq!(
            string_attribute(&server_span.attributes, "path").as_deref(),
            Some(test_path.as_str())
        );
    }

    // Canary: no secret in anything exported (names, attributes, events, resources), raw
    // bytes and decoded text alike, nor in the logs.
    assert!(!received.bodies.is_empty());
    for (index, body) in received.bodies.iter().enumerate() {
        scanner.add(format!("OTLP export {index} (protobuf)"), body.clone());
    }
    for (index, export) in received.exports.iter().enumerate() {
        scanner.add(
            format!("OTLP export {index} (decoded)"),
            format!("{export:?}"),
        );
    }
    scanner.add("server logs", logs.join("\n"));
    scanner.assert_no_leaks();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `span`'s ancestors among the exported spans, nearest first.
fn ancestors<'a>(spans: &'a [Exported], span: &'a Span) -> Vec<&'a Span> {
    let mut chain = Vec::new();
    let mut current = span;
    while !current.parent_span_id.is_empty() {
        let Some(parent) = spans
            .iter()
            .map(|exported| &exported.span)
            .find(|candidate| {
                candidate.trace_id == current.trace_id
                    && candidate.span_id == current.parent_span_id
            })
        else {
            break;
        };
        chain.push(parent);
        current = parent;
    }
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_on_sqlite() {
    run(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_on_postgres() {
    run(TestBackend::Postgres).await;
}
