//! Outbound webhooks through the API: endpoints, publishing, deliveries with their attempts,
//! the dead letter and its retry, secret reads and rotation, replay, enable/disable, and the
//! fan-out of inbound events. Signatures are checked with the reference Standard Webhooks
//! library (PyPI `standardwebhooks`), not with our code.

use std::{
    collections::{BTreeMap, HashMap},
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post};
use serde_json::{Value, json};
use switchyard_test_support::{TestApp, backend_tests, required_test_server};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Per path: how many requests still get a 500 before it answers 204.
    failures: Mutex<HashMap<String, usize>>,
}

/// A local subscriber: records every request; answers 204, or 500 while a path has failures
/// left.
struct Receiver {
    base_url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .route("/{*path}", post(receive))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, state }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn fail_next(&self, path: &str, times: usize) {
        self.state
            .failures
            .lock()
            .unwrap()
            .insert(path.to_owned(), times);
    }

    fn received(&self, path: &str) -> Vec<Received> {
        let all = self.state.received.lock().unwrap();
        all.iter().filter(|r| r.path == path).cloned().collect()
    }

    async fn wait_for(&self, path: &str, count: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.received(path);
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{path} got {} requests, expected {count}",
            self.received(path).len()
        );
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    let path = uri.path().to_owned();
    state.received.lock().unwrap().push(Received {
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let mut failures = state.failures.lock().unwrap();
    match failures.get_mut(&path) {
        Some(left) if *left > 0 => {
            *left -= 1;
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => axum::http::StatusCode::NO_CONTENT,
    }
}

/// Verifies a received request with the reference library and each secret; `Err` names the
/// first secret it failed with.
fn verify_with_reference(python: &str, request: &Received, secrets: &[&str]) -> Result<(), String> {
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
headers = json.loads(sys.argv[1])
body = sys.argv[2]
for secret in sys.argv[3:]:
    Webhook(secret).verify(body, headers)
"#;
    let headers = serde_json::to_string(&request.headers).unwrap();
    let output = Command::new(python)
        .args(["-c", script, &headers, &request.body])
        .args(secrets)
        .output()
        .expect("run python");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The server allowed to deliver to receivers on 127.0.0.1 over http, with two attempts per
/// delivery (at once, then after a second) before the dead letter.
struct DeliveringApp(TestApp);

impl switchyard_test_support::BackendFixture for DeliveringApp {
    async fn start(backend: switchyard_test_support::TestBackend) -> Option<Self> {
        TestApp::spawn_with(backend, |figment| {
            figment
                .merge(("outbound.allow_http", true))
                .merge(("outbound.allow_cidrs", vec!["127.0.0.1/32"]))
                .merge(("outbound.retry_schedule", vec!["0s", "1s"]))
                .merge(("outbound.retry_jitter", 0.0))
        })
        .await
        .map(Self)
    }
}

async fn wait_for_delivery(app: &TestApp, token: &str, id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let response = app.get(&format!("/v1/deliveries/{id}"), token).await;
        assert_eq!(response.status, 200, "{}", response.text());
        last = response.json();
        if last["status"] == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("delivery {id} never reached {status}: {last}");
}

fn ids(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

backend_tests! { DeliveringApp;
    async fn endpoints_events_and_deliveries_end_to_end(fixture) {
        let python = required_test_server("SWITCHYARD_TEST_PEERS_PYTHON");
        let app = fixture.0;
        let receiver = Receiver::start().await;
        let tenant = app.create_tenant("Acme").await;
        let (_, admin) = app.create_api_key(&tenant, "admin").await;
        let (_, write) = app.create_api_key(&tenant, "write").await;
        let (_, read) = app.create_api_key(&tenant, "read").await;
        let started = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);

        // Endpoints: a read key may not create one; a write key gets the secret once.
        app.post("/v1/endpoints", &read, &json!({"url": receiver.url("/ok")})).await
            .assert_problem(403, "insufficient_role");
        // Header values are the receiver's credentials: write-only, kept in the vault.
        let bearer = "Bearer canary-5e0b7d";
        let created = app.post("/v1/endpoints", &write, &json!({
            "url": receiver.url("/ok"), "event_types": ["invoice.*"], "description": "billing",
            "headers": {"x-team": "billing", "Authorization": bearer},
        })).await;
        assert_eq!(created.status, 201, "{}", created.text());
        assert!(!created.text().contains("canary"), "{}", created.text());
        let ok = created.json();
        assert_eq!(ok["header_names"], json!(["Authorization", "x-team"]), "{ok}");
        assert!(ok.get("headers").is_none(), "{ok}");
        let ok_id = ok["id"].as_str().unwrap().to_owned();
        let secret = ok["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"), "{ok}");
        assert_eq!(ok["ordering"], "none");
        assert_eq!(ok["enabled"], true);
        let flaky = app.post("/v1/endpoints", &write, &json!({
            "url": receiver.url("/flaky"), "event_types": ["invoice.paid"],
        })).await.json();
        let flaky_id = flaky["id"].as_str().unwrap().to_owned();
        let read_back = app.get(&format!("/v1/endpoints/{ok_id}"), &read).await;
        assert_eq!(read_back.status, 200);
        assert!(!read_back.text().contains(&secret), "the secret shows only on creation");
        assert!(!read_back.text().contains("canary"), "{}", read_back.text());
        assert_eq!(read_back.json()["header_names"], ok["header_names"]);
        assert_eq!(read_back.json()["secret_fingerprint"], ok["secret_fingerprint"]);
        let listed = app.get("/v1/endpoints", &read).await;
        assert!(!listed.text().contains("canary"), "{}", listed.text());
        let listed = listed.json();
        assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{listed}");

        // Publishing fans out to every matching endpoint, once per event id.
        receiver.fail_next("/flaky", 2);
        let published = app.post("/v1/events", &write, &json!({
            "type": "invoice.paid", "data": {"amount": 42}, "id": "evt_1",
        })).await;
        assert_eq!(published.status, 202, "{}", published.text());
        let published_text = published.text();
        let published = published.json();
        assert_eq!(published["webhook_id"], "evt_1");
        assert_eq!(published["created"], true);
        let deliveries = ids(&published["deliveries"]);
        assert_eq!(deliveries.len(), 2, "{published}");
        let again = app.post("/v1/events", &write, &json!({
            "type": "invoice.paid", "data": {"amount": 42}, "id": "evt_1",
        })).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.json()["created"], false);
        assert_eq!(again.json()["id"], published["id"]);
        let unmatched = app.post("/v1/events", &write, &json!({"type": "order.created", "data": {}})).await.json();
        assert!(unmatched["deliveries"].as_array().unwrap().is_empty(), "{unmatched}");

        let got = receiver.wait_for("/ok", 1).await;
        let request = &got[0];
        assert_eq!(request.headers["webhook-id"], "evt_1");
        assert_eq!(request.headers["x-team"], "billing");
        assert_eq!(request.headers["authorization"], bearer, "the receiver gets the value");
        assert_eq!(request.headers["content-type"], "application/json");
        assert!(published_text.contains(&format!("\"payload\":{}", request.body)),
            "the payload shown is the body sent: {published_text}");
        let body: Value = serde_json::from_str(&request.body).unwrap();
        assert_eq!(body["type"], "invoice.paid");
        assert_eq!(body["data"], json!({"amount": 42}));
        if let Some(python) = &python {
            verify_with_reference(python, request, &[&secret]).unwrap();
            let mut tampered = request.clone();
            tampered.body = tampered.body.replace("42", "43");
            assert!(verify_with_reference(python, &tampered, &[&secret]).is_err(), "the check can fail");
        }

        // The flaky endpoint fails both attempts: the dead letter, with both attempts logged.
        // The event's data: metadata only for a read key; the payload for write, audited.
        let event_path = format!("/v1/events/{}", published["id"].as_str().unwrap());
        let event = app.get(&event_path, &read).await.json();
        assert_eq!(event["deliveries"].as_array().unwrap().len(), 2, "{event}");
        assert_eq!((&event["type"], &event["webhook_id"]), (&json!("invoice.paid"), &json!("evt_1")), "{event}");
        assert!(event.get("payload").is_none(), "a read key sees no data: {event}");
        let full = app.get(&event_path, &write).await.json();
        assert_eq!(full["payload"]["data"], json!({"amount": 42}), "{full}");
        // The same deliveries; their status may move on between the two reads.
        let delivery_ids = |e: &Value| -> Vec<Value> {
            e["deliveries"].as_array().unwrap().iter().map(|d| d["id"].clone()).collect()
        };
        assert_eq!(delivery_ids(&full), delivery_ids(&event));
        let flaky_delivery = event["deliveries"].as_array().unwrap().iter()
            .find(|d| d["endpoint_id"] == flaky_id.as_str()).unwrap()["id"].as_str().unwrap().to_owned();
        let failed = wait_for_delivery(&app, &read, &flaky_delivery, "failed").await;
        let log = failed["attempt_log"].as_array().unwrap();
        assert_eq!(log.len(), 2, "{failed}");
        assert!(log.iter().all(|a| a["status_code"] == 500 && a["succeeded"] == false), "{failed}");
        assert_eq!(failed["attempts"], 2);
        // A manual retry sends it again with the same id; the receiver now answers 204.
        app.post(&format!("/v1/deliveries/{flaky_delivery}/retry"), &read, &json!({})).await
            .assert_problem(403, "insufficient_role");
        let retried = app.post(&format!("/v1/deliveries/{flaky_delivery}/retry"), &write, &json!({})).await;
        assert_eq!(retried.status, 202, "{}", retried.text());
        assert_eq!(retried.json()["status"], "pending");
        let succeeded = wait_for_delivery(&app, &read, &flaky_delivery, "succeeded").await;
        assert_eq!(succeeded["attempt_log"].as_array().unwrap().len(), 3, "{succeeded}");
        let flaky_got = receiver.wait_for("/flaky", 3).await;
        assert!(flaky_got.iter().all(|r| r.headers["webhook-id"] == "evt_1"));
        let page = app.get(&format!("/v1/endpoints/{flaky_id}/deliveries?status=succeeded"), &read).await.json();
        let listed: Vec<&str> = page["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(listed, [flaky_delivery.as_str()]);
        app.get(&format!("/v1/endpoints/{flaky_id}/deliveries?status=lost"), &read).await
            .assert_problem(400, "invalid_query");

        // The secret: admin only, audited.
        app.get(&format!("/v1/endpoints/{ok_id}/secret"), &write).await.assert_problem(403, "insufficient_role");
        let read_secret = app.get(&format!("/v1/endpoints/{ok_id}/secret"), &admin).await.json();
        assert_eq!(read_secret["secret"], secret.as_str());
        assert!(read_secret["previous_secret"].is_null());
        // The audit writer batches: wait for the entries to land.
        let mut audit = String::new();
        for _ in 0..100 {
            audit = app.get("/v1/audit-events", &admin).await.text();
            if audit.contains("endpoint.secret_read") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for action in ["endpoint.create", "endpoint.secret_read", "delivery.retry", "event.payload_read"] {
            assert!(audit.contains(action), "{action} audited: {audit}");
        }

        // Rotation with a grace period: both signatures, each verifying on its own.
        let rotated = app.post(&format!("/v1/endpoints/{ok_id}/secret/rotate"), &admin, &json!({"grace_period_seconds": 3600})).await;
        assert_eq!(rotated.status, 200, "{}", rotated.text());
        assert!(rotated.json()["rotation_expires_at"].is_string());
        assert_ne!(rotated.json()["secret_fingerprint"], ok["secret_fingerprint"]);
        let secrets = app.get(&format!("/v1/endpoints/{ok_id}/secret"), &admin).await.json();
        let new_secret = secrets["secret"].as_str().unwrap().to_owned();
        assert_eq!(secrets["previous_secret"], secret.as_str());
        let second = app.post("/v1/events", &write, &json!({"type": "invoice.sent", "data": {}, "id": "evt_2"})).await.json();
        let second_delivery = ids(&second["deliveries"]).pop().unwrap();
        // Replay (below) takes finished deliveries: wait for the outcome, not just the request.
        wait_for_delivery(&app, &read, &second_delivery, "succeeded").await;
        let got = receiver.wait_for("/ok", 2).await;
        let during = got.iter().find(|r| r.headers["webhook-id"] == "evt_2").unwrap();
        assert_eq!(during.headers["webhook-signature"].split(' ').count(), 2, "{:?}", during.headers);
        if let Some(python) = &python {
            verify_with_reference(python, during, &[&secret, &new_secret]).unwrap();
        }

        // Replay: the endpoint's finished deliveries again, same ids, signed with the new secret.
        let replay = app.post(&format!("/v1/endpoints/{ok_id}/replay"), &write, &json!({
            "since": started.format(&time::format_description::well_known::Rfc3339).unwrap(),
            "status": ["succeeded"],
        })).await;
        assert_eq!(replay.status, 202, "{}", replay.text());
        assert_eq!(replay.json()["replayed"], 2);
        let got = receiver.wait_for("/ok", 4).await;
        let mut replayed: Vec<&str> = got[2..].iter().map(|r| r.headers["webhook-id"].as_str()).collect();
        replayed.sort_unstable();
        assert_eq!(replayed, ["evt_1", "evt_2"]);
        if let Some(python) = &python {
            for request in &got[2..] {
                verify_with_reference(python, request, &[&new_secret]).unwrap();
            }
        }
        app.post(&format!("/v1/endpoints/{ok_id}/replay"), &write, &json!({"since": "yesterday"})).await
            .assert_problem(400, "invalid_body");

        // Disabled endpoints get nothing new; deleting one removes it.
        let patched = app.send(reqwest::Method::PATCH, &format!("/v1/endpoints/{ok_id}"), Some(&write),
            Some(&json!({"enabled": false, "description": "paused", "headers": {"authorization": "Bearer canary-2"}}))).await;
        assert_eq!(patched.status, 200, "{}", patched.text());
        assert!(!patched.text().contains("canary"), "{}", patched.text());
        assert_eq!(patched.json()["header_names"], json!(["authorization"]), "PATCH replaces the set");
        assert_eq!(patched.json()["enabled"], false);
        assert_eq!(patched.json()["description"], "paused");
        let quiet = app.post("/v1/events", &write, &json!({"type": "invoice.sent", "data": {}})).await.json();
        assert!(quiet["deliveries"].as_array().unwrap().is_empty(), "{quiet}");
        let enabled = app.send(reqwest::Method::PATCH, &format!("/v1/endpoints/{ok_id}"), Some(&write),
            Some(&json!({"enabled": true}))).await.json();
        assert_eq!(enabled["enabled"], true);
        assert_eq!(enabled["header_names"], json!(["authorization"]), "absent: unchanged");
        let cleared = app.send(reqwest::Method::PATCH, &format!("/v1/endpoints/{ok_id}"), Some(&write),
            Some(&json!({"headers": null}))).await.json();
        assert_eq!(cleared["header_names"], json!([]), "null clears: {cleared}");
        assert_eq!(app.delete(&format!("/v1/endpoints/{flaky_id}"), &write).await.status, 204);
        app.get(&format!("/v1/endpoints/{flaky_id}"), &read).await.assert_problem(404, "not_found");
    }

    async fn inbound_events_fan_out_to_subscribed_endpoints(fixture) {
        let app = fixture.0;
        let receiver = Receiver::start().await;
        let tenant = app.create_tenant("Acme").await;
        let (_, write) = app.create_api_key(&tenant, "write").await;
        let endpoint = app.post("/v1/endpoints", &write, &json!({"url": receiver.url("/all")})).await;
        assert_eq!(endpoint.status, 201, "{}", endpoint.text());
        let source = app.post("/v1/sources", &write, &json!({"name": "gh", "scheme": "none", "allow_unverified": true})).await.json();
        let ingested = reqwest::Client::new()
            .post(source["ingest_url"].as_str().unwrap())
            .header("content-type", "application/json")
            .body(r#"{"action":"opened","number":7}"#)
            .send().await.unwrap();
        assert_eq!(ingested.status(), 200);
        let inbound_id = ingested.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        let got = receiver.wait_for("/all", 1).await;
        assert_eq!(got[0].headers["webhook-id"], inbound_id, "the inbound event id is the webhook id");
        let body: Value = serde_json::from_str(&got[0].body).unwrap();
        let cloud_event = &body["data"];
        assert_eq!(cloud_event["specversion"], "1.0", "{body}");
        assert_eq!(body["type"], cloud_event["type"]);
        assert_eq!(cloud_event["data"]["number"], 7, "{body}");
        // Replaying the inbound event processes it again but sends nothing twice.
        let replay = app.post(&format!("/v1/inbound-events/{inbound_id}/replay"), &write, &json!({})).await;
        assert_eq!(replay.status, 202);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(receiver.received("/all").len(), 1);
    }
}

backend_tests! { TestApp;
    async fn bad_endpoint_and_event_requests_are_rejected(app) {
        let tenant = app.create_tenant("Acme").await;
        let (_, write) = app.create_api_key(&tenant, "write").await;
        // Without `outbound.allow_http`, only https.
        let plain = app.post("/v1/endpoints", &write, &json!({"url": "http://hooks.example.com/x"})).await;
        let problem = plain.assert_problem(400, "validation_failed");
        assert!(problem["detail"].as_str().unwrap().contains("https"), "{problem}");
        for body in [
            json!({"url": "https://hooks.example.com/x", "ordering": "sideways"}),
            json!({"url": "https://hooks.example.com/x", "event_types": ["bad pattern"]}),
            json!({"url": "https://hooks.example.com/x", "retry_schedule_seconds": []}),
            json!({"url": "https://hooks.example.com/x", "secret": "not-a-whsec"}),
            json!({"url": "not a url"}),
        ] {
            app.post("/v1/endpoints", &write, &body).await.assert_problem(400, "validation_failed");
        }
        app.post("/v1/endpoints", &write, &json!({"url": "https://x.example", "colour": "red"})).await
            .assert_problem(400, "invalid_body");
        app.post("/v1/events", &write, &json!({"type": "has space", "data": {}})).await
            .assert_problem(400, "validation_failed");
        app.post("/v1/events", &write, &json!({"data": {}})).await.assert_problem(400, "invalid_body");
        app.get("/v1/events/msg_01JD2S5W8X3Q4R5T6V7W8X9Y0Z", &write).await.assert_problem(404, "not_found");
        app.get("/v1/deliveries/not-an-id", &write).await.assert_problem(400, "invalid_id");
        // A supplied secret is used as given.
        let created = app.post("/v1/endpoints", &write, &json!({
            "url": "https://hooks.example.com/x", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "v1a": true, "enabled": false, "ordering": "key", "retry_schedule_seconds": [0, 60],
        })).await;
        assert_eq!(created.status, 201, "{}", created.text());
        let created = created.json();
        assert_eq!(created["secret"], "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert!(created["public_key"].as_str().unwrap().starts_with("whpk_"), "{created}");
        assert_eq!(created["enabled"], false);
        assert_eq!(created["ordering"], "key");
        assert_eq!(created["retry_schedule_seconds"], json!([0, 60]));
    }
}
