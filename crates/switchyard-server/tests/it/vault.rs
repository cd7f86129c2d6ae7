//! Tenant deletion with crypto-shredding, and data-key rotation through the API.

use std::time::Duration;

use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{TestApp, TestBackend, backend_tests};
use switchyard_vault::{SecretRef, Vault, VaultError};

/// A vault on the app's database and key file, as another process would open it, without a
/// key cache so every read goes to the database.
async fn another_process_vault(app: &TestApp) -> Vault {
    let mut config = app.config.clone();
    config.vault.key_cache_ttl = Duration::ZERO;
    let database = Database::connect(app.database().url(), &DatabaseOptions::default())
        .await
        .unwrap();
    switchyard_server::vault_setup::open_vault(&config, &database)
        .await
        .unwrap()
}

async fn spawn_without_key_cache(backend: TestBackend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |figment| {
        figment.merge(("vault.key_cache_ttl", "0s"))
    })
    .await
}

backend_tests! { TestApp;
    async fn deleting_a_tenant_shreds_its_secrets_and_hides_it(app) {
        let doomed = app.create_tenant("Doomed").await;
        let kept = app.create_tenant("Kept").await;
        let (_, doomed_key) = app.create_api_key(&doomed, "admin").await;
        let vault = another_process_vault(&app).await;
        let doomed_secret = vault.put(&doomed, "github/token", b"ghp_doomed").await.unwrap().reference;
        let kept_secret = vault.put(&kept, "github/token", b"ghp_kept").await.unwrap().reference;

        app.delete(&format!("/v1/tenants/{doomed}"), &doomed_key).await.assert_problem(403, "insufficient_role");
        let deleted = app.delete(&format!("/v1/tenants/{doomed}"), &app.admin_token).await;
        assert_eq!(deleted.status, 200, "{}", deleted.text());
        let body = deleted.json();
        assert_eq!(body["id"], doomed.as_str());
        assert!(body["deleted_at"].is_string() && body["purge_after"].is_string());

        let error = vault.resolve(&doomed_secret).await.unwrap_err();
        assert!(matches!(error, VaultError::TenantShredded { .. } | VaultError::SecretDestroyed { .. }), "{error:?}");
        assert_eq!(vault.resolve(&kept_secret).await.unwrap().expose(), b"ghp_kept", "other tenants are untouched");

        app.get(&format!("/v1/tenants/{doomed}"), &app.admin_token).await.assert_problem(404, "not_found");
        app.get(&format!("/v1/tenants/{doomed}"), &doomed_key).await.assert_problem(401, "unauthenticated");
        let listed = app.get("/v1/tenants", &app.admin_token).await.json();
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        app.delete(&format!("/v1/tenants/{doomed}"), &app.admin_token).await.assert_problem(404, "not_found");

        let audit = app.get(&format!("/v1/audit-events?tenant_id={doomed}"), &app.admin_token).await.json();
        let actions: Vec<&str> = audit["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert!(actions.ends_with(&["tenant.shred", "tenant.delete"]), "{actions:?}");
    }

    async fn secrets_written_after_deletion_are_refused(app) {
        let doomed = app.create_tenant("Doomed").await;
        let vault = another_process_vault(&app).await;
        vault.put(&doomed, "a", b"one").await.unwrap();
        assert_eq!(app.delete(&format!("/v1/tenants/{doomed}"), &app.admin_token).await.status, 200);
        let error = vault.put(&doomed, "b", b"two").await.unwrap_err();
        assert!(matches!(error, VaultError::TenantShredded { .. }), "{error:?}");
    }

    async fn data_key_rotation_waits_for_the_key_cache(app) {
        let tenant = app.create_tenant("Acme").await;
        let vault = another_process_vault(&app).await;
        vault.put(&tenant, "slack/bot", b"xoxb-1").await.unwrap();
        let rotated = app.post(&format!("/v1/tenants/{tenant}/vault/rotate-dek"), &app.admin_token, &serde_json::json!({})).await;
        assert_eq!(rotated.status, 202, "{}", rotated.text());
        assert_eq!(rotated.json()["version"], 2);
        let keys = app.get(&format!("/v1/tenants/{tenant}/vault/data-keys"), &app.admin_token).await.json();
        let states: Vec<(u64, &str)> = keys["data"].as_array().unwrap().iter()
            .map(|k| (k["version"].as_u64().unwrap(), k["state"].as_str().unwrap())).collect();
        assert_eq!(states, vec![(1, "decrypt_only"), (2, "active")]);
        assert!(keys["data"][1]["kek_id"].as_str().unwrap().starts_with("file:"));
        // The default key cache is 5 minutes: other processes may still use version 1.
        let early = app.post(&format!("/v1/tenants/{tenant}/vault/complete-dek-rotation"), &app.admin_token, &serde_json::json!({})).await;
        early.assert_problem(409, "conflict");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_rotation_reencrypts_and_retires_the_old_key() {
    for backend in [TestBackend::Sqlite, TestBackend::Postgres] {
        let Some(app) = spawn_without_key_cache(backend).await else {
            continue;
        };
        let tenant = app.create_tenant("Acme").await;
        let (_, admin_key) = app.create_api_key(&tenant, "admin").await;
        let vault = another_process_vault(&app).await;
        let secret: SecretRef = vault
            .put(&tenant, "slack/bot", b"xoxb-1")
            .await
            .unwrap()
            .reference;
        let rotated = app
            .post(
                &format!("/v1/tenants/{tenant}/vault/rotate-dek"),
                &admin_key,
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(rotated.status, 202);
        let completed = app
            .post(
                &format!("/v1/tenants/{tenant}/vault/complete-dek-rotation"),
                &admin_key,
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(completed.status, 200, "{}", completed.text());
        // The server's own delayed completion may have won the race; the end state is the same.
        let keys = app
            .get(&format!("/v1/tenants/{tenant}/vault/data-keys"), &admin_key)
            .await
            .json();
        assert_eq!(keys["data"][0]["state"], "retired");
        assert_eq!(keys["data"][0]["kek_id"], serde_json::Value::Null);
        assert_eq!(
            vault.resolve(&secret).await.unwrap().expose(),
            b"xoxb-1",
            "re-encrypted, still readable"
        );
        let audit = app
            .get("/v1/audit-events?action=dek.rotate", &admin_key)
            .await
            .json();
        assert!(audit["data"].as_array().unwrap().len() >= 2, "{audit}");
    }
}
