//! Bad input of every kind gets a precise 4xx problem, never a panic or a 5xx.

use reqwest::Method;
use serde_json::json;
use switchyard_test_support::{TestApp, backend_tests};

backend_tests! { TestApp;
    async fn malformed_json_is_invalid_json(app) {
        for body in ["{", "{\"name\": }", "{\"name\": \"x\"", "nul", "\u{feff}{}"] {
            let request = app
                .client
                .post(app.url("/v1/tenants"))
                .bearer_auth(&app.admin_token)
                .header("content-type", "application/json")
                .body(body);
            app.send_request(request).await.assert_problem(400, "invalid_json");
        }
    }

    async fn non_utf8_body_is_rejected_cleanly(app) {
        let request = app
            .client
            .post(app.url("/v1/tenants"))
            .bearer_auth(&app.admin_token)
            .header("content-type", "application/json")
            .body(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}']);
        let response = app.send_request(request).await;
        assert!(response.status == 400, "{}", response.text());
    }

    async fn wrong_content_type_is_unsupported_media_type(app) {
        for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
            let mut request = app.client.post(app.url("/v1/tenants")).bearer_auth(&app.admin_token).body(r#"{"name":"x"}"#);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            app.send_request(request).await.assert_problem(415, "unsupported_media_type");
        }
    }

    async fn unknown_fields_are_named(app) {
        let response = app.post("/v1/tenants", &app.admin_token, &json!({"name": "x", "nmae": "y"})).await;
        let problem = response.assert_problem(400, "invalid_body");
        assert!(problem["detail"].as_str().unwrap().contains("nmae"), "{problem}");
    }

    async fn oversized_bodies_are_payload_too_large(app) {
        let big = json!({"name": "x".repeat(1024 * 1024 + 1)});
        app.post("/v1/tenants", &app.admin_token, &big).await.assert_problem(413, "payload_too_large");
        let request = app
            .client
            .post(app.url("/v1/tenants"))
            .bearer_auth(&app.admin_token)
            .header("idempotency-key", "big-one")
            .json(&big);
        app.send_request(request).await.assert_problem(413, "payload_too_large");
    }

    async fn malformed_ids_are_invalid_id(app) {
        for id in ["nope", "ten_", "key_01JD2S5W8X3Q4R5T6V7W8X9Y0Z", "ten_01jd2s5w8x3q4r5t6v7w8x9y0z", "ten_01JD2S5W8X3Q4R5T6V7W8X9Y0Z0"] {
            let response = app.get(&format!("/v1/tenants/{id}"), &app.admin_token).await;
            response.assert_problem(400, "invalid_id");
        }
    }

    async fn unknown_routes_and_methods_are_problems(app) {
        app.get("/v1/nothing-here", &app.admin_token).await.assert_problem(404, "route_not_found");
        app.send(Method::GET, "/", None, None).await.assert_problem(404, "route_not_found");
        app.send(Method::PUT, "/v1/tenants", Some(&app.admin_token), Some(&json!({}))).await.assert_problem(405, "method_not_allowed");
        app.send(Method::DELETE, "/healthz", None, None).await.assert_problem(405, "method_not_allowed");
    }

    async fn arbitrary_input_never_yields_a_server_error(app) {
        let tenant = app.create_tenant("Acme").await;
        let bodies: [&[u8]; 8] = [b"", b"null", b"[]", b"{}", b"\"x\"", b"{\"name\":null}", b"{\"name\":{\"a\":1}}", &[0u8; 64]];
        let paths = [
            "/v1/tenants".to_owned(),
            format!("/v1/tenants/{tenant}/api-keys"),
            "/v1/tenants/%00".to_owned(),
            "/v1/tenants/..%2f..%2fetc".to_owned(),
            format!("/v1/tenants/{tenant}/api-keys/%ff"),
        ];
        for path in &paths {
            for body in bodies {
                for method in [Method::POST, Method::GET, Method::DELETE] {
                    let request = app
                        .client
                        .request(method.clone(), app.url(path))
                        .bearer_auth(&app.admin_token)
                        .header("content-type", "application/json")
                        .body(body.to_vec());
                    let response = app.send_request(request).await;
                    assert!(response.status < 500, "{method} {path} {body:?} -> {} {}", response.status, response.text());
                }
            }
        }
    }
}
