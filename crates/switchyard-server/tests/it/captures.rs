//! Provider call captures of a connection whose manifest enables `limits.capture`: a sync's
//! calls are captured (redacted, without the credential), listed newest first with a cursor,
//! opened by write keys only, and reach no other tenant.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_test_support::standin::StandIn;
use switchyard_test_support::{TestApp, backend_tests};

use crate::providers::support::{seeded_standin, spawn_app_with_manifests, sync, tenant_key};

const TOKEN: &str = "standin-captured-token-9f3e";

struct CaptureApp {
    app: TestApp,
    standin: StandIn,
}

impl switchyard_test_support::BackendFixture for CaptureApp {
    async fn start(backend: switchyard_test_support::TestBackend) -> Option<Self> {
        let app = spawn_app_with_manifests(backend, "captures").await?;
        // 250 items: three pages of 100.
        let standin = seeded_standin(TOKEN, 250).await;
        Some(Self { app, standin })
    }
}

/// The connection's captures once the writer has stored at least `at_least` of them.
async fn captures(app: &TestApp, key: &str, connection: &str, at_least: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let listed = app
            .get(
                &format!("/v1/connections/{connection}/captures?limit=100"),
                key,
            )
            .await;
        assert_eq!(listed.status, 200, "{}", listed.text());
        let data = listed.json()["data"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if data.len() >= at_least || tokio::time::Instant::now() > deadline {
            return data;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

backend_tests! { CaptureApp;
    async fn a_syncs_calls_are_captured_redacted_and_stay_with_their_tenant(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;
        let created = app
            .post("/v1/connections", &key, &json!({
                "provider": "standin-captured",
                "name": "Captured",
                "config": {"base_url": fx.standin.url()},
                "credentials": {"token": TOKEN},
            }))
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let connection = created.json()["id"].as_str().unwrap().to_owned();
        sync(app, &key, &connection, "users").await;

        let listed = captures(app, &key, &connection, 3).await;
        assert_eq!(listed.len(), 3, "one capture per page: {listed:?}");
        for capture in &listed {
            assert_eq!(
                (&capture["method"], &capture["route"], &capture["status"], &capture["attempt"]),
                (&json!("GET"), &json!("/link/items"), &json!(200), &json!(1)),
                "{capture}"
            );
            assert_eq!(capture["connection_id"], json!(connection));
        }
        let ids: Vec<&str> = listed.iter().map(|c| c["id"].as_str().unwrap()).collect();
        let mut newest_first = ids.clone();
        newest_first.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(ids, newest_first);

        // A cursor walks the same list two at a time.
        let first = app.get(&format!("/v1/connections/{connection}/captures?limit=2"), &key).await.json();
        let cursor = first["next_cursor"].as_str().expect("a second page");
        let second = app
            .get(&format!("/v1/connections/{connection}/captures?limit=2&cursor={cursor}"), &key)
            .await
            .json();
        let walked: Vec<&str> = first["data"].as_array().unwrap().iter()
            .chain(second["data"].as_array().unwrap())
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(walked, ids);
        assert!(second["next_cursor"].is_null());

        // Opened: the request went without the credential, the answer's e-mails are redacted.
        let opened = app.get(&format!("/v1/connections/{connection}/captures/{}", ids[0]), &key).await;
        assert_eq!(opened.status, 200, "{}", opened.text());
        let opened = opened.json();
        assert_eq!(opened["id"], json!(ids[0]));
        let records = opened["capture"]["response"]["body"]["value"].as_array().expect("a JSON list");
        assert!(!records.is_empty());
        assert!(records.iter().all(|r| r["email"] == "[redacted]" && r["id"].is_string()), "{records:?}");
        let text = opened.to_string();
        assert!(!text.contains(TOKEN), "the credential is never captured");
        assert!(!text.contains("@example.test"), "{text}");

        // A read key lists but does not open; another tenant reaches neither.
        let tenant = app.get("/v1/connections", &key).await.json()["data"][0]["tenant_id"].as_str().unwrap().to_owned();
        let (_, reader) = app.create_api_key(&tenant, "read").await;
        assert_eq!(app.get(&format!("/v1/connections/{connection}/captures"), &reader).await.status, 200);
        assert_eq!(app.get(&format!("/v1/connections/{connection}/captures/{}", ids[0]), &reader).await.status, 403);
        let other = tenant_key(app).await;
        assert_eq!(app.get(&format!("/v1/connections/{connection}/captures"), &other).await.status, 404);
        assert_eq!(app.get(&format!("/v1/connections/{connection}/captures/{}", ids[0]), &other).await.status, 404);
        // An id that is not one of this connection's.
        assert_eq!(app.get(&format!("/v1/connections/{connection}/captures/cap_01J00000000000000000000000"), &key).await.status, 404);
    }
}
