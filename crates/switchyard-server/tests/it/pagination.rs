use serde_json::Value;
use switchyard_test_support::{TestApp, backend_tests};

backend_tests! { TestApp;
    async fn follows_cursors_through_every_item_once(app) {
        let mut created = Vec::new();
        for index in 0..7 {
            created.push(app.create_tenant(&format!("tenant {index}")).await);
        }
        let mut seen = Vec::new();
        let mut path = "/v1/tenants?limit=3".to_owned();
        let mut pages = 0;
        loop {
            let page = app.get(&path, &app.admin_token).await;
            assert_eq!(page.status, 200, "{}", page.text());
            let body = page.json();
            seen.extend(body["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()));
            pages += 1;
            match &body["next_cursor"] {
                Value::String(cursor) => path = format!("/v1/tenants?limit=3&cursor={cursor}"),
                Value::Null => break,
                other => panic!("unexpected cursor {other}"),
            }
        }
        assert_eq!(seen, created, "creation order, no gaps, no repeats");
        assert_eq!(pages, 3);
    }

    async fn pages_api_keys(app) {
        let tenant = app.create_tenant("Acme").await;
        for role in ["read", "write", "admin"] {
            app.create_api_key(&tenant, role).await;
        }
        let first = app.get(&format!("/v1/tenants/{tenant}/api-keys?limit=2"), &app.admin_token).await.json();
        assert_eq!(first["data"].as_array().unwrap().len(), 2);
        let cursor = first["next_cursor"].as_str().unwrap();
        let second = app.get(&format!("/v1/tenants/{tenant}/api-keys?limit=2&cursor={cursor}"), &app.admin_token).await.json();
        assert_eq!(second["data"].as_array().unwrap().len(), 1);
        assert_eq!(second["next_cursor"], Value::Null);
    }

    async fn rejects_bad_limits_cursors_and_parameters(app) {
        for query in ["limit=0", "limit=201", "limit=abc", "limit=-1", "sort=name"] {
            app.get(&format!("/v1/tenants?{query}"), &app.admin_token).await.assert_problem(400, "invalid_query");
        }
        for cursor in ["abc", "not-base64!", "a2V5XzAxSkQyUzVXOFgzUTRSNVQ2VjdXOFg5WTBa"] {
            app.get(&format!("/v1/tenants?cursor={cursor}"), &app.admin_token).await.assert_problem(400, "invalid_cursor");
        }
        assert_eq!(app.get("/v1/tenants?limit=200", &app.admin_token).await.status, 200);
    }
}
