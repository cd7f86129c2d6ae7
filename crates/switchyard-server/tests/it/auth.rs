use reqwest::Method;
use serde_json::json;
use switchyard_test_support::{TestApp, backend_tests};

backend_tests! { TestApp;
    async fn every_v1_route_needs_a_bearer_credential(app) {
        let tenant = app.create_tenant("Acme").await;
        let routes = [
            (Method::GET, "/v1/tenants".to_owned()),
            (Method::POST, "/v1/tenants".to_owned()),
            (Method::GET, format!("/v1/tenants/{tenant}")),
            (Method::GET, format!("/v1/tenants/{tenant}/api-keys")),
            (Method::POST, format!("/v1/tenants/{tenant}/api-keys")),
            (Method::DELETE, format!("/v1/tenants/{tenant}/api-keys/key_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")),
        ];
        for (method, path) in routes {
            let response = app.send(method.clone(), &path, None, Some(&json!({}))).await;
            response.assert_problem(401, "unauthenticated");
            assert_eq!(response.header("www-authenticate"), Some("Bearer"), "{method} {path}");
            for token in ["sy_not-a-real-key", "not-the-admin-token", ""] {
                let response = app.send(method.clone(), &path, Some(token), Some(&json!({}))).await;
                response.assert_problem(401, "unauthenticated");
            }
        }
    }

    async fn accepts_only_the_bearer_scheme(app) {
        let request = app
            .client
            .get(app.url("/v1/tenants"))
            .header("authorization", format!("Basic {}", app.admin_token));
        app.send_request(request).await.assert_problem(401, "unauthenticated");
        let request = app
            .client
            .get(app.url("/v1/tenants"))
            .header("authorization", format!("bearer {}", app.admin_token));
        assert_eq!(app.send_request(request).await.status, 200, "the scheme is case-insensitive");
    }
}
