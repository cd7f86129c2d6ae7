//! Tenant isolation: for every tenant-scoped route, a key of tenant B used on tenant A's
//! resources gets 404, exactly like a resource that does not exist (never 200, never 403).
//! Later features add their routes to `tenant_scoped_routes`.

use std::ops::Deref;

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_http::CallObserver;
use switchyard_test_support::{BackendFixture, TestApp, TestBackend, backend_tests};

use crate::oauth::fixture::MANIFESTS;

/// The test app with the OAuth test manifests loaded: an OAuth client registration needs a
/// connector with an authorization-code mode whose endpoints the tests control.
struct IsolatedApp {
    app: TestApp,
    _manifests: tempfile::TempDir,
}

impl Deref for IsolatedApp {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl BackendFixture for IsolatedApp {
    async fn start(backend: TestBackend) -> Option<Self> {
        let manifests = tempfile::tempdir().unwrap();
        for (name, text) in MANIFESTS {
            std::fs::write(manifests.path().join(name), text).unwrap();
        }
        let directory = manifests.path().display().to_string();
        let app = TestApp::spawn_with(backend, |figment| {
            figment.merge(("connectors.directory", directory))
        })
        .await?;
        Some(Self {
            app,
            _manifests: manifests,
        })
    }
}

/// Tenant A's resources, as requests a key of another tenant will try.
struct TenantResources {
    tenant: String,
    key_id: String,
    run_id: String,
    source_id: String,
    inbound_event_id: String,
    endpoint_id: String,
    event_id: String,
    delivery_id: String,
    connection_id: String,
    oauth_client_id: String,
    connect_session_id: String,
}

fn tenant_scoped_routes(a: &TenantResources) -> Vec<(Method, String, Option<Value>)> {
    let tenant = &a.tenant;
    vec![
        (Method::GET, format!("/v1/tenants/{tenant}"), None),
        (Method::GET, format!("/v1/tenants/{tenant}/api-keys"), None),
        (
            Method::POST,
            format!("/v1/tenants/{tenant}/api-keys"),
            Some(json!({"name": "intruder", "role": "admin"})),
        ),
        (
            Method::DELETE,
            format!("/v1/tenants/{tenant}/api-keys/{}", a.key_id),
            None,
        ),
        (
            Method::GET,
            format!("/v1/tenants/{tenant}/vault/data-keys"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/tenants/{tenant}/vault/rotate-dek"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/tenants/{tenant}/vault/complete-dek-rotation"),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/v1/audit-events?tenant_id={tenant}"),
            None,
        ),
        (Method::GET, format!("/v1/runs/{}", a.run_id), None),
        (
            Method::POST,
            format!("/v1/runs/{}/retry", a.run_id),
            Some(json!({})),
        ),
        (Method::GET, format!("/v1/runs?tenant_id={tenant}"), None),
        (Method::GET, format!("/v1/sources/{}", a.source_id), None),
        (
            Method::PATCH,
            format!("/v1/sources/{}", a.source_id),
            Some(json!({"name": "taken over"})),
        ),
        (
            Method::POST,
            format!("/v1/sources/{}/rotate-secret", a.source_id),
            Some(json!({"secret": "intruder"})),
        ),
        (Method::DELETE, format!("/v1/sources/{}", a.source_id), None),
        (Method::GET, format!("/v1/sources?tenant_id={tenant}"), None),
        (
            Method::POST,
            format!("/v1/sources?tenant_id={tenant}"),
            Some(json!({"name": "planted", "scheme": "none", "allow_unverified": true})),
        ),
        (
            Method::GET,
            format!("/v1/inbound-events/{}", a.inbound_event_id),
            None,
        ),
        (
            Method::GET,
            format!("/v1/inbound-events/{}/payload", a.inbound_event_id),
            None,
        ),
        (
            Method::POST,
            format!("/v1/inbound-events/{}/replay", a.inbound_event_id),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/v1/inbound-events?tenant_id={tenant}"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/endpoints/{}", a.endpoint_id),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/endpoints/{}", a.endpoint_id),
            Some(json!({"url": "https://attacker.example/hook"})),
        ),
        (
            Method::PATCH,
            format!("/v1/endpoints/{}", a.endpoint_id),
            Some(json!({"headers": null})),
        ),
        (
            Method::GET,
            format!("/v1/endpoints/{}/secret", a.endpoint_id),
            None,
        ),
        (
            Method::POST,
            format!("/v1/endpoints/{}/secret/rotate", a.endpoint_id),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/endpoints/{}/replay", a.endpoint_id),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        ),
        (
            Method::GET,
            format!("/v1/endpoints/{}/deliveries", a.endpoint_id),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/endpoints/{}", a.endpoint_id),
            None,
        ),
        (
            Method::GET,
            format!("/v1/endpoints?tenant_id={tenant}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/endpoints?tenant_id={tenant}"),
            Some(json!({"url": "https://attacker.example/hook"})),
        ),
        (
            Method::POST,
            format!("/v1/events?tenant_id={tenant}"),
            Some(json!({"type": "planted.event", "data": {}})),
        ),
        (Method::GET, format!("/v1/events/{}", a.event_id), None),
        (
            Method::GET,
            format!("/v1/deliveries/{}", a.delivery_id),
            None,
        ),
        (
            Method::POST,
            format!("/v1/deliveries/{}/retry", a.delivery_id),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/v1/connections/{}/health", a.connection_id),
            None,
        ),
        (
            Method::GET,
            format!("/v1/oauth-clients?tenant_id={tenant}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/oauth-clients?tenant_id={tenant}"),
            Some(
                json!({"provider": "oauth-demo", "client_id": "planted", "client_secret": "planted-secret"}),
            ),
        ),
        (
            Method::GET,
            format!("/v1/oauth-clients/{}", a.oauth_client_id),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/oauth-clients/{}", a.oauth_client_id),
            Some(json!({"client_secret": "intruder-secret"})),
        ),
        (
            Method::PATCH,
            format!("/v1/oauth-clients/{}", a.oauth_client_id),
            Some(json!({"redirect_uri": "https://attacker.example/callback"})),
        ),
        (
            Method::DELETE,
            format!("/v1/oauth-clients/{}", a.oauth_client_id),
            None,
        ),
        (
            Method::GET,
            format!("/v1/connect-sessions?tenant_id={tenant}"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/connect-sessions?tenant_id={tenant}"),
            Some(json!({"end_user": {"id": "intruder"}, "provider": "oauth-demo"})),
        ),
        (
            Method::GET,
            format!("/v1/connect-sessions/{}", a.connect_session_id),
            None,
        ),
    ]
}

backend_tests! { IsolatedApp;
    async fn another_tenants_keys_see_nothing(app) {
        let tenant_a = app.create_tenant("A").await;
        let (key_id_a, key_a) = app.create_api_key(&tenant_a, "admin").await;
        let tenant_b = app.create_tenant("B").await;
        // A has a run of its own (its data key rotation).
        let rotated = app.post(&format!("/v1/tenants/{tenant_a}/vault/rotate-dek"), &key_a, &json!({})).await;
        let run_id = rotated.json()["run_id"].as_str().unwrap().to_owned();
        // …and a webhook source with one received event.
        let source = app.post("/v1/sources", &key_a, &json!({"name": "a", "scheme": "none", "allow_unverified": true})).await.json();
        let source_id = source["id"].as_str().unwrap().to_owned();
        let ingested = reqwest::Client::new().post(source["ingest_url"].as_str().unwrap()).body("{}").send().await.unwrap();
        let inbound_event_id = ingested.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        // …and an endpoint with one delivered (or failing: nothing listens there) event.
        let a_header = "Bearer canary-isolated-7c1e";
        let endpoint = app.post("/v1/endpoints", &key_a, &json!({
            "url": "https://hooks.example.invalid/a", "headers": {"authorization": a_header},
        })).await.json();
        let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
        let a_secret = endpoint["secret"].as_str().unwrap().to_owned();
        let event = app.post("/v1/events", &key_a, &json!({"type": "a.happened", "data": {}})).await.json();
        let event_id = event["id"].as_str().unwrap().to_owned();
        let delivery_id = event["deliveries"][0].as_str().unwrap().to_owned();
        // …and a connection whose calls were recorded.
        let connection_id = "con_isolated".to_owned();
        app.health.attempt(&switchyard_http::AttemptRecord {
            tenant: tenant_a.clone(), provider: "github".to_owned(), connection: Some(connection_id.clone()),
            method: "GET".to_owned(), route: "/user".to_owned(), status: Some(200),
            class: switchyard_http::OutcomeClass::Success, latency: std::time::Duration::from_millis(5),
            at: std::time::SystemTime::now(), error: None,
        });
        app.health.flush().await.unwrap();
        assert_eq!(app.get(&format!("/v1/connections/{connection_id}/health"), &key_a).await.status, 200);
        // …and an OAuth client registration and a pending connect session.
        let a_client_secret = "client-secret-of-a-3f9d2c71";
        let client = app.post("/v1/oauth-clients", &key_a, &json!({
            "provider": "oauth-demo", "client_id": "a-client", "client_secret": a_client_secret,
        })).await;
        assert_eq!(client.status, 201, "{}", client.text());
        let client = client.json();
        let oauth_client_id = client["id"].as_str().unwrap().to_owned();
        let session = app.post("/v1/connect-sessions", &key_a, &json!({
            "end_user": {"id": "a-user"}, "provider": "oauth-demo",
        })).await;
        assert_eq!(session.status, 201, "{}", session.text());
        let session = session.json();
        let connect_session_id = session["id"].as_str().unwrap().to_owned();
        let a_session_token = session["token"].as_str().unwrap().to_owned();
        let resources = TenantResources {
            tenant: tenant_a.clone(), key_id: key_id_a, run_id, source_id, inbound_event_id,
            endpoint_id, event_id, delivery_id, connection_id, oauth_client_id, connect_session_id,
        };

        for role in ["admin", "write", "read"] {
            let (_, key_b) = app.create_api_key(&tenant_b, role).await;
            for (method, path, body) in tenant_scoped_routes(&resources) {
                let response = app.send(method.clone(), &path, Some(&key_b), body.as_ref()).await;
                assert_eq!(response.status, 404, "{role} key of B: {method} {path} -> {}", response.text());
                response.assert_problem(404, "not_found");
                assert!(!response.text().contains("\"name\":\"A\""));
                assert!(!response.text().contains(&a_secret));
                assert!(!response.text().contains(a_header));
                assert!(!response.text().contains(a_client_secret));
                assert!(!response.text().contains(&a_session_token));
                assert!(!response.text().contains("a-client"));
            }
        }
        // Deleting a tenant is a platform operation: a tenant key gets 403 whether or not the
        // tenant exists, so it learns nothing.
        let (_, admin_b) = app.create_api_key(&tenant_b, "admin").await;
        app.delete(&format!("/v1/tenants/{tenant_a}"), &admin_b).await.assert_problem(403, "insufficient_role");
        app.delete("/v1/tenants/ten_01JD2S5W8X3Q4R5T6V7W8X9Y0Z", &admin_b).await.assert_problem(403, "insufficient_role");
        // B's own audit log shows none of A's events.
        let b_events = app.get("/v1/audit-events", &admin_b).await.json();
        assert!(!b_events.to_string().contains(&tenant_a), "{b_events}");

        // Nothing B tried changed A: A's key works, A still has exactly one key and one data key.
        assert_eq!(app.get(&format!("/v1/tenants/{tenant_a}"), &key_a).await.status, 200);
        let keys = app.get(&format!("/v1/tenants/{tenant_a}/api-keys"), &key_a).await.json();
        assert_eq!(keys["data"].as_array().unwrap().len(), 1);
        let data_keys = app.get(&format!("/v1/tenants/{tenant_a}/vault/data-keys"), &key_a).await.json();
        assert_eq!(data_keys["data"].as_array().unwrap().len(), 1, "only A's own rotation (version 1): {data_keys}");
        let runs = app.get("/v1/runs", &key_a).await.json();
        assert_eq!(runs["data"].as_array().unwrap().len(), 1, "B created no run for A: {runs}");
        let b_runs = app.get("/v1/runs", &admin_b).await.json();
        assert!(b_runs["data"].as_array().unwrap().is_empty(), "{b_runs}");
        let source = app.get(&format!("/v1/sources/{}", resources.source_id), &key_a).await.json();
        assert_eq!(source["name"], "a", "B renamed nothing: {source}");
        let a_sources = app.get("/v1/sources", &key_a).await.json();
        assert_eq!(a_sources["data"].as_array().unwrap().len(), 1, "B planted no source: {a_sources}");
        assert!(app.get("/v1/sources", &admin_b).await.json()["data"].as_array().unwrap().is_empty());
        let endpoint = app.get(&format!("/v1/endpoints/{}", resources.endpoint_id), &key_a).await.json();
        assert_eq!(endpoint["url"], "https://hooks.example.invalid/a", "B changed nothing: {endpoint}");
        assert_eq!(endpoint["header_names"], json!(["authorization"]), "B cleared no header: {endpoint}");
        assert_eq!(app.get("/v1/endpoints", &key_a).await.json()["data"].as_array().unwrap().len(), 1);
        assert!(app.get("/v1/endpoints", &admin_b).await.json()["data"].as_array().unwrap().is_empty());
        let a_secret_now = app.get(&format!("/v1/endpoints/{}/secret", resources.endpoint_id), &key_a).await.json();
        assert_eq!(a_secret_now["secret"], a_secret.as_str(), "B rotated nothing");
        // B saw, changed, planted and deleted no OAuth client or connect session of A's.
        let client_now = app.get(&format!("/v1/oauth-clients/{}", resources.oauth_client_id), &key_a).await.json();
        assert_eq!(client_now["secret_fingerprint"], client["secret_fingerprint"], "B replaced no secret: {client_now}");
        assert_eq!(client_now["redirect_uri"], Value::Null, "B redirected nothing: {client_now}");
        assert_eq!(client_now["updated_at"], client["updated_at"], "{client_now}");
        let a_clients = app.get("/v1/oauth-clients", &key_a).await.json();
        assert_eq!(a_clients["data"].as_array().unwrap().len(), 1, "B planted no client: {a_clients}");
        let a_sessions = app.get("/v1/connect-sessions", &key_a).await.json();
        assert_eq!(a_sessions["data"].as_array().unwrap().len(), 1, "B planted no session: {a_sessions}");
        let session_now = app.get(&format!("/v1/connect-sessions/{}", resources.connect_session_id), &key_a).await.json();
        assert_eq!(session_now["status"], "pending", "{session_now}");
        // B's own lists are empty: nothing of A's is listed to it.
        assert_eq!(app.get("/v1/oauth-clients", &admin_b).await.json()["data"], json!([]));
        assert_eq!(app.get("/v1/connect-sessions", &admin_b).await.json()["data"], json!([]));
    }

    async fn a_key_id_of_another_tenant_is_not_found_under_ones_own(app) {
        let tenant_a = app.create_tenant("A").await;
        let (key_id_a, key_a) = app.create_api_key(&tenant_a, "read").await;
        let tenant_b = app.create_tenant("B").await;
        let (_, admin_b) = app.create_api_key(&tenant_b, "admin").await;
        let response = app.delete(&format!("/v1/tenants/{tenant_b}/api-keys/{key_id_a}"), &admin_b).await;
        response.assert_problem(404, "not_found");
        assert_eq!(app.get(&format!("/v1/tenants/{tenant_a}"), &key_a).await.status, 200, "A's key survived");
    }
}
