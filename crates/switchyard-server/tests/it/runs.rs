//! Runs: durable work recorded with its attempts, through the API.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_test_support::{TestApp, TestBackend};

async fn wait_for_status(app: &TestApp, token: &str, run_id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        let run = app.get(&format!("/v1/runs/{run_id}"), token).await;
        assert_eq!(run.status, 200, "{}", run.text());
        last = run.json();
        if last["status"] == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run_id} never reached {status}: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_key_rotation_completes_as_a_recorded_run() {
    for backend in [TestBackend::Sqlite, TestBackend::Postgres] {
        let Some(app) = TestApp::spawn_with(backend, |figment| {
            figment.merge(("vault.key_cache_ttl", "0s"))
        })
        .await
        else {
            continue;
        };
        let tenant = app.create_tenant("Acme").await;
        let (_, admin_key) = app.create_api_key(&tenant, "admin").await;
        let (_, read_key) = app.create_api_key(&tenant, "read").await;
        // The first rotation creates version 1; the second rotates it out.
        let first = app
            .post(
                &format!("/v1/tenants/{tenant}/vault/rotate-dek"),
                &admin_key,
                &json!({}),
            )
            .await;
        assert_eq!(first.status, 202, "{}", first.text());
        let rotated = app
            .post(
                &format!("/v1/tenants/{tenant}/vault/rotate-dek"),
                &admin_key,
                &json!({}),
            )
            .await;
        assert_eq!(rotated.status, 202, "{}", rotated.text());
        let run_id = rotated.json()["run_id"].as_str().unwrap().to_owned();

        // The worker picks the job up once the key cache TTL (here 0 s + 1 s) has passed.
        let run = wait_for_status(&app, &read_key, &run_id, "succeeded").await;
        assert_eq!(run["trigger"], "manual");
        assert_eq!(run["kind"], "vault.complete_dek_rotation");
        assert_eq!(run["subject"], "vault:data-key:2");
        assert_eq!(run["attempts"].as_array().unwrap().len(), 1);
        assert_eq!(run["attempts"][0]["outcome"], "succeeded");
        let keys = app
            .get(&format!("/v1/tenants/{tenant}/vault/data-keys"), &admin_key)
            .await
            .json();
        assert_eq!(
            keys["data"][0]["state"], "retired",
            "the job retired the old key: {keys}"
        );

        let listed = app
            .get("/v1/runs?subject=vault:data-key:2", &read_key)
            .await
            .json();
        assert_eq!(listed["data"][0]["id"], run_id.as_str());
        assert_eq!(listed["data"][0]["status"], "succeeded");
        assert!(
            app.get("/v1/runs?status=failed", &read_key).await.json()["data"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        app.get("/v1/runs?status=done", &read_key)
            .await
            .assert_problem(400, "invalid_query");
        app.post(&format!("/v1/runs/{run_id}/retry"), &read_key, &json!({}))
            .await
            .assert_problem(403, "insufficient_role");
        app.post(&format!("/v1/runs/{run_id}/retry"), &admin_key, &json!({}))
            .await
            .assert_problem(409, "conflict");
        app.get("/v1/runs/run_01JD2S5W8X3Q4R5T6V7W8X9Y0Z", &read_key)
            .await
            .assert_problem(404, "not_found");
        app.get("/v1/runs/not-a-run", &read_key)
            .await
            .assert_problem(400, "invalid_id");
        let platform = app
            .get(&format!("/v1/runs?tenant_id={tenant}"), &app.admin_token)
            .await
            .json();
        assert_eq!(
            platform["data"].as_array().unwrap().len(),
            2,
            "both rotations: {platform}"
        );
        app.stop().await;
    }
}
