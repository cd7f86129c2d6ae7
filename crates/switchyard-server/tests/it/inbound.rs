//! The inbound webhook gateway end to end: sources through the API, deliveries signed by the
//! reference Standard Webhooks library (PyPI `standardwebhooks`), verification failures,
//! atomic dedup under concurrency, processing, the audited payload read, and isolation.

use std::{process::Command, time::Duration};

use serde_json::{Value, json};
use switchyard_test_support::{TestApp, TestBackend, required_test_server};

/// Signs `body` as message `id` at `timestamp` with the reference library; returns the
/// `webhook-signature` header value.
fn reference_signature(python: &str, secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let script = r#"
import sys
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook
secret, msg_id, ts, body = sys.argv[1:5]
print(Webhook(secret).sign(msg_id, datetime.fromtimestamp(int(ts), tz=timezone.utc), body), end="")
"#;
    let output = Command::new(python)
        .args(["-c", script, secret, id, &timestamp.to_string(), body])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

async fn deliver(
    app: &TestApp,
    ingest_url: &str,
    id: &str,
    timestamp: i64,
    signature: &str,
    body: &str,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(ingest_url)
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let _ = app;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_webhooks_deliveries_are_verified_stored_deduplicated_and_processed() {
    let Some(python) = required_test_server("SWITCHYARD_TEST_PEERS_PYTHON") else {
        return;
    };
    for backend in [TestBackend::Sqlite, TestBackend::Postgres] {
        let Some(app) = TestApp::spawn(backend).await else {
            continue;
        };
        let tenant = app.create_tenant("Acme").await;
        let (_, admin) = app.create_api_key(&tenant, "admin").await;
        let (_, read) = app.create_api_key(&tenant, "read").await;
        let other_tenant = app.create_tenant("Other").await;
        let (_, other_admin) = app.create_api_key(&other_tenant, "admin").await;

        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let created = app
            .post(
                "/v1/sources",
                &admin,
                &json!({"name": "orders", "scheme": "standard_webhooks", "secret": secret}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        let source = created.json();
        assert!(
            !created.text().contains(secret),
            "the secret is never shown"
        );
        let ingest_url = source["ingest_url"].as_str().unwrap().to_owned();
        let source_id = source["id"].as_str().unwrap().to_owned();

        // A scheme that needs a secret without one, and `none` without the explicit flag.
        app.post(
            "/v1/sources",
            &admin,
            &json!({"name": "x", "scheme": "github"}),
        )
        .await
        .assert_problem(400, "validation_failed");
        app.post(
            "/v1/sources",
            &admin,
            &json!({"name": "x", "scheme": "none"}),
        )
        .await
        .assert_problem(400, "validation_failed");

        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let body = r#"{"type":"order.created","data":{"id":42}}"#;
        let signature = reference_signature(&python, secret, "msg_1", now, body);
        let (status, accepted) = deliver(&app, &ingest_url, "msg_1", now, &signature, body).await;
        assert_eq!(status, 200, "{accepted}");
        assert_eq!(accepted["duplicate"], false);
        let event_id = accepted["id"].as_str().unwrap().to_owned();

        // The same delivery again is a duplicate pointing at the first event.
        let (status, again) = deliver(&app, &ingest_url, "msg_1", now, &signature, body).await;
        assert_eq!((status, &again["duplicate"]), (200, &json!(true)));
        assert_eq!(again["id"], event_id.as_str());

        // Failures name their reason and store nothing.
        let (status, wrong) = deliver(&app, &ingest_url, "msg_2", now, &signature, body).await;
        assert_eq!(
            (status, wrong["code"].as_str(), wrong["reason"].as_str()),
            (
                401,
                Some("webhook_verification_failed"),
                Some("signature_mismatch")
            )
        );
        let stale = now - 3600;
        let stale_signature = reference_signature(&python, secret, "msg_3", stale, body);
        let (_, old) = deliver(&app, &ingest_url, "msg_3", stale, &stale_signature, body).await;
        assert_eq!(old["reason"], "timestamp_out_of_tolerance");
        let (_, empty) = deliver(&app, &ingest_url, "msg_4", now, "v1,", body).await;
        assert_eq!(empty["code"], "webhook_verification_failed");

        // A hundred copies of one new delivery at once: exactly one is accepted.
        let signature = reference_signature(&python, secret, "msg_burst", now, body);
        let copies =
            (0..100).map(|_| deliver(&app, &ingest_url, "msg_burst", now, &signature, body));
        let results = futures::future::join_all(copies).await;
        assert!(results.iter().all(|(status, _)| *status == 200));
        let fresh = results
            .iter()
            .filter(|(_, body)| body["duplicate"] == false)
            .count();
        assert_eq!(fresh, 1, "exactly one copy is new");

        // Two events stored; the first gets processed into a typed event.
        let mut processed = Value::Null;
        for _ in 0..100 {
            processed = app
                .get(&format!("/v1/inbound-events/{event_id}"), &read)
                .await
                .json();
            if processed["status"] == "processed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(processed["status"], "processed", "{processed}");
        assert_eq!(processed["type"], "order.created");
        assert_eq!(processed["delivery_id"], "msg_1");
        let listed = app
            .get(&format!("/v1/inbound-events?source_id={source_id}"), &read)
            .await;
        assert_eq!(listed.json()["data"].as_array().unwrap().len(), 2);

        // The raw payload: exact bytes for write/admin keys, not for read keys.
        app.get(&format!("/v1/inbound-events/{event_id}/payload"), &read)
            .await
            .assert_problem(403, "insufficient_role");
        let payload = app
            .get(&format!("/v1/inbound-events/{event_id}/payload"), &admin)
            .await;
        assert_eq!(payload.status, 200);
        assert_eq!(payload.text(), body);
        assert_eq!(payload.header("content-type"), Some("application/json"));

        // Another tenant sees none of it.
        for path in [
            format!("/v1/sources/{source_id}"),
            format!("/v1/inbound-events/{event_id}"),
            format!("/v1/inbound-events/{event_id}/payload"),
        ] {
            app.get(&path, &other_admin)
                .await
                .assert_problem(404, "not_found");
        }
        let theirs = app.get("/v1/inbound-events", &other_admin).await.json();
        assert_eq!(theirs["data"].as_array().unwrap().len(), 0);
        app.delete(&format!("/v1/sources/{source_id}"), &other_admin)
            .await
            .assert_problem(404, "not_found");

        // Oversized bodies are refused before verification.
        let big = "x".repeat(1024 * 1024 + 1);
        let (status, too_big) = deliver(&app, &ingest_url, "msg_big", now, "v1,x", &big).await;
        assert_eq!(
            (status, too_big["code"].as_str()),
            (413, Some("payload_too_large"))
        );

        // Deleting the source stops its URL.
        assert_eq!(
            app.delete(&format!("/v1/sources/{source_id}"), &admin)
                .await
                .status,
            204
        );
        let (status, _) = deliver(&app, &ingest_url, "msg_5", now, &signature, body).await;
        assert_eq!(status, 404);
        app.stop().await;
    }
}
