//! `GET /v1/connections/{id}/health`: the document built from the server's own recorder, the
//! status-change event it publishes, and 404 for what this tenant has no health of.

use std::time::{Duration, SystemTime};

use serde_json::json;
use switchyard_http::{AttemptRecord, CallObserver, OutcomeClass};
use switchyard_test_support::{TestApp, backend_tests};

fn attempt(
    tenant: &str,
    connection: &str,
    class: OutcomeClass,
    status: Option<u16>,
) -> AttemptRecord {
    AttemptRecord {
        tenant: tenant.to_owned(),
        provider: "github".to_owned(),
        connection: Some(connection.to_owned()),
        method: "GET".to_owned(),
        route: "/repos/{owner}/{repo}".to_owned(),
        status,
        class,
        latency: Duration::from_millis(80),
        at: SystemTime::now(),
        error: status.filter(|s| *s >= 400).map(|s| format!("http_{s}")),
    }
}

backend_tests! { TestApp;
    async fn serves_a_connections_health_and_announces_the_change(app) {
        let tenant = app.create_tenant("A").await;
        let (_, key) = app.create_api_key(&tenant, "read").await;
        let (_, admin) = app.create_api_key(&tenant, "admin").await;
        let subscriber = app.post("/v1/endpoints", &admin, &json!({
            "url": "https://hooks.example.invalid/health", "event_types": ["switchyard.connection.*"],
        })).await;
        assert_eq!(subscriber.status, 201, "{}", subscriber.text());
        for _ in 0..6 {
            app.health.attempt(&attempt(&tenant, "con_github", OutcomeClass::Success, Some(200)));
        }
        for _ in 0..4 {
            app.health.attempt(&attempt(&tenant, "con_github", OutcomeClass::ServerError, Some(503)));
        }
        let report = app.health.flush().await.unwrap();
        assert_eq!(report.transitions.len(), 1);
        let event_id = report.transitions[0].published.event.id.to_string();

        let response = app.get("/v1/connections/con_github/health", &key).await;
        assert_eq!(response.status, 200, "{}", response.text());
        let body = response.json();
        assert_eq!(body["connection_id"], "con_github");
        assert_eq!(body["tenant_id"], tenant.as_str());
        assert_eq!(body["provider"], "github");
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["calls"], 10);
        assert_eq!(body["errors"], 4);
        assert_eq!(body["error_rate"], 0.4);
        assert_eq!(body["success_rate"], 0.6);
        assert_eq!(body["latency_p50_ms"], 100);
        assert_eq!(body["latency_p95_ms"], 100);
        assert_eq!(body["counts"]["server_error"], 4);
        assert_eq!(body["counts"]["timeout"], 0);
        assert!(body["window_start"].is_string() && body["window_end"].is_string());
        assert!(body["last_success_at"].is_string() && body["last_failure_at"].is_string());
        assert!(body["status_changed_at"].is_string());
        let errors = body["recent_errors"].as_array().unwrap();
        assert_eq!(errors.len(), 4);
        assert_eq!(errors[0]["class"], "server_error");
        assert_eq!(errors[0]["status"], 503);
        assert_eq!(errors[0]["error"], "http_503");
        assert_eq!(errors[0]["route"], "/repos/{owner}/{repo}");

        // The change went out as an outbound event to the subscriber.
        let event = app.get(&format!("/v1/events/{event_id}"), &admin).await;
        assert_eq!(event.status, 200, "{}", event.text());
        let event = event.json();
        assert_eq!(event["type"], "switchyard.connection.degraded");
        assert_eq!(event["deliveries"].as_array().unwrap().len(), 1);
        assert_eq!(event["ordering_key"], "con_github");
        let data = &event["payload"]["data"];
        assert_eq!(data["previous_status"], "healthy");
        assert_eq!(data["status"], "degraded");
        assert_eq!(data["connection_id"], "con_github");
        assert_eq!(data["error_rate"], 0.4);

        // The platform admin names the tenant.
        let as_admin = app.get(&format!("/v1/connections/con_github/health?tenant_id={tenant}"), &app.admin_token).await;
        assert_eq!(as_admin.status, 200, "{}", as_admin.text());
        app.get("/v1/connections/con_github/health", &app.admin_token).await.assert_problem(400, "invalid_query");
    }

    async fn health_of_an_unknown_or_foreign_connection_is_not_found(app) {
        let tenant_a = app.create_tenant("A").await;
        let tenant_b = app.create_tenant("B").await;
        let (_, key_a) = app.create_api_key(&tenant_a, "read").await;
        let (_, key_b) = app.create_api_key(&tenant_b, "admin").await;
        app.health.attempt(&attempt(&tenant_a, "con_a", OutcomeClass::Success, Some(200)));
        app.health.flush().await.unwrap();
        assert_eq!(app.get("/v1/connections/con_a/health", &key_a).await.status, 200);
        app.get("/v1/connections/con_a/health", &key_b).await.assert_problem(404, "not_found");
        app.get("/v1/connections/con_missing/health", &key_a).await.assert_problem(404, "not_found");
        app.get(&format!("/v1/connections/con_a/health?tenant_id={tenant_b}"), &app.admin_token)
            .await
            .assert_problem(404, "not_found");
    }
}
