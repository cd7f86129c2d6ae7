//! Connections end to end against the stand-in provider: the catalogue, creating a
//! connection (its credential into the vault), testing it, syncing a stream as a run,
//! reading the change stream (raw and unified), actions with idempotency, credential
//! rotation, schedules, deletion, bad input, and tenant isolation.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_test_support::standin::{Item, StandIn};
use switchyard_test_support::{TestApp, backend_tests};

use crate::providers::support::{
    finished_run, seeded_standin, spawn_app_with_manifests, stream_runs, sync, tenant_key,
};

const TOKEN: &str = "standin-connection-token";

/// The server allowed to call the stand-in on 127.0.0.1, with the stand-in manifests.
pub struct ConnectorApp {
    pub app: TestApp,
    pub standin: StandIn,
}

impl switchyard_test_support::BackendFixture for ConnectorApp {
    async fn start(backend: switchyard_test_support::TestBackend) -> Option<Self> {
        let app = spawn_app_with_manifests(backend, "").await?;
        let standin = seeded_standin(TOKEN, 250).await;
        Some(Self { app, standin })
    }
}

impl ConnectorApp {
    pub async fn connect(&self, key: &str, provider: &str, name: &str) -> Value {
        let created = self
            .app
            .post(
                "/v1/connections",
                key,
                &json!({
                    "provider": provider,
                    "name": name,
                    "config": {"base_url": self.standin.url(), "installation_id": "42"},
                    "credentials": {"token": TOKEN},
                }),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        created.json()
    }
}

/// The types of the outbound events published with `webhook_id`.
async fn event_types(app: &TestApp, webhook_id: &str) -> Vec<String> {
    use switchyard_store::{Database, DatabaseOptions};
    let database = Database::connect(app.database().url(), &DatabaseOptions::default())
        .await
        .unwrap();
    let sql = "SELECT event_type FROM webhook_events WHERE webhook_id = $1";
    match &database {
        Database::Sqlite(pool) => sqlx::query_scalar(sql)
            .bind(webhook_id)
            .fetch_all(pool)
            .await
            .unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar(sql)
            .bind(webhook_id)
            .fetch_all(pool)
            .await
            .unwrap(),
    }
}

/// Every change of a stream, following `next_cursor`, from `cursor`.
async fn changes(
    app: &TestApp,
    key: &str,
    connection: &str,
    query: &str,
    mut cursor: Option<String>,
) -> (Vec<Value>, String) {
    let mut all = Vec::new();
    loop {
        let mut path = format!("/v1/connections/{connection}/records/users?limit=100{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let body = page.json();
        all.extend(body["data"].as_array().unwrap().iter().cloned());
        cursor = Some(body["next_cursor"].as_str().unwrap().to_owned());
        if body["has_more"] == false {
            return (all, cursor.unwrap());
        }
    }
}

backend_tests! { ConnectorApp;
    async fn a_connection_syncs_acts_and_goes(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;

        // The catalogue lists the stand-in connectors with their streams and actions.
        let providers = app.get("/v1/providers", &key).await.json();
        let link = providers.as_array().unwrap().iter().find(|p| p["id"] == "standin-link").unwrap().clone();
        assert_eq!(link["streams"][0]["incremental"], "etag");
        assert_eq!(link["streams"][0]["unified_model"], "identity");
        assert_eq!(link["auth_modes"][0]["credential_fields"], json!(["token"]));
        assert_eq!(app.get("/v1/providers/standin-link", &key).await.json()["actions"][0]["name"], "create_user");

        let connection = fx.connect(&key, "standin-link", "Stand-in").await;
        let id = connection["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("conn_"));
        assert_eq!(connection["auth_mode"], "bearer");
        assert_eq!(connection["credential_version"], 1);
        assert!(!connection.to_string().contains(TOKEN), "the credential never comes back");

        let test = app.post(&format!("/v1/connections/{id}/test"), &key, &json!({})).await.json();
        assert_eq!(test["success"], true, "{test}");
        assert_eq!(test["permissions_verified"], json!(["items:read", "items:write"]));

        // A sync is a run with counters; its records come back as an ordered change stream.
        let run = sync(app, &key, &id, "users").await;
        assert_eq!(run["counters"]["records_added"], 250, "{run}");
        assert_eq!(run["counters"]["pages"], 3, "{run}");
        let (first, cursor) = changes(app, &key, &id, "", None).await;
        assert_eq!(first.len(), 250);
        assert!(first.iter().all(|c| c["change"] == "added"));
        assert!(first.iter().all(|c| c["run_id"] == run["id"]), "the changes are the sync run's");
        assert_eq!(first[0]["seq"], 1);
        assert_eq!(first[0]["record"]["id"], "u00001");

        // Changes at the provider: the next sync stores exactly them, after the cursor.
        fx.standin.advance(Duration::from_secs(60));
        let mut item = fx.standin.get("u00002").unwrap();
        item.name = "Renamed".into();
        fx.standin.upsert(item);
        fx.standin.delete("u00003").unwrap();
        fx.standin.upsert(Item::new("u99999", "New", "new@example.test"));
        let run = sync(app, &key, &id, "users").await;
        assert_eq!(
            (&run["counters"]["records_added"], &run["counters"]["records_updated"], &run["counters"]["records_deleted"]),
            (&json!(1), &json!(1), &json!(1)),
            "{run}"
        );
        let (later, _) = changes(app, &key, &id, "", Some(cursor.clone())).await;
        let kinds: Vec<(&str, &str)> = later.iter().map(|c| (c["change"].as_str().unwrap(), c["primary_key"].as_str().unwrap())).collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(kinds.contains(&("updated", "u00002")) && kinds.contains(&("deleted", "u00003")) && kinds.contains(&("added", "u99999")), "{kinds:?}");

        // The unified form.
        let (unified, _) = changes(app, &key, &id, "&model=identity", None).await;
        assert_eq!(unified[0]["record"], json!({"id": "u00001", "email": "user1@example.test", "name": "User 1", "status": "active", "source": "standin-link"}));
        assert!(unified.iter().all(|c| c["mapping_error"].is_null()));

        // The sync announced its changes to the outbound fan-out, once, under the run's id.
        let announced = event_types(app, &format!("sync_{}", run["id"].as_str().unwrap())).await;
        assert_eq!(announced, vec!["standin-link.users.changed"]);

        // Actions: input checked, provider idempotency key passed, the same key replays.
        let body = json!({"input": {"name": "Ada", "email": "ada@example.test"}});
        let send = |key_header: &'static str| {
            app.send_request(
                app.client
                    .post(app.url(&format!("/v1/connections/{id}/actions/create_user")))
                    .bearer_auth(&key)
                    .header("idempotency-key", key_header)
                    .json(&body),
            )
        };
        let created = send("action-key-1").await;
        assert_eq!(created.status, 200, "{}", created.text());
        assert_eq!(created.json()["output"]["name"], "Ada");
        let replayed = send("action-key-1").await;
        assert_eq!(replayed.json()["output"], created.json()["output"]);
        assert_eq!(fx.standin.items().iter().filter(|i| i.name == "Ada").count(), 1);
        let action_run = finished_run(app, &key, created.json()["run_id"].as_str().unwrap()).await;
        assert_eq!(action_run["status"], "succeeded");

        // A schedule per stream.
        let set = app
            .send_request(
                app.client
                    .put(app.url(&format!("/v1/connections/{id}/syncs/users")))
                    .bearer_auth(&key)
                    .json(&json!({"schedule": {"type": "interval", "every_seconds": 3600}})),
            )
            .await;
        assert_eq!(set.status, 200, "{}", set.text());
        assert_eq!(set.json()["enabled"], true);
        let syncs = app.get(&format!("/v1/connections/{id}/syncs"), &key).await.json();
        assert_eq!(syncs[0]["schedule"]["every_seconds"], 3600);
        assert!(syncs[0]["checkpoint_at"].is_string());

        // Deleting the connection takes its records and its schedule with it.
        assert_eq!(app.delete(&format!("/v1/connections/{id}"), &key).await.status, 204);
        app.get(&format!("/v1/connections/{id}"), &key).await.assert_problem(404, "not_found");
        app.get(&format!("/v1/connections/{id}/records/users"), &key).await.assert_problem(404, "not_found");
    }

    async fn credentials_rotate_only_once_the_new_one_works(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;
        let connection = fx.connect(&key, "standin-link", "Stand-in").await;
        let id = connection["id"].as_str().unwrap();
        let path = format!("/v1/connections/{id}/credentials/rotate");
        let rotate = |token: &'static str| {
            let (path, key) = (path.clone(), key.clone());
            async move { app.post(&path, &key, &json!({"credentials": {"token": token}})).await }
        };

        let refused = rotate("not-the-right-token").await;
        assert_eq!(refused.status, 200, "{}", refused.text());
        let refused = refused.json();
        assert_eq!(refused["rotated"], false);
        assert_eq!(refused["test"]["error_code"], "auth_failed");
        assert_eq!(refused["connection"]["credential_version"], 1);
        // The old credential is still the one in use.
        assert_eq!(app.post(&format!("/v1/connections/{id}/test"), &key, &json!({})).await.json()["success"], true);

        let accepted = rotate(TOKEN).await.json();
        assert_eq!(accepted["rotated"], true, "{accepted}");
        assert!(accepted["connection"]["credential_version"].as_u64().unwrap() > 1);
        assert_eq!(app.post(&format!("/v1/connections/{id}/test"), &key, &json!({})).await.json()["success"], true);
    }

    async fn bad_requests_get_clear_errors(fx) {
        let app = &fx.app;
        let tenant = app.create_tenant("Acme").await;
        let (_, key) = app.create_api_key(&tenant, "write").await;
        let create = |body: Value| {
            let key = key.clone();
            async move { app.post("/v1/connections", &key, &body).await }
        };
        let base = || json!({"provider": "standin-link", "name": "x", "config": {"base_url": fx.standin.url()}, "credentials": {"token": TOKEN}});

        let mut body = base();
        body["provider"] = json!("nope");
        create(body).await.assert_problem(404, "not_found");
        let mut body = base();
        body["config"] = json!({});
        let problem = create(body).await.assert_problem(400, "validation_failed");
        assert!(problem["detail"].as_str().unwrap().contains("base_url"), "{problem}");
        let mut body = base();
        body["credentials"] = json!({"password": "x"});
        let problem = create(body).await.assert_problem(400, "validation_failed");
        assert!(problem["detail"].as_str().unwrap().contains("token"), "{problem}");
        let mut body = base();
        body["auth_mode"] = json!("basic");
        create(body).await.assert_problem(400, "validation_failed");
        let mut body = base();
        body["surprise"] = json!(1);
        create(body).await.assert_problem(400, "invalid_body");
        assert_eq!(create(base()).await.status, 201);
        create(base()).await.assert_problem(409, "conflict");

        let list = app.get("/v1/connections", &key).await.json();
        let id = list["data"][0]["id"].as_str().unwrap().to_owned();
        app.post(&format!("/v1/connections/{id}/syncs/nothing/run"), &key, &json!({})).await.assert_problem(404, "not_found");
        app.get(&format!("/v1/connections/{id}/records/users?model=planet"), &key).await.assert_problem(400, "invalid_query");
        app.get(&format!("/v1/connections/{id}/records/users?model=group"), &key).await.assert_problem(400, "invalid_query");
        app.get(&format!("/v1/connections/{id}/records/users?cursor=zzz"), &key).await.assert_problem(400, "invalid_cursor");
        fx.standin.clear_requests();
        let problem = app
            .post(&format!("/v1/connections/{id}/actions/create_user"), &key, &json!({"input": {"name": ""}}))
            .await
            .assert_problem(400, "validation_failed");
        assert!(problem["detail"].as_str().unwrap().contains("email"), "{problem}");
        assert!(fx.standin.requests().is_empty(), "nothing was sent for bad input");
        app.post(&format!("/v1/connections/{id}/actions/nope"), &key, &json!({})).await.assert_problem(404, "not_found");
        app.get("/v1/connections/conn_nope", &key).await.assert_problem(400, "invalid_id");

        // A read key reads but does not write.
        let (_, reader) = app.create_api_key(&tenant, "read").await;
        assert_eq!(app.get(&format!("/v1/connections/{id}"), &reader).await.status, 200);
        app.post(&format!("/v1/connections/{id}/syncs/users/run"), &reader, &json!({})).await.assert_problem(403, "insufficient_role");

        // A provider failing mid-sync fails the run with its class, and nothing is lost.
        fx.standin.fail_next("/link/items", 401, 1);
        let started = app.post(&format!("/v1/connections/{id}/syncs/users/run"), &key, &json!({})).await.json();
        let run = finished_run(app, &key, started["run_id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["error"]["class"], "auth", "{run}");
    }

    async fn another_tenant_reaches_nothing(fx) {
        let app = &fx.app;
        let acme = app.create_tenant("Acme").await;
        let (_, acme_key) = app.create_api_key(&acme, "admin").await;
        let globex = app.create_tenant("Globex").await;
        let (_, globex_key) = app.create_api_key(&globex, "admin").await;
        let connection = fx.connect(&acme_key, "standin-link", "Stand-in").await;
        let id = connection["id"].as_str().unwrap();
        sync(app, &acme_key, id, "users").await;

        assert_eq!(app.get("/v1/connections", &globex_key).await.json()["data"], json!([]));
        for path in [
            format!("/v1/connections/{id}"),
            format!("/v1/connections/{id}/records/users"),
            format!("/v1/connections/{id}/syncs"),
            format!("/v1/connections/{id}/health"),
        ] {
            app.get(&path, &globex_key).await.assert_problem(404, "not_found");
        }
        for path in [
            format!("/v1/connections/{id}/test"),
            format!("/v1/connections/{id}/syncs/users/run"),
            format!("/v1/connections/{id}/syncs/users/reset"),
            format!("/v1/connections/{id}/actions/create_user"),
            format!("/v1/connections/{id}/credentials/rotate"),
        ] {
            let body = json!({"input": {"name": "x", "email": "x@example.test"}, "credentials": {"token": "x"}});
            let body = if path.ends_with("rotate") { json!({"credentials": {"token": "x"}}) } else if path.contains("actions") { json!({"input": body["input"]}) } else { json!({}) };
            let answer = app.post(&path, &globex_key, &body).await;
            assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        }
        app.delete(&format!("/v1/connections/{id}"), &globex_key).await.assert_problem(404, "not_found");
        // Still there for its owner, untouched.
        let (records, _) = changes(app, &acme_key, id, "", None).await;
        assert_eq!(records.len(), 250);
    }
}

backend_tests! { ConnectorApp;
    async fn webhooks_of_a_linked_source_trigger_the_streams_sync(fx) {
        let app = &fx.app;
        let key = tenant_key(app).await;
        let connection = fx.connect(&key, "standin-link", "Stand-in").await;
        let id = connection["id"].as_str().unwrap().to_owned();
        let secret = "it-connector-webhook-secret";
        let source = app
            .post("/v1/sources", &key, &json!({"name": "stand-in", "scheme": "github", "secret": secret, "connection_id": id}))
            .await;
        assert_eq!(source.status, 201, "{}", source.text());
        let ingest = source.json()["ingest_url"].as_str().unwrap().to_owned();
        let deliver = |event: &'static str, delivery: &'static str, body: Value| {
            let ingest = ingest.clone();
            async move {
                let body = serde_json::to_vec(&body).unwrap();
                let answer = reqwest::Client::new()
                    .post(&ingest)
                    .header("content-type", "application/json")
                    .header("x-github-event", event)
                    .header("x-github-delivery", delivery)
                    .header("x-hub-signature-256", switchyard_test_support::standin::github_signature(secret.as_bytes(), &body))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(answer.status().is_success(), "{}", answer.status());
            }
        };

        // Another installation's event is not this connection's; a ping does nothing.
        deliver("member", "d-1", json!({"action": "added", "installation": {"id": 7}})).await;
        deliver("ping", "d-2", json!({"zen": "hi", "installation": {"id": 42}})).await;
        // This one names the `users` stream's sync.
        deliver("member", "d-3", json!({"action": "added", "installation": {"id": 42}})).await;

        let mut synced = false;
        for _ in 0..200 {
            let runs = stream_runs(app, &key, &id, "users").await;
            if runs.iter().any(|r| r["status"] == "succeeded") {
                synced = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(synced, "the webhook's sync never succeeded");
        // Give the other two events time to be processed too: they must not add a sync.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let runs = stream_runs(app, &key, &id, "users").await;
        assert_eq!(runs.len(), 1, "one sync, from the one event that asks for it: {runs:?}");
        assert_eq!(runs[0]["trigger"], "webhook");
        assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
        let (records, _) = changes(app, &key, &id, "", None).await;
        assert_eq!(records.len(), 250);
    }
}

/// Rows of `table` that belong to `tenant`.
async fn tenant_rows(app: &TestApp, table: &str, tenant: &str) -> i64 {
    use switchyard_store::{Database, DatabaseOptions};
    let database = Database::connect(app.database().url(), &DatabaseOptions::default())
        .await
        .unwrap();
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1");
    match &database {
        Database::Sqlite(pool) => sqlx::query_scalar(&sql)
            .bind(tenant)
            .fetch_one(pool)
            .await
            .unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar(&sql)
            .bind(tenant)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

backend_tests! { ConnectorApp;
    async fn deleting_a_tenant_deletes_its_synced_data(fx) {
        let app = &fx.app;
        let tenant = app.create_tenant("Acme").await;
        let (_, key) = app.create_api_key(&tenant, "write").await;
        let connection = fx.connect(&key, "standin-link", "Stand-in").await;
        sync(app, &key, connection["id"].as_str().unwrap(), "users").await;
        assert_eq!(tenant_rows(app, "records", &tenant).await, 250);
        let deleted = app.delete(&format!("/v1/tenants/{tenant}"), &app.admin_token).await;
        assert_eq!(deleted.status, 200, "{}", deleted.text());
        for table in ["connections", "sync_streams", "records", "record_changes"] {
            assert_eq!(tenant_rows(app, table, &tenant).await, 0, "{table}");
        }
    }
}
