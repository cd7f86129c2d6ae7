//! Online KEK rotation from the local key file to AWS KMS (moto), as an operator does it:
//! rolling restart with the new KEK primary and the old one secondary, `switchyard vault
//! rotate-kek` while the server serves, then a restart with KMS alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, time::Duration};

use serde_json::Value;
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{
    ServerProcess, TestDatabase, process::clean_command, required_test_server,
};
use switchyard_vault::{AwsKmsConfig, StaticCredentials, Vault, VaultOptions, storage_for};

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");

fn run(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = clean_command(Path::new(BINARY), args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn create_kms_key(moto: &str) -> String {
    let mut config = AwsKmsConfig::new("unused");
    config.region = Some("us-east-1".to_owned());
    config.endpoint_url = Some(moto.to_owned());
    config.credentials = Some(StaticCredentials {
        access_key_id: "testing".to_owned(),
        secret_access_key: "testing".to_owned().into(),
        session_token: None,
    });
    let key = config.client().await.create_key().send().await.unwrap();
    key.key_metadata().unwrap().key_id().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_from_a_key_file_to_kms_while_serving() {
    let Some(moto) = required_test_server("SWITCHYARD_TEST_MOTO_URL") else {
        return;
    };
    let database = TestDatabase::sqlite();
    let data_dir = database.path("data");
    let data_dir_text = data_dir.to_str().unwrap().to_owned();
    let db_args = ["--database-url", database.url()];

    // 1. A server on the default key file; a tenant with a secret and a rotated data key.
    let server = ServerProcess::start(Path::new(BINARY), &data_dir, &db_args, "info");
    let url = server.url();
    let tenant: Value = serde_json::from_str(&run(
        &[
            "tenant",
            "create",
            "--name",
            "Acme",
            "--json",
            "--url",
            &url,
            "--data-dir",
            &data_dir_text,
        ],
        &[],
    ))
    .unwrap();
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    let pool = Database::connect(database.url(), &DatabaseOptions::default())
        .await
        .unwrap();
    let file_vault = Vault::open(
        storage_for(&pool),
        &switchyard_vault::KekConfig::KeyFile {
            path: data_dir.join("master.key"),
        },
        VaultOptions::default(),
    )
    .await
    .unwrap();
    let secret = file_vault
        .put(&tenant, "okta/token", b"00a-okta-api-token")
        .await
        .unwrap()
        .reference;
    let Database::Sqlite(sqlite) = &pool else {
        unreachable!()
    };
    let ciphertext_before: Vec<u8> =
        sqlx::query_scalar("SELECT ciphertext FROM vault_secrets WHERE tenant_id = $1")
            .bind(&tenant)
            .fetch_one(sqlite)
            .await
            .unwrap();
    server.terminate();

    // 2. Rolling restart: KMS primary, the key file secondary.
    let key_id = create_kms_key(&moto).await;
    let kms_env = [
        ("SWITCHYARD_VAULT__KEK__PROVIDER", "aws_kms"),
        ("SWITCHYARD_VAULT__KEK__KEY_ID", key_id.as_str()),
        ("SWITCHYARD_VAULT__KEK__REGION", "us-east-1"),
        ("SWITCHYARD_VAULT__KEK__ENDPOINT_URL", moto.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let mut both_env = kms_env.to_vec();
    both_env.push(("SWITCHYARD_VAULT__SECONDARY_KEK__PROVIDER", "file"));
    let server =
        ServerProcess::start_with_env(Path::new(BINARY), &data_dir, &db_args, "info", &both_env);
    let url = server.url();

    // 3. Re-wrap everything under KMS while the server serves.
    let rotate_args = [
        "vault",
        "rotate-kek",
        "--data-dir",
        data_dir_text.as_str(),
        "--database-url",
        database.url(),
    ];
    let report = run(&rotate_args, &both_env);
    assert!(
        report.contains("re-wrapped") && report.contains("aws-kms:"),
        "{report}"
    );
    let rotated = run(
        &[
            "vault",
            "rotate-dek",
            "--tenant",
            &tenant,
            "--url",
            &url,
            "--data-dir",
            &data_dir_text,
            "--json",
        ],
        &[],
    );
    assert!(
        rotated.contains("\"version\""),
        "the server keeps serving vault operations: {rotated}"
    );
    let keys: Value = serde_json::from_str(&run(
        &[
            "vault",
            "data-keys",
            "--tenant",
            &tenant,
            "--url",
            &url,
            "--data-dir",
            &data_dir_text,
            "--json",
        ],
        &[],
    ))
    .unwrap();
    for key in keys["data"].as_array().unwrap() {
        assert!(
            key["kek_id"].as_str().unwrap().starts_with("aws-kms:"),
            "{keys}"
        );
    }
    server.terminate();

    // 4. KMS alone is enough now; the secret was never re-encrypted.
    let server =
        ServerProcess::start_with_env(Path::new(BINARY), &data_dir, &db_args, "info", &kms_env);
    server.terminate();
    let ciphertext_after: Vec<u8> = sqlx::query_scalar(
        "SELECT ciphertext FROM vault_secrets WHERE tenant_id = $1 AND version = 1",
    )
    .bind(&tenant)
    .fetch_one(sqlite)
    .await
    .unwrap();
    assert_eq!(
        ciphertext_before, ciphertext_after,
        "no secret is re-encrypted by a KEK rotation"
    );
    let mut kms = AwsKmsConfig::new(key_id.clone());
    kms.region = Some("us-east-1".to_owned());
    kms.endpoint_url = Some(moto.clone());
    kms.credentials = Some(StaticCredentials {
        access_key_id: "testing".to_owned(),
        secret_access_key: "testing".to_owned().into(),
        session_token: None,
    });
    let kms_vault = Vault::open(
        storage_for(&pool),
        &switchyard_vault::KekConfig::AwsKms(kms),
        VaultOptions {
            cache_ttl: Duration::ZERO,
            ..VaultOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        kms_vault.resolve(&secret).await.unwrap().expose(),
        b"00a-okta-api-token"
    );
}

/// `rotate-kek --to` for a single-process deployment: stop, re-wrap under a KEK that is not
/// configured yet, then start with only that KEK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_to_an_unconfigured_env_key_with_to() {
    let database = TestDatabase::sqlite();
    let data_dir = database.path("data");
    let data_dir_text = data_dir.to_str().unwrap().to_owned();
    let db_args = ["--database-url", database.url()];
    let server = ServerProcess::start(Path::new(BINARY), &data_dir, &db_args, "info");
    let url = server.url();
    let tenant: Value = serde_json::from_str(&run(
        &[
            "tenant",
            "create",
            "--name",
            "Acme",
            "--json",
            "--url",
            &url,
            "--data-dir",
            &data_dir_text,
        ],
        &[],
    ))
    .unwrap();
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    run(
        &[
            "vault",
            "rotate-dek",
            "--tenant",
            &tenant,
            "--url",
            &url,
            "--data-dir",
            &data_dir_text,
        ],
        &[],
    );
    server.terminate();

    let new_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let report = run(
        &[
            "vault",
            "rotate-kek",
            "--to",
            "env",
            "--data-dir",
            &data_dir_text,
            "--database-url",
            database.url(),
        ],
        &[("SWITCHYARD_VAULT_NEW_KEK_BASE64", new_key)],
    );
    assert!(
        report.contains("re-wrapped") && report.contains("env:"),
        "{report}"
    );

    // The key file is no longer needed: the server starts on the env KEK alone.
    std::fs::remove_file(data_dir.join("master.key")).unwrap();
    let env_kek = [
        ("SWITCHYARD_VAULT__KEK__PROVIDER", "env"),
        ("SWITCHYARD_VAULT__KEK__KEY_BASE64", new_key),
    ];
    let server =
        ServerProcess::start_with_env(Path::new(BINARY), &data_dir, &db_args, "info", &env_kek);
    let keys: Value = serde_json::from_str(&run(
        &[
            "vault",
            "data-keys",
            "--tenant",
            &tenant,
            "--url",
            &server.url(),
            "--data-dir",
            &data_dir_text,
            "--json",
        ],
        &[],
    ))
    .unwrap();
    let wrapped: Vec<&str> = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kek_id"].as_str())
        .collect();
    assert!(
        !wrapped.is_empty() && wrapped.iter().all(|id| id.starts_with("env:")),
        "{keys}"
    );
    server.terminate();

    let refused = clean_command(
        Path::new(BINARY),
        &[
            "vault",
            "rotate-kek",
            "--to",
            "hsm:1",
            "--data-dir",
            &data_dir_text,
            "--database-url",
            database.url(),
        ],
    )
    .envs(env_kek)
    .output()
    .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--to must be"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
