use serde_json::json;
use switchyard_test_support::{TestApp, backend_tests};

backend_tests! { TestApp;
    async fn same_key_and_body_replays_the_stored_response(app) {
        let send = |key: &'static str, name: &'static str| {
            app.client
                .post(app.url("/v1/tenants"))
                .bearer_auth(&app.admin_token)
                .header("idempotency-key", key)
                .json(&json!({"name": name}))
        };
        let first = app.send_request(send("create-acme", "Acme")).await;
        assert_eq!(first.status, 201);
        assert_eq!(first.header("idempotent-replayed"), None);
        let second = app.send_request(send("create-acme", "Acme")).await;
        assert_eq!(second.status, 201);
        assert_eq!(second.header("idempotent-replayed"), Some("true"));
        assert_eq!(second.json(), first.json(), "the same tenant, not a second one");
        let list = app.get("/v1/tenants", &app.admin_token).await;
        assert_eq!(list.json()["data"].as_array().unwrap().len(), 1);

        let different = app.send_request(send("create-acme", "Other")).await;
        different.assert_problem(422, "idempotency_key_reused");
        let fresh = app.send_request(send("create-other", "Other")).await;
        assert_eq!(fresh.status, 201);
    }

    async fn concurrent_duplicates_create_one_resource(app) {
        let requests = (0..10).map(|_| {
            app.send_request(
                app.client
                    .post(app.url("/v1/tenants"))
                    .bearer_auth(&app.admin_token)
                    .header("idempotency-key", "racing")
                    .json(&json!({"name": "Racer"})),
            )
        });
        let responses = futures::future::join_all(requests).await;
        let mut ids = std::collections::HashSet::new();
        for response in &responses {
            match response.status {
                201 => {
                    ids.insert(response.json()["id"].as_str().unwrap().to_owned());
                }
                409 => {
                    response.assert_problem(409, "idempotency_key_in_use");
                }
                other => panic!("unexpected {other}: {}", response.text()),
            }
        }
        assert_eq!(ids.len(), 1, "every success is the same tenant");
        assert_eq!(app.get("/v1/tenants", &app.admin_token).await.json()["data"].as_array().unwrap().len(), 1);
    }

    async fn replayed_key_creation_never_reveals_or_stores_the_secret(app) {
        let tenant = app.create_tenant("Acme").await;
        let request = || {
            app.client
                .post(app.url(&format!("/v1/tenants/{tenant}/api-keys")))
                .bearer_auth(&app.admin_token)
                .header("idempotency-key", "key-1")
                .json(&json!({"name": "ci", "role": "read"}))
        };
        let first = app.send_request(request()).await;
        let secret = first.json()["key"].as_str().unwrap().to_owned();
        let replay = app.send_request(request()).await;
        assert_eq!(replay.status, 201);
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
        let replayed = replay.json();
        assert_eq!(replayed["id"], first.json()["id"]);
        assert!(replayed.get("key").is_none(), "a replay does not show the key again");
        assert!(!replay.text().contains(&secret));
        assert_eq!(app.get(&format!("/v1/tenants/{tenant}"), &secret).await.status, 200);
    }

    async fn keys_are_scoped_per_caller(app) {
        let a = app.create_tenant("A").await;
        let b = app.create_tenant("B").await;
        let (_, key_a) = app.create_api_key(&a, "admin").await;
        let (_, key_b) = app.create_api_key(&b, "admin").await;
        for (tenant, key) in [(&a, &key_a), (&b, &key_b)] {
            let response = app
                .send_request(
                    app.client
                        .post(app.url(&format!("/v1/tenants/{tenant}/api-keys")))
                        .bearer_auth(key)
                        .header("idempotency-key", "shared-key")
                        .json(&json!({"name": "x", "role": "read"})),
                )
                .await;
            assert_eq!(response.status, 201, "the same key in another tenant is another request");
            assert_eq!(response.header("idempotent-replayed"), None);
        }
    }

    async fn rejects_malformed_idempotency_keys(app) {
        for key in ["", &"k".repeat(256), "has space"] {
            let request = app
                .client
                .post(app.url("/v1/tenants"))
                .bearer_auth(&app.admin_token)
                .header("idempotency-key", key)
                .json(&json!({"name": "x"}));
            app.send_request(request).await.assert_problem(400, "invalid_header");
        }
    }

    async fn failed_validation_is_replayed_too(app) {
        let request = || {
            app.client
                .post(app.url("/v1/tenants"))
                .bearer_auth(&app.admin_token)
                .header("idempotency-key", "bad")
                .json(&json!({"name": ""}))
        };
        app.send_request(request()).await.assert_problem(400, "validation_failed");
        let replay = app.send_request(request()).await;
        replay.assert_problem(400, "validation_failed");
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    }
}
