//! Tenant isolation: for every tenant-scoped route, a key of tenant B used on tenant A's
//! resources gets 404, exactly like a resource that does not exist (never 200, never 403).
//! Later features add their routes to `tenant_scoped_routes`.

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_test_support::{TestApp, backend_tests};

/// Tenant A's resources, as requests a key of another tenant will try.
struct TenantResources {
    tenant: String,
    key_id: String,
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
    ]
}

backend_tests! { TestApp;
    async fn another_tenants_keys_see_nothing(app) {
        let tenant_a = app.create_tenant("A").await;
        let (key_id_a, key_a) = app.create_api_key(&tenant_a, "admin").await;
        let tenant_b = app.create_tenant("B").await;
        let resources = TenantResources { tenant: tenant_a.clone(), key_id: key_id_a };

        for role in ["admin", "write", "read"] {
            let (_, key_b) = app.create_api_key(&tenant_b, role).await;
            for (method, path, body) in tenant_scoped_routes(&resources) {
                let response = app.send(method.clone(), &path, Some(&key_b), body.as_ref()).await;
                assert_eq!(response.status, 404, "{role} key of B: {method} {path} -> {}", response.text());
                response.assert_problem(404, "not_found");
                assert!(!response.text().contains("\"name\":\"A\""));
            }
        }
        // Nothing B tried changed A: A's key works and A still has exactly one key.
        assert_eq!(app.get(&format!("/v1/tenants/{tenant_a}"), &key_a).await.status, 200);
        let keys = app.get(&format!("/v1/tenants/{tenant_a}/api-keys"), &key_a).await.json();
        assert_eq!(keys["data"].as_array().unwrap().len(), 1);
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
