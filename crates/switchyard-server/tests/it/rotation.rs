//! Completing a data-key rotation keeps everything sealed with the old key readable: inbound
//! payloads (blob segments), outbound event bodies (`webhook_events.body`) and the kept
//! response bodies of delivery attempts (blob store) are re-sealed onto the new key before the
//! old key is retired. Another tenant's data and keys are left as they were.

use std::{sync::Arc, time::Duration};

use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};
use switchyard_blob::{BlobKey, BlobStore};
use switchyard_outbound::ResponseBodies;
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{BackendFixture, TestApp, TestBackend, backend_tests};
use switchyard_vault::Vault;

/// No key cache (a rotation may complete at once), and deliveries allowed to a local receiver.
struct RotatingApp(TestApp);

impl BackendFixture for RotatingApp {
    async fn start(backend: TestBackend) -> Option<Self> {
        TestApp::spawn_with(backend, |figment| {
            figment
                .merge(("vault.key_cache_ttl", "0s"))
                .merge(("outbound.allow_http", true))
                .merge(("outbound.allow_cidrs", vec!["127.0.0.1/32"]))
                .merge(("outbound.retry_jitter", 0.0))
        })
        .await
        .map(Self)
    }
}

/// A subscriber that answers every request with a body naming its path, so attempts keep one.
async fn start_receiver() -> String {
    let app = axum::Router::new().route(
        "/{*path}",
        post(|uri: axum::http::Uri| async move { format!("ack:{}", uri.path()) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base_url
}

/// What one tenant stored before the rotation.
struct Seeded {
    tenant: String,
    admin: String,
    inbound_id: String,
    inbound_body: String,
    event_id: String,
    event_data: Value,
}

async fn seed(app: &TestApp, receiver: &str, name: &str) -> Seeded {
    let tenant = app.create_tenant(name).await;
    let (_, admin) = app.create_api_key(&tenant, "admin").await;
    let endpoint = app
        .post(
            "/v1/endpoints",
            &admin,
            &json!({"url": format!("{receiver}/{name}")}),
        )
        .await;
    assert_eq!(endpoint.status, 201, "{}", endpoint.text());
    let source = app
        .post(
            "/v1/sources",
            &admin,
            &json!({"name": "gh", "scheme": "none", "allow_unverified": true}),
        )
        .await;
    assert_eq!(source.status, 201, "{}", source.text());
    let inbound_body = format!(r#"{{"tenant":"{name}","number":7}}"#);
    let ingested = reqwest::Client::new()
        .post(source.json()["ingest_url"].as_str().unwrap())
        .header("content-type", "application/json")
        .body(inbound_body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ingested.status(), 200);
    let inbound_id = ingested.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let event_data = json!({"tenant": name, "amount": 42});
    let published = app
        .post(
            "/v1/events",
            &admin,
            &json!({"type": "invoice.paid", "data": event_data, "id": "evt_1"}),
        )
        .await;
    assert_eq!(published.status, 202, "{}", published.text());
    let published = published.json();
    let event_id = published["id"].as_str().unwrap().to_owned();
    // Settle before rotating: the event processed (and fanned out), both deliveries made.
    let mut inbound = Value::Null;
    for _ in 0..200 {
        inbound = app
            .get(&format!("/v1/inbound-events/{inbound_id}"), &admin)
            .await
            .json();
        if inbound["status"] == "processed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(inbound["status"], "processed", "{inbound}");
    let database = connect(app).await;
    for _ in 0..200 {
        if response_body_keys(&database, &tenant).await.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(response_body_keys(&database, &tenant).await.len(), 2);
    Seeded {
        tenant,
        admin,
        inbound_id,
        inbound_body,
        event_id,
        event_data,
    }
}

async fn connect(app: &TestApp) -> Database {
    Database::connect(app.database().url(), &DatabaseOptions::default())
        .await
        .unwrap()
}

/// The text column `statement` selects, with `$1` bound to `parameter`, on either engine.
async fn texts(database: &Database, statement: &str, parameter: &str) -> Vec<String> {
    match database {
        Database::Sqlite(pool) => sqlx::query_scalar(statement)
            .bind(parameter)
            .fetch_all(pool)
            .await
            .unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar(statement)
            .bind(parameter)
            .fetch_all(pool)
            .await
            .unwrap(),
    }
}

async fn one_text(database: &Database, statement: &str, parameter: &str) -> String {
    let mut rows = texts(database, statement, parameter).await;
    assert_eq!(rows.len(), 1, "one row expected from {statement}");
    rows.remove(0)
}

async fn response_body_keys(database: &Database, tenant: &str) -> Vec<String> {
    let statement = "SELECT response_body_key FROM webhook_delivery_attempts \
         WHERE tenant_id = $1 AND response_body_key IS NOT NULL ORDER BY response_body_key";
    texts(database, statement, tenant).await
}

/// The inbound event's segment key.
async fn inbound_segment(database: &Database, id: &str) -> String {
    one_text(
        database,
        "SELECT blob_key FROM inbound_events WHERE id = $1",
        id,
    )
    .await
}

/// The data key version that sealed the event's stored body.
async fn event_body_version(database: &Database, id: &str) -> u32 {
    let body = one_text(
        database,
        "SELECT body FROM webhook_events WHERE id = $1",
        id,
    )
    .await;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    Vault::blob_data_key_version(&sealed).unwrap()
}

async fn key_states(app: &TestApp, seeded: &Seeded) -> Vec<(u64, String)> {
    let keys = app
        .get(
            &format!("/v1/tenants/{}/vault/data-keys", seeded.tenant),
            &seeded.admin,
        )
        .await
        .json();
    keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["version"].as_u64().unwrap(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Every sealed thing of the tenant still opens, and the blobs are sealed with `version`.
async fn assert_readable(app: &TestApp, seeded: &Seeded, version: u32) {
    let database = connect(app).await;
    let payload = app
        .get(
            &format!("/v1/inbound-events/{}/payload", seeded.inbound_id),
            &seeded.admin,
        )
        .await;
    assert_eq!(payload.status, 200, "{}", payload.text());
    assert_eq!(payload.text(), seeded.inbound_body);
    let event = app
        .get(&format!("/v1/events/{}", seeded.event_id), &seeded.admin)
        .await;
    assert_eq!(event.status, 200, "{}", event.text());
    assert_eq!(event.json()["payload"]["data"], seeded.event_data);
    assert_eq!(
        event_body_version(&database, &seeded.event_id).await,
        version
    );

    let store = BlobStore::open(&app.config.blob, &app.config.data_dir)
        .await
        .unwrap();
    let vault = {
        let mut config = app.config.clone();
        config.vault.key_cache_ttl = Duration::ZERO;
        switchyard_server::vault_setup::open_vault(&config, &database)
            .await
            .unwrap()
    };
    let bodies = ResponseBodies::new(store.clone(), Some(Arc::new(vault)));
    let tenant = seeded.tenant.parse().unwrap();
    let keys = response_body_keys(&database, &seeded.tenant).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in keys {
        let body = bodies.get(tenant, &key).await.unwrap();
        let name = String::from_utf8(body).unwrap();
        assert!(name.starts_with("ack:/"), "{name}");
        let sealed = store.get(&key.parse::<BlobKey>().unwrap()).await.unwrap();
        assert_eq!(Vault::blob_data_key_version(&sealed).unwrap(), version);
    }
}

backend_tests! { RotatingApp;
    async fn completed_rotation_reseals_payloads_event_and_response_bodies(fixture) {
        let app = fixture.0;
        let receiver = start_receiver().await;
        let rotated = seed(&app, &receiver, "acme").await;
        let untouched = seed(&app, &receiver, "other").await;
        let database = connect(&app).await;
        let segment_before = inbound_segment(&database, &rotated.inbound_id).await;
        let other_segment = inbound_segment(&database, &untouched.inbound_id).await;
        assert_eq!(event_body_version(&database, &rotated.event_id).await, 1);

        let tenant = &rotated.tenant;
        let started = app
            .post(&format!("/v1/tenants/{tenant}/vault/rotate-dek"), &rotated.admin, &json!({}))
            .await;
        assert_eq!(started.status, 202, "{}", started.text());
        assert_eq!(started.json()["version"], 2);
        let completed = app
            .post(&format!("/v1/tenants/{tenant}/vault/complete-dek-rotation"), &rotated.admin, &json!({}))
            .await;
        assert_eq!(completed.status, 200, "{}", completed.text());
        let completed = completed.json();
        assert!(completed["resealed"]["inbound_payloads"].is_u64(), "{completed}");
        // Repeating it (as the server's own delayed job does) finds nothing left to move.
        let again = app
            .post(&format!("/v1/tenants/{tenant}/vault/complete-dek-rotation"), &rotated.admin, &json!({}))
            .await;
        assert_eq!(again.status, 200, "{}", again.text());
        let again = again.json();
        assert_eq!(
            again["resealed"],
            json!({"inbound_payloads": 0, "event_bodies": 0, "response_bodies": 0}),
            "{again}"
        );
        assert_eq!(again["retired"], json!([]));

        assert_eq!(
            key_states(&app, &rotated).await,
            [(1, "retired".to_owned()), (2, "active".to_owned())]
        );
        assert_readable(&app, &rotated, 2).await;
        // The payload moved to a new segment of the same day.
        let segment_after = inbound_segment(&database, &rotated.inbound_id).await;
        assert_ne!(segment_after, segment_before);
        let (before, after) = (
            segment_before.parse::<BlobKey>().unwrap(),
            segment_after.parse::<BlobKey>().unwrap(),
        );
        assert_eq!((after.tenant(), after.kind(), after.date()), (before.tenant(), before.kind(), before.date()));

        // The other tenant: same key, same segment, same ciphertexts' key version.
        assert_eq!(key_states(&app, &untouched).await, [(1, "active".to_owned())]);
        assert_eq!(inbound_segment(&database, &untouched.inbound_id).await, other_segment);
        assert_readable(&app, &untouched, 1).await;
    }
}
