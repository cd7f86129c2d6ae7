//! Start-up: data directory, generated admin token, configuration errors.

use switchyard_config::Config;
use switchyard_test_support::{TestApp, TestBackend, TestDatabase, app::test_figment};

fn config_without_admin_token(database: &TestDatabase) -> Config {
    let mut config: Config = test_figment(database).extract().unwrap();
    config.admin_token = None;
    config
}

#[tokio::test]
async fn generates_an_admin_token_once_into_a_private_file() {
    let database = TestDatabase::sqlite();
    let config = config_without_admin_token(&database);
    let app = TestApp::start(config.clone(), database).await;
    let path = app.database().path("admin-token");
    let token = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert!(token.starts_with("sya_") && token.len() >= 40, "{token}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(app.database().dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
    }
    assert_eq!(
        app.get("/v1/tenants", &token).await.status,
        200,
        "the generated token works"
    );

    // A restart keeps the same token and does not rewrite the file.
    let database = app.stop_and_keep_database().await;
    let app = TestApp::start(config, database).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
    assert_eq!(app.get("/v1/tenants", &token).await.status, 200);
}

#[tokio::test]
async fn a_configured_admin_token_replaces_the_generated_one() {
    let database = TestDatabase::sqlite();
    let config = config_without_admin_token(&database);
    let app = TestApp::start(config, database).await;
    let generated = std::fs::read_to_string(app.database().path("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    let database = app.stop_and_keep_database().await;

    let config: Config = test_figment(&database).extract().unwrap();
    let app = TestApp::start(config, database).await;
    app.get("/v1/tenants", &generated)
        .await
        .assert_problem(401, "unauthenticated");
    assert_eq!(app.get("/v1/tenants", &app.admin_token).await.status, 200);
}

#[tokio::test]
async fn refuses_to_start_on_a_newer_schema() {
    let database = TestDatabase::sqlite();
    let config: Config = test_figment(&database).extract().unwrap();
    let app = TestApp::start(config.clone(), database).await;
    let database = app.stop_and_keep_database().await;
    let pool = sqlx::SqlitePool::connect(database.url()).await.unwrap();
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) VALUES (99999, 'future', CURRENT_TIMESTAMP, TRUE, x'00', 0)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let error = switchyard_server::App::build(&config)
        .await
        .err()
        .expect("start-up must fail");
    let message = format!("{error}");
    assert!(message.contains("newer than this binary"), "{message}");
}

#[tokio::test]
async fn starts_on_postgres_with_the_same_api() {
    let Some(app) = TestApp::spawn(TestBackend::Postgres).await else {
        return;
    };
    let tenant = app.create_tenant("On Postgres").await;
    assert_eq!(
        app.get(&format!("/v1/tenants/{tenant}"), &app.admin_token)
            .await
            .status,
        200
    );
    app.stop().await;
}

/// Starts an app, gives a tenant wrapped keys, stops it, and hands back its database.
async fn database_with_wrapped_keys() -> (TestDatabase, Config) {
    let database = TestDatabase::sqlite();
    let config: Config = test_figment(&database).extract().unwrap();
    let app = TestApp::start(config.clone(), database).await;
    let tenant = app.create_tenant("Acme").await;
    let rotated = app
        .post(
            &format!("/v1/tenants/{tenant}/vault/rotate-dek"),
            &app.admin_token,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(rotated.status, 202);
    (app.stop_and_keep_database().await, config)
}

fn startup_error(
    result: Result<switchyard_server::App, switchyard_server::StartupError>,
) -> String {
    match result {
        Ok(_) => panic!("start-up must fail closed"),
        Err(error) => switchyard_test_support::app::error_chain(&error),
    }
}

#[tokio::test]
async fn refuses_to_start_when_the_key_file_is_missing_but_data_exists() {
    let (database, config) = database_with_wrapped_keys().await;
    let key_file = database.path("master.key");
    std::fs::remove_file(&key_file).unwrap();
    let message = startup_error(switchyard_server::App::build(&config).await);
    assert!(
        message.contains("cannot open the credential vault"),
        "{message}"
    );
    assert!(
        message.contains("master.key"),
        "names the missing file: {message}"
    );
    assert!(
        !key_file.try_exists().unwrap(),
        "never generates a new key over existing data"
    );
}

#[tokio::test]
async fn refuses_to_start_with_the_wrong_key() {
    let (database, config) = database_with_wrapped_keys().await;
    // A well-formed key file holding another key.
    std::fs::write(
        database.path("master.key"),
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
    )
    .unwrap();
    let message = startup_error(switchyard_server::App::build(&config).await);
    assert!(
        message.contains("cannot open the credential vault"),
        "{message}"
    );
    assert!(
        message.contains("file:"),
        "names the KEK ids involved: {message}"
    );
    std::fs::write(database.path("master.key"), "not a key").unwrap();
    let message = startup_error(switchyard_server::App::build(&config).await);
    assert!(message.contains("master.key"), "{message}");

    let mut env_config = config.clone();
    env_config.vault.kek = switchyard_config::KekSettings::Env {
        key_base64: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
            .to_owned()
            .into(),
    };
    let message = startup_error(switchyard_server::App::build(&env_config).await);
    assert!(
        message.contains("cannot open the credential vault"),
        "{message}"
    );
}

#[tokio::test]
async fn creates_the_key_file_privately_on_first_start() {
    let database = TestDatabase::sqlite();
    let config: Config = test_figment(&database).extract().unwrap();
    let app = TestApp::start(config, database).await;
    let key_file = app.database().path("master.key");
    let encoded = std::fs::read_to_string(&key_file).unwrap();
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .unwrap();
    assert_eq!(key.len(), 32, "a 256-bit key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
