//! The audit-events API over the tenant's hash chain.

use std::time::Duration;

use serde_json::Value;
use switchyard_audit::{AuditReader, Chain};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{TestApp, backend_tests};

/// Audit entries are written in batches; wait until `count` are visible.
async fn events(app: &TestApp, token: &str, query: &str, count: usize) -> Vec<Value> {
    for _ in 0..100 {
        let page = app.get(&format!("/v1/audit-events{query}"), token).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let data = page.json()["data"].as_array().unwrap().clone();
        if data.len() >= count {
            return data;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {count} audit events for {query}");
}

backend_tests! { TestApp;
    async fn tenant_and_key_changes_form_one_verifiable_chain(app) {
        let tenant = app.create_tenant("Acme").await;
        let (admin_id, admin_key) = app.create_api_key(&tenant, "admin").await;
        let created = app.post(&format!("/v1/tenants/{tenant}/api-keys"), &admin_key, &serde_json::json!({"name": "r", "role": "read"})).await;
        let read_id = created.json()["id"].as_str().unwrap().to_owned();
        let read_key = created.json()["key"].as_str().unwrap().to_owned();
        app.delete(&format!("/v1/tenants/{tenant}/api-keys/{read_id}"), &admin_key).await;

        let all = events(&app, &admin_key, "", 4).await;
        let summary: Vec<(u64, &str, &str, &str)> = all.iter().map(|e| (
            e["seq"].as_u64().unwrap(),
            e["action"].as_str().unwrap(),
            e["actor"]["kind"].as_str().unwrap(),
            e["target"].as_str().unwrap(),
        )).collect();
        let tenant_target = format!("tenant:{tenant}");
        let admin_target = format!("api_key:{admin_id}");
        let read_target = format!("api_key:{read_id}");
        assert_eq!(summary, vec![
            (1, "tenant.create", "platform_admin", tenant_target.as_str()),
            (2, "api_key.create", "platform_admin", admin_target.as_str()),
            (3, "api_key.create", "api_key", read_target.as_str()),
            (4, "api_key.revoke", "api_key", read_target.as_str()),
        ]);
        assert_eq!(all[2]["actor"]["id"], admin_id.as_str(), "the key id, never the key");
        assert!(all.iter().all(|e| e["request_id"].as_str().is_some_and(|id| id.starts_with("req_"))));
        assert_eq!(all[0]["prev_hash"], "0".repeat(64));
        for pair in all.windows(2) {
            assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "each entry links to the one before");
        }

        let revokes = events(&app, &admin_key, "?action=api_key.revoke", 1).await;
        assert_eq!(revokes.len(), 1);
        let first_page = app.get("/v1/audit-events?limit=3", &admin_key).await.json();
        assert_eq!(first_page["data"].as_array().unwrap().len(), 3);
        let cursor = first_page["next_cursor"].as_str().unwrap();
        let second_page = app.get(&format!("/v1/audit-events?limit=3&cursor={cursor}"), &admin_key).await.json();
        assert_eq!(second_page["data"][0]["seq"], 4);
        assert_eq!(events(&app, &app.admin_token, &format!("?tenant_id={tenant}"), 4).await.len(), 4);

        let database = Database::connect(app.database().url(), &DatabaseOptions::default()).await.unwrap();
        let tenant_id = tenant.parse().unwrap();
        let report = AuditReader::new(&database).verify(Chain::Tenant(tenant_id)).await.unwrap();
        assert!(report.is_ok(), "{report}");
        drop(read_key);
    }

    async fn only_admins_read_the_audit_log_and_bad_filters_are_rejected(app) {
        let tenant = app.create_tenant("Acme").await;
        let (_, admin_key) = app.create_api_key(&tenant, "admin").await;
        for role in ["read", "write"] {
            let (_, key) = app.create_api_key(&tenant, role).await;
            app.get("/v1/audit-events", &key).await.assert_problem(403, "insufficient_role");
        }
        for query in ["action=nodots", "since=yesterday", "limit=0", "colour=red"] {
            app.get(&format!("/v1/audit-events?{query}"), &admin_key).await.assert_problem(400, "invalid_query");
        }
        app.get("/v1/audit-events?cursor=zzz", &admin_key).await.assert_problem(400, "invalid_cursor");
    }
}
