use reqwest::Method;
use switchyard_test_support::{TestApp, TestBackend, backend_tests};

backend_tests! { TestApp;
    async fn health_and_readiness_answer(app) {
        let health = app.send(Method::GET, "/healthz", None, None).await;
        assert_eq!((health.status, health.json()), (200, serde_json::json!({"status": "ok"})));
        let ready = app.send(Method::GET, "/readyz", None, None).await;
        assert_eq!((ready.status, ready.json()), (200, serde_json::json!({"status": "ok"})));
    }

    async fn metrics_count_requests_by_route_template(app) {
        let tenant = app.create_tenant("Acme").await;
        app.get(&format!("/v1/tenants/{tenant}"), &app.admin_token).await;
        let metrics = app.send(Method::GET, "/metrics", None, None).await;
        assert_eq!(metrics.status, 200);
        assert!(metrics.header("content-type").unwrap().starts_with("text/plain"));
        let text = metrics.text();
        assert!(
            text.lines().any(|line| line.starts_with("switchyard_http_requests_total{")
                && line.contains(r#"route="/v1/tenants/{tenant_id}""#)
                && line.contains(r#"status="200""#)
                && line.contains(r#"method="GET""#)),
            "{text}"
        );
        assert!(text.contains("switchyard_http_request_duration_seconds_bucket{"), "latency is a histogram");
        assert!(text.contains(r#"switchyard_build_info{version=""#));
        assert!(!text.contains(&tenant), "ids never become labels");
    }

    async fn request_ids_are_echoed_or_generated(app) {
        let given = app.send_request(app.client.get(app.url("/healthz")).header("x-request-id", "trace-me-123")).await;
        assert_eq!(given.header("x-request-id"), Some("trace-me-123"));
        let generated = app.send(Method::GET, "/healthz", None, None).await;
        let id = generated.header("x-request-id").unwrap();
        assert!(id.starts_with("req_"), "{id}");
        let hostile = app.send_request(app.client.get(app.url("/healthz")).header("x-request-id", "a b\tc")).await;
        assert_ne!(hostile.header("x-request-id"), Some("a b\tc"));
        let problem = app.send_request(app.client.get(app.url("/nowhere")).header("x-request-id", "find-me")).await;
        assert_eq!(problem.json()["request_id"], "find-me", "problems carry the request id");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_database_is_gone() {
    let Some(app) = TestApp::spawn(TestBackend::Postgres).await else {
        return;
    };
    // Drop the database under the running server: readiness must say so, liveness not.
    let admin_url = std::env::var("SWITCHYARD_TEST_DATABASE_URL").unwrap();
    let name = app.database().url().rsplit('/').next().unwrap().to_owned();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .unwrap();
    sqlx::query(&format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#))
        .execute(&mut admin)
        .await
        .unwrap();
    let ready = app.send(Method::GET, "/readyz", None, None).await;
    ready.assert_problem(503, "unavailable");
    assert_eq!(
        app.send(Method::GET, "/healthz", None, None).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_without_the_api_role_serves_only_operations() {
    let app = TestApp::spawn_with(TestBackend::Sqlite, |figment| {
        figment.merge(("roles", vec!["worker"]))
    })
    .await
    .unwrap();
    assert_eq!(
        app.send(Method::GET, "/healthz", None, None).await.status,
        200
    );
    assert_eq!(
        app.send(Method::GET, "/readyz", None, None).await.status,
        200
    );
    assert_eq!(
        app.send(Method::GET, "/metrics", None, None).await.status,
        200
    );
    app.get("/v1/tenants", &app.admin_token)
        .await
        .assert_problem(404, "route_not_found");
}
