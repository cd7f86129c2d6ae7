use serde_json::json;
use switchyard_test_support::{TestApp, backend_tests};

backend_tests! { TestApp;
    async fn admin_creates_reads_and_lists_tenants(app) {
        let created = app
            .post("/v1/tenants", &app.admin_token, &json!({"name": "  Acme Corp ", "environment": "live"}))
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let tenant = created.json();
        let id = tenant["id"].as_str().unwrap();
        assert!(id.starts_with("ten_"));
        assert_eq!(tenant["name"], "Acme Corp", "names are trimmed");
        assert_eq!(tenant["environment"], "live");
        assert!(tenant["created_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(created.header("location"), Some(format!("/v1/tenants/{id}").as_str()));

        let read = app.get(&format!("/v1/tenants/{id}"), &app.admin_token).await;
        assert_eq!(read.status, 200);
        assert_eq!(read.json(), tenant);

        let list = app.get("/v1/tenants", &app.admin_token).await;
        assert_eq!(list.status, 200);
        assert_eq!(list.json(), json!({"data": [tenant], "next_cursor": null}));
    }

    async fn environment_is_optional(app) {
        let created = app.post("/v1/tenants", &app.admin_token, &json!({"name": "No env"})).await;
        assert_eq!(created.status, 201);
        assert_eq!(created.json()["environment"], json!(null));
    }

    async fn rejects_invalid_tenant_fields(app) {
        for body in [
            json!({"name": ""}),
            json!({"name": "   "}),
            json!({"name": "x".repeat(201)}),
            json!({"name": "bell\u{7}"}),
            json!({"name": "Acme", "environment": "Live"}),
            json!({"name": "Acme", "environment": ""}),
            json!({"name": "Acme", "environment": "a b"}),
        ] {
            let response = app.post("/v1/tenants", &app.admin_token, &body).await;
            let problem = response.assert_problem(400, "validation_failed");
            assert!(problem["detail"].as_str().unwrap().starts_with('`'), "{problem}");
        }
        let response = app.post("/v1/tenants", &app.admin_token, &json!({"environment": "live"})).await;
        response.assert_problem(400, "invalid_body");
        let response = app.post("/v1/tenants", &app.admin_token, &json!({"name": 7})).await;
        response.assert_problem(400, "invalid_body");
    }

    async fn unknown_tenant_is_not_found(app) {
        let response = app.get("/v1/tenants/ten_01JD2S5W8X3Q4R5T6V7W8X9Y0Z", &app.admin_token).await;
        response.assert_problem(404, "not_found");
    }

    async fn tenant_keys_read_their_own_tenant_but_not_the_platform(app) {
        let tenant = app.create_tenant("Acme").await;
        let (_, read_key) = app.create_api_key(&tenant, "read").await;
        let (_, admin_key) = app.create_api_key(&tenant, "admin").await;
        assert_eq!(app.get(&format!("/v1/tenants/{tenant}"), &read_key).await.status, 200);
        for key in [&read_key, &admin_key] {
            app.get("/v1/tenants", key).await.assert_problem(403, "insufficient_role");
            app.post("/v1/tenants", key, &json!({"name": "x"})).await.assert_problem(403, "insufficient_role");
        }
    }
}
