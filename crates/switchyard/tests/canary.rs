//! The canary leak test: the real binary at TRACE log level, every route exercised with
//! secrets in every place a client might put them, then logs, responses, the database and the
//! data directory are searched for those secrets, raw and encoded. Zero hits allowed.
//!
//! Later features extend `exercise_every_route` with their routes and secrets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use switchyard_test_support::{LeakScanner, ServerProcess, TestBackend, TestDatabase};

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");

/// Sends requests and keeps every response (status line, headers, body) as a haystack.
struct RecordingClient {
    http: reqwest::Client,
    base_url: String,
    responses: Vec<(String, Vec<u8>)>,
}

impl RecordingClient {
    async fn send(&mut self, label: &str, request: RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let mut recorded = format!("{status}\n{:?}\n", response.headers()).into_bytes();
        let body = response.bytes().await.unwrap();
        recorded.extend_from_slice(&body);
        self.responses.push((format!("response {label}"), recorded));
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
    }
}

async fn run_canary_test(backend: TestBackend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let data_dir = database.path("data");
    let extra = ["--database-url", database.url()];
    // Connections reach a stand-in provider on 127.0.0.1 with the test manifests.
    let manifests =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../switchyard-connectors/tests/manifests");
    let manifests = manifests.display().to_string();
    let env = [
        ("SWITCHYARD_OUTBOUND__ALLOW_HTTP", "true"),
        ("SWITCHYARD_OUTBOUND__ALLOW_CIDRS", "127.0.0.1/32"),
        ("SWITCHYARD_CONNECTORS__DIRECTORY", manifests.as_str()),
    ];
    let server = ServerProcess::start_with_env(Path::new(BINARY), &data_dir, &extra, "trace", &env);
    let admin_token = std::fs::read_to_string(data_dir.join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();

    let mut scanner = LeakScanner::new();
    scanner.watch("admin token", &admin_token);
    let mut client = RecordingClient {
        http: reqwest::Client::new(),
        base_url: server.url(),
        responses: Vec::new(),
    };
    exercise_connections(&mut client, &mut scanner, &admin_token).await;
    let shown_once = exercise_every_route(&mut client, &mut scanner, &admin_token).await;

    let logs = server.terminate();
    assert!(
        logs.len() > 50,
        "TRACE logging was on: {} lines",
        logs.len()
    );
    scanner.add("server logs", logs.join("\n"));
    for (place, bytes) in client.responses {
        // The responses meant to carry a secret: the one that created it, and an endpoint's
        // audited secret read.
        if shown_once
            .iter()
            .any(|label| place == format!("response {label}"))
        {
            continue;
        }
        scanner.add(place, bytes);
    }
    scanner.add_database(&database).await;
    // The whole temporary directory: the data directory and, on SQLite, the database files.
    // The key-encryption key must not leak either; its own file is the one place it lives.
    let key_file = std::fs::read_to_string(data_dir.join("master.key")).unwrap();
    scanner.watch("key-encryption key", key_file.trim());
    scanner.add_dir(database.dir(), |path| {
        path.file_name()
            .is_some_and(|name| name == "admin-token" || name == "master.key")
    });
    assert!(scanner.haystack_count() > 20);
    scanner.assert_no_leaks();
}

/// Uses every route, with secrets also sent where they do not belong (wrong scheme, query
/// string, bodies, ids). Returns the labels of responses that legitimately show a secret.
async fn exercise_every_route(
    client: &mut RecordingClient,
    scanner: &mut LeakScanner,
    admin_token: &str,
) -> Vec<String> {
    let mut created_keys = Vec::new();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/nowhere",
    ] {
        let request = client.request(Method::GET, path);
        client.send(path, request).await;
    }

    let request = client
        .request(Method::POST, "/v1/tenants")
        .bearer_auth(admin_token)
        .json(&json!({"name": "Acme"}));
    let (_, tenant) = client.send("create tenant", request).await;
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    let request = client
        .request(Method::GET, "/v1/tenants")
        .bearer_auth(admin_token);
    client.send("list tenants", request).await;

    for role in ["admin", "write", "read"] {
        let label = format!("create {role} key");
        let request = client
            .request(Method::POST, &format!("/v1/tenants/{tenant}/api-keys"))
            .bearer_auth(admin_token)
            .header("idempotency-key", format!("canary-{role}"))
            .json(&json!({"name": role, "role": role}));
        let (status, key) = client.send(&label, request).await;
        assert_eq!(status, 201);
        let secret = key["key"].as_str().unwrap().to_owned();
        scanner.watch(&format!("{role} API key"), &secret);
        created_keys.push((label, key["id"].as_str().unwrap().to_owned()));

        // The idempotent replay must not show the key again.
        let request = client
            .request(Method::POST, &format!("/v1/tenants/{tenant}/api-keys"))
            .bearer_auth(admin_token)
            .header("idempotency-key", format!("canary-{role}"))
            .json(&json!({"name": role, "role": role}));
        client.send(&format!("replay {role} key"), request).await;

        let request = client
            .request(Method::GET, &format!("/v1/tenants/{tenant}"))
            .bearer_auth(&secret);
        client.send(&format!("read with {role} key"), request).await;
        let request = client
            .request(Method::GET, &format!("/v1/tenants/{tenant}/api-keys"))
            .bearer_auth(&secret);
        client
            .send(&format!("list keys with {role} key"), request)
            .await;
    }

    // Secrets in places they do not belong: they must be rejected without being echoed or logged.
    let wrong_token = scanner.canary("unknown bearer token");
    let request = client
        .request(Method::GET, "/v1/tenants")
        .bearer_auth(&wrong_token);
    client.send("unknown token", request).await;
    let basic = scanner.canary("basic credential");
    let request = client
        .request(Method::GET, "/v1/tenants")
        .header("authorization", format!("Basic {basic}"));
    client.send("basic scheme", request).await;
    let query_secret = scanner.canary("query string secret");
    let request = client
        .request(Method::GET, &format!("/v1/tenants?token={query_secret}"))
        .bearer_auth(admin_token);
    client.send("secret in query", request).await;
    let body_secret = scanner.canary("unknown body field");
    let request = client
        .request(Method::POST, "/v1/tenants")
        .bearer_auth(admin_token)
        .json(&json!({"name": "x", "password": body_secret}));
    client.send("secret in unknown field", request).await;
    let idempotency_secret = scanner.canary("idempotency key");
    let request = client
        .request(Method::POST, "/v1/tenants")
        .bearer_auth(admin_token)
        .header("idempotency-key", &idempotency_secret)
        .header("content-type", "application/json")
        .body("{broken");
    client.send("broken json", request).await;

    for (label, key_id) in &created_keys {
        let request = client
            .request(
                Method::DELETE,
                &format!("/v1/tenants/{tenant}/api-keys/{key_id}"),
            )
            .bearer_auth(admin_token);
        client.send(&format!("revoke {label}"), request).await;
    }

    // The vault, audit and runs routes.
    for (method, path) in [
        (Method::GET, format!("/v1/tenants/{tenant}/vault/data-keys")),
        (
            Method::POST,
            format!("/v1/tenants/{tenant}/vault/rotate-dek"),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{tenant}/vault/rotate-dek"),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{tenant}/vault/complete-dek-rotation"),
        ),
        (Method::GET, format!("/v1/tenants/{tenant}/vault/data-keys")),
        (Method::GET, format!("/v1/audit-events?tenant_id={tenant}")),
        (Method::GET, "/v1/audit-events".to_owned()),
        (Method::GET, format!("/v1/runs?tenant_id={tenant}")),
        (Method::GET, "/v1/runs".to_owned()),
    ] {
        let request = client
            .request(method.clone(), &path)
            .bearer_auth(admin_token)
            .json(&json!({}));
        client.send(&format!("{method} {path}"), request).await;
    }

    // The inbound gateway: source secrets go to the vault only, rejected signatures are not
    // echoed or logged, and a stored payload is encrypted at rest.
    let source_secret = scanner.canary("webhook source secret");
    let request = client
        .request(Method::POST, &format!("/v1/sources?tenant_id={tenant}"))
        .bearer_auth(admin_token)
        .json(&json!({"name": "gh", "scheme": "github", "secret": source_secret}));
    let (status, source) = client.send("create source", request).await;
    assert_eq!(status, 201);
    let source_id = source["id"].as_str().unwrap().to_owned();
    let rotated_secret = scanner.canary("rotated webhook source secret");
    let request = client
        .request(
            Method::POST,
            &format!("/v1/sources/{source_id}/rotate-secret?tenant_id={tenant}"),
        )
        .bearer_auth(admin_token)
        .json(&json!({"secret": rotated_secret}));
    assert_eq!(client.send("rotate source secret", request).await.0, 200);
    let forged = scanner.canary("forged signature");
    let request = client
        .request(Method::POST, &format!("/ingest/{source_id}"))
        .header("x-hub-signature-256", format!("sha256={forged}"))
        .header("x-github-event", "push")
        .body("{}");
    assert_eq!(client.send("forged delivery", request).await.0, 401);
    let request = client
        .request(Method::POST, &format!("/v1/sources?tenant_id={tenant}"))
        .bearer_auth(admin_token)
        .json(&json!({"name": "open", "scheme": "none", "allow_unverified": true}));
    let (_, open) = client.send("create open source", request).await;
    let payload_secret = scanner.canary("webhook payload field");
    let request = client
        .request(
            Method::POST,
            &format!("/ingest/{}", open["id"].as_str().unwrap()),
        )
        .header("content-type", "application/json")
        .body(json!({"api_token": payload_secret}).to_string());
    let (status, event) = client.send("open delivery", request).await;
    assert_eq!(status, 200);
    for path in [
        format!("/v1/sources?tenant_id={tenant}"),
        format!("/v1/sources/{source_id}?tenant_id={tenant}"),
        format!("/v1/inbound-events?tenant_id={tenant}"),
        format!(
            "/v1/inbound-events/{}?tenant_id={tenant}",
            event["id"].as_str().unwrap()
        ),
    ] {
        let request = client.request(Method::GET, &path).bearer_auth(admin_token);
        client.send(&path, request).await;
    }

    // Outbound webhooks: a supplied signing secret, a rotated one and a generated one go to
    // the vault only; deliveries are attempted (the SSRF guard refuses 127.0.0.1 here) and
    // their attempts recorded, all at TRACE.
    let mut shown_once: Vec<String> = created_keys
        .iter()
        .map(|(label, _)| label.clone())
        .collect();
    let endpoint_secret = format!("whsec_{}", base64_of(&scanner.canary("endpoint secret")));
    scanner.watch("endpoint secret (whsec)", &endpoint_secret);
    // A receiver's credential in a custom header: the vault only, never shown again.
    let header_secret = scanner.canary("endpoint header value");
    let request = client
        .request(Method::POST, &format!("/v1/endpoints?tenant_id={tenant}"))
        .bearer_auth(admin_token)
        .json(&json!({
            "url": "https://127.0.0.1:9/hook", "secret": endpoint_secret, "v1a": true,
            "headers": {"Authorization": format!("Bearer {header_secret}")},
        }));
    let (status, endpoint) = client.send("create endpoint", request).await;
    assert_eq!(status, 201, "{endpoint}");
    // Its response is left out of the scan (it shows the signing secret): check it here.
    assert!(
        !endpoint.to_string().contains(&header_secret),
        "the header value is write-only: {endpoint}"
    );
    shown_once.push("create endpoint".to_owned());
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let request = client
        .request(Method::POST, &format!("/v1/events?tenant_id={tenant}"))
        .bearer_auth(admin_token)
        .json(&json!({"type": "invoice.paid", "data": {"n": 1}}));
    let (status, event) = client.send("publish event", request).await;
    assert_eq!(status, 202, "{event}");
    let delivery_id = event["deliveries"][0].as_str().unwrap().to_owned();
    let rotated_endpoint_secret = format!(
        "whsec_{}",
        base64_of(&scanner.canary("rotated endpoint secret"))
    );
    scanner.watch("rotated endpoint secret (whsec)", &rotated_endpoint_secret);
    let request = client
        .request(
            Method::POST,
            &format!("/v1/endpoints/{endpoint_id}/secret/rotate?tenant_id={tenant}"),
        )
        .bearer_auth(admin_token)
        .json(&json!({"secret": rotated_endpoint_secret}));
    assert_eq!(client.send("rotate endpoint secret", request).await.0, 200);
    let request = client
        .request(
            Method::GET,
            &format!("/v1/endpoints/{endpoint_id}/secret?tenant_id={tenant}"),
        )
        .bearer_auth(admin_token);
    assert_eq!(client.send("read endpoint secret", request).await.0, 200);
    shown_once.push("read endpoint secret".to_owned());
    let request = client
        .request(Method::POST, &format!("/v1/endpoints?tenant_id={tenant}"))
        .bearer_auth(admin_token)
        .json(&json!({"url": "https://127.0.0.1:9/generated"}));
    let (_, generated) = client
        .send("create endpoint with a generated secret", request)
        .await;
    scanner.watch(
        "generated endpoint secret",
        generated["secret"].as_str().unwrap(),
    );
    shown_once.push("create endpoint with a generated secret".to_owned());
    // Let the dispatcher attempt the delivery before reading it back.
    for _ in 0..100 {
        let request = client
            .request(
                Method::GET,
                &format!("/v1/deliveries/{delivery_id}?tenant_id={tenant}"),
            )
            .bearer_auth(admin_token);
        let (_, delivery) = client.send("poll delivery", request).await;
        if delivery["attempts"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let patched_header = scanner.canary("patched endpoint header value");
    for (method, path, body) in [
        (
            Method::GET,
            format!("/v1/endpoints?tenant_id={tenant}"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/endpoints/{endpoint_id}?tenant_id={tenant}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/endpoints/{endpoint_id}?tenant_id={tenant}"),
            Some(json!({
                "description": "canary",
                "headers": {"Authorization": format!("Bearer {patched_header}")},
            })),
        ),
        (
            Method::GET,
            format!("/v1/endpoints/{endpoint_id}/deliveries?tenant_id={tenant}"),
            None,
        ),
        (
            Method::GET,
            format!(
                "/v1/events/{}?tenant_id={tenant}",
                event["id"].as_str().unwrap()
            ),
            None,
        ),
        (
            Method::GET,
            format!("/v1/deliveries/{delivery_id}?tenant_id={tenant}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/deliveries/{delivery_id}/retry?tenant_id={tenant}"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/endpoints/{endpoint_id}/replay?tenant_id={tenant}"),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ),
        (
            Method::DELETE,
            format!(
                "/v1/endpoints/{}?tenant_id={tenant}",
                generated["id"].as_str().unwrap()
            ),
            None,
        ),
    ] {
        let mut request = client
            .request(method.clone(), &path)
            .bearer_auth(admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        client.send(&format!("{method} {path}"), request).await;
    }

    // Last, crypto-shred the tenant.
    let request = client
        .request(Method::DELETE, &format!("/v1/tenants/{tenant}"))
        .bearer_auth(admin_token);
    let (status, _) = client.send("delete tenant", request).await;
    assert_eq!(status, 200);
    shown_once
}

/// Connections: a credential in at creation and again at rotation (one refused, one
/// accepted), then the check, a sync, the change stream, an action and deletion. The
/// stand-in provider sees the tokens, as a provider must; nothing Switchyard writes may.
async fn exercise_connections(
    client: &mut RecordingClient,
    scanner: &mut LeakScanner,
    admin_token: &str,
) {
    use switchyard_test_support::standin::{StandIn, StandInOptions};
    let token = scanner.canary("connection token");
    let refused = scanner.canary("refused rotation token");
    let standin = StandIn::start(StandInOptions {
        token: Some(token.clone()),
        rate_limit: None,
        ..Default::default()
    })
    .await
    .unwrap();
    standin.seed(120);
    let request = client
        .request(Method::POST, "/v1/tenants")
        .bearer_auth(admin_token)
        .json(&json!({"name": "Connected"}));
    let (_, tenant) = client.send("create connections tenant", request).await;
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    let base = |path: &str| format!("{path}?tenant_id={tenant}");
    let request = client
        .request(Method::POST, &base("/v1/connections"))
        .bearer_auth(admin_token)
        .header("idempotency-key", "canary-connection")
        .json(&json!({"provider": "standin-link", "name": "canary", "config": {"base_url": standin.url()}, "credentials": {"token": token}}));
    let (status, connection) = client.send("create connection", request).await;
    assert_eq!(status, 201, "{connection}");
    let id = connection["id"].as_str().unwrap().to_owned();
    // Replayed from the idempotency store: that copy must hold no secret either.
    let request = client
        .request(Method::POST, &base("/v1/connections"))
        .bearer_auth(admin_token)
        .header("idempotency-key", "canary-connection")
        .json(&json!({"provider": "standin-link", "name": "canary", "config": {"base_url": standin.url()}, "credentials": {"token": token}}));
    client.send("replay create connection", request).await;

    let request = client
        .request(Method::POST, &base(&format!("/v1/connections/{id}/test")))
        .bearer_auth(admin_token)
        .json(&json!({}));
    let (_, test) = client.send("test connection", request).await;
    assert_eq!(test["success"], true, "{test}");
    let request = client
        .request(
            Method::POST,
            &base(&format!("/v1/connections/{id}/syncs/users/run")),
        )
        .bearer_auth(admin_token)
        .json(&json!({}));
    let (status, started) = client.send("run sync", request).await;
    assert_eq!(status, 202, "{started}");
    let run = started["run_id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        let request = client
            .request(Method::GET, &base(&format!("/v1/runs/{run}")))
            .bearer_auth(admin_token);
        let (_, body) = client.send("sync run", request).await;
        if body["status"] == "succeeded" {
            break;
        }
        assert_ne!(body["status"], "failed", "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for (label, path) in [
        ("records", format!("/v1/connections/{id}/records/users")),
        ("syncs", format!("/v1/connections/{id}/syncs")),
        ("connection", format!("/v1/connections/{id}")),
        ("connections", "/v1/connections".to_owned()),
        ("providers", "/v1/providers".to_owned()),
    ] {
        let request = client
            .request(Method::GET, &base(&path))
            .bearer_auth(admin_token);
        client.send(label, request).await;
    }
    let request = client
        .request(
            Method::POST,
            &base(&format!("/v1/connections/{id}/actions/create_user")),
        )
        .bearer_auth(admin_token)
        .json(&json!({"input": {"name": "Canary", "email": "canary@example.test"}}));
    let (status, action) = client.send("action", request).await;
    assert_eq!(status, 200, "{action}");
    for (label, credential) in [("refused rotation", &refused), ("rotation", &token)] {
        let request = client
            .request(
                Method::POST,
                &base(&format!("/v1/connections/{id}/credentials/rotate")),
            )
            .bearer_auth(admin_token)
            .json(&json!({"credentials": {"token": credential}}));
        let (status, body) = client.send(label, request).await;
        assert_eq!(status, 200, "{body}");
    }
    let request = client
        .request(Method::DELETE, &base(&format!("/v1/connections/{id}")))
        .bearer_auth(admin_token);
    let (status, _) = client.send("delete connection", request).await;
    assert_eq!(status, 204);
}

/// Standard base64, as a `whsec_` secret carries its key bytes.
fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_on_sqlite() {
    run_canary_test(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_on_postgres() {
    run_canary_test(TestBackend::Postgres).await;
}
