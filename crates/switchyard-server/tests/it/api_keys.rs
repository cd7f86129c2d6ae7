use serde_json::json;
use switchyard_test_support::{TestApp, backend_tests};

backend_tests! { TestApp;
    async fn creates_a_key_that_authenticates_with_its_role(app) {
        let tenant = app.create_tenant("Acme").await;
        let created = app
            .post(&format!("/v1/tenants/{tenant}/api-keys"), &app.admin_token, &json!({"name": "ci", "role": "write"}))
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let body = created.json();
        let key = body["key"].as_str().unwrap();
        assert!(key.starts_with("sy_"));
        assert!(key.len() >= 3 + 22, "at least 128 bits of randomness");
        assert!(body["id"].as_str().unwrap().starts_with("key_"));
        assert_eq!(body["tenant_id"], tenant.as_str());
        assert_eq!(body["role"], "write");
        assert_eq!(body["revoked_at"], json!(null));
        assert!(key.starts_with(body["prefix"].as_str().unwrap()));
        assert_eq!(app.get(&format!("/v1/tenants/{tenant}"), key).await.status, 200);
    }

    async fn lists_keys_without_their_secret(app) {
        let tenant = app.create_tenant("Acme").await;
        let (id, key) = app.create_api_key(&tenant, "read").await;
        let list = app.get(&format!("/v1/tenants/{tenant}/api-keys"), &app.admin_token).await;
        assert_eq!(list.status, 200);
        let body = list.json();
        assert_eq!(body["data"].as_array().unwrap().len(), 1);
        assert_eq!(body["data"][0]["id"], id.as_str());
        assert!(body["data"][0].get("key").is_none());
        assert!(!list.text().contains(&key[10..]), "the secret part never appears in a list");
    }

    async fn revoked_keys_fail_at_once(app) {
        let tenant = app.create_tenant("Acme").await;
        let (id, key) = app.create_api_key(&tenant, "admin").await;
        assert_eq!(app.get(&format!("/v1/tenants/{tenant}"), &key).await.status, 200);
        let revoked = app.delete(&format!("/v1/tenants/{tenant}/api-keys/{id}"), &app.admin_token).await;
        assert_eq!(revoked.status, 200, "{}", revoked.text());
        assert!(revoked.json()["revoked_at"].is_string());
        let response = app.get(&format!("/v1/tenants/{tenant}"), &key).await;
        response.assert_problem(401, "unauthenticated");
        let again = app.delete(&format!("/v1/tenants/{tenant}/api-keys/{id}"), &app.admin_token).await;
        assert_eq!(again.json()["revoked_at"], revoked.json()["revoked_at"], "revoking twice is harmless");
    }

    async fn tenant_admin_keys_manage_keys_and_lower_roles_cannot(app) {
        let tenant = app.create_tenant("Acme").await;
        let (_, admin_key) = app.create_api_key(&tenant, "admin").await;
        let (write_id, write_key) = app.create_api_key(&tenant, "write").await;
        let (_, read_key) = app.create_api_key(&tenant, "read").await;
        let keys_path = format!("/v1/tenants/{tenant}/api-keys");

        let created = app.post(&keys_path, &admin_key, &json!({"name": "made by admin", "role": "read"})).await;
        assert_eq!(created.status, 201);
        assert_eq!(app.get(&keys_path, &admin_key).await.status, 200);

        for key in [&write_key, &read_key] {
            app.post(&keys_path, key, &json!({"name": "x", "role": "admin"})).await.assert_problem(403, "insufficient_role");
            app.get(&keys_path, key).await.assert_problem(403, "insufficient_role");
            app.delete(&format!("{keys_path}/{write_id}"), key).await.assert_problem(403, "insufficient_role");
        }
        let revoked = app.delete(&format!("{keys_path}/{write_id}"), &admin_key).await;
        assert_eq!(revoked.status, 200);
    }

    async fn rejects_bad_key_requests(app) {
        let tenant = app.create_tenant("Acme").await;
        let path = format!("/v1/tenants/{tenant}/api-keys");
        app.post(&path, &app.admin_token, &json!({"name": "x", "role": "owner"})).await.assert_problem(400, "invalid_body");
        app.post(&path, &app.admin_token, &json!({"name": "x"})).await.assert_problem(400, "invalid_body");
        app.post(&path, &app.admin_token, &json!({"name": "", "role": "read"})).await.assert_problem(400, "validation_failed");
        app.post("/v1/tenants/ten_01JD2S5W8X3Q4R5T6V7W8X9Y0Z/api-keys", &app.admin_token, &json!({"name": "x", "role": "read"}))
            .await
            .assert_problem(404, "not_found");
        app.get("/v1/tenants/ten_01JD2S5W8X3Q4R5T6V7W8X9Y0Z/api-keys", &app.admin_token).await.assert_problem(404, "not_found");
        app.delete(&format!("{path}/key_01JD2S5W8X3Q4R5T6V7W8X9Y0Z"), &app.admin_token).await.assert_problem(404, "not_found");
        app.delete(&format!("{path}/{tenant}"), &app.admin_token).await.assert_problem(400, "invalid_id");
    }
}
