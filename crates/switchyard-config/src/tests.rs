// figment::Jail closures must return figment::Error, which is large; nothing to shrink here.
#![allow(clippy::result_large_err)]

use figment::Jail;
use secrecy::ExposeSecret;

use std::collections::BTreeSet;

use super::*;

fn loader() -> ConfigLoader {
    ConfigLoader::new()
}

#[test]
fn embedded_defaults_parse_and_validate() {
    Jail::expect_with(|_| {
        let config = loader().load().expect("defaults are valid");
        assert_eq!(config.listen, "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./switchyard-data"));
        assert!(config.database_url.is_none());
        assert_eq!(config.api.body_limit_bytes, 1024 * 1024);
        assert_eq!(config.api.idempotency_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(config.log_format, LogFormat::Auto);
        assert_eq!(
            config.effective_database_url().expose_secret(),
            "sqlite://./switchyard-data/switchyard.db"
        );
        Ok(())
    });
}

#[test]
fn layers_file_then_environment_then_flags() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "switchyard.toml",
            r#"
                listen = "0.0.0.0:9000"
                data_dir = "/var/lib/from-file"
                [database]
                max_connections = 4
                [api]
                max_page_limit = 500
            "#,
        )?;
        jail.set_env("SWITCHYARD_DATA_DIR", "/var/lib/from-env");
        jail.set_env("SWITCHYARD_DATABASE__MAX_CONNECTIONS", "8");
        jail.set_env("SWITCHYARD_SHUTDOWN__GRACE_PERIOD", "2s");
        let config = loader()
            .file(Some(Path::new("switchyard.toml")))
            .overrides(CliOverrides {
                listen: Some("127.0.0.1:1234".into()),
                ..CliOverrides::default()
            })
            .load()
            .expect("valid");
        assert_eq!(config.listen, "127.0.0.1:1234", "flags win");
        assert_eq!(
            config.data_dir,
            PathBuf::from("/var/lib/from-env"),
            "env beats file"
        );
        assert_eq!(config.database.max_connections, 8, "nested env key with __");
        assert_eq!(config.api.max_page_limit, 500, "file beats defaults");
        assert_eq!(config.api.default_page_limit, 50, "untouched defaults stay");
        assert_eq!(config.shutdown.grace_period, Duration::from_secs(2));
        Ok(())
    });
}

#[test]
fn ignores_client_and_test_variables() {
    Jail::expect_with(|jail| {
        jail.set_env("SWITCHYARD_URL", "http://127.0.0.1:8080");
        jail.set_env("SWITCHYARD_TOKEN", "sy_whatever");
        jail.set_env("SWITCHYARD_CONFIG", "x.toml");
        jail.set_env("SWITCHYARD_VAULT_NEW_KEK_BASE64", "AAEC");
        jail.set_env("SWITCHYARD_TEST_DATABASE_URL", "postgres://x");
        loader().load().expect("these are not server settings");
        Ok(())
    });
}

#[test]
fn rejects_unknown_keys_naming_them() {
    Jail::expect_with(|jail| {
        jail.create_file("bad.toml", "lisen = \"127.0.0.1:1\"\n")?;
        let error = loader()
            .file(Some(Path::new("bad.toml")))
            .load()
            .unwrap_err();
        assert!(error.to_string().contains("lisen"), "{error}");

        jail.clear_env();
        jail.set_env("SWITCHYARD_DATABASE__MAX_CONECTIONS", "3");
        let error = loader().load().unwrap_err().to_string().to_lowercase();
        assert!(error.contains("max_conections"), "{error}");
        Ok(())
    });
}

#[test]
fn rejects_a_missing_file() {
    Jail::expect_with(|_| {
        let error = loader()
            .file(Some(Path::new("nope.toml")))
            .load()
            .unwrap_err();
        assert!(error.to_string().contains("nope.toml"), "{error}");
        Ok(())
    });
}

#[test]
fn reports_every_invalid_value_without_echoing_secrets() {
    Jail::expect_with(|jail| {
        jail.set_env("SWITCHYARD_LISTEN", "localhost");
        jail.set_env("SWITCHYARD_DATABASE_URL", "mysql://admin:hunter2@db/x");
        jail.set_env("SWITCHYARD_ADMIN_TOKEN", "short-secret");
        jail.set_env("SWITCHYARD_API__DEFAULT_PAGE_LIMIT", "300");
        let error = loader().load().unwrap_err().to_string();
        for expected in [
            "listen",
            "database_url",
            "admin_token",
            "default_page_limit",
        ] {
            assert!(error.contains(expected), "{expected} missing from {error}");
        }
        assert!(
            !error.contains("hunter2") && !error.contains("short-secret"),
            "{error}"
        );
        Ok(())
    });
}

#[test]
fn rejects_values_of_the_wrong_type() {
    Jail::expect_with(|jail| {
        jail.set_env("SWITCHYARD_API__IDEMPOTENCY_TTL", "a while");
        let error = loader().load().unwrap_err().to_string().to_lowercase();
        assert!(error.contains("idempotency_ttl"), "{error}");
        jail.set_env("SWITCHYARD_API__IDEMPOTENCY_TTL", "1h");
        jail.set_env("SWITCHYARD_LOG_FORMAT", "xml");
        let error = loader().load().unwrap_err().to_string().to_lowercase();
        assert!(
            error.contains("log_format") && error.contains("xml"),
            "{error}"
        );
        Ok(())
    });
}

#[test]
fn debug_output_hides_secrets() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "SWITCHYARD_ADMIN_TOKEN",
            "a-very-long-admin-token-0123456789abcdef",
        );
        jail.set_env("SWITCHYARD_DATABASE_URL", "postgres://u:hunter2@h/db");
        let config = loader().load().expect("valid");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("0123456789abcdef"),
            "{debug}"
        );
        Ok(())
    });
}

#[test]
fn admin_token_must_not_look_like_an_api_key() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "SWITCHYARD_ADMIN_TOKEN",
            "sy_0123456789abcdef0123456789abcdef",
        );
        let error = loader().load().unwrap_err().to_string();
        assert!(error.contains("must not start with `sy_`"), "{error}");
        Ok(())
    });
}

/// docs/configuration.md must name every setting's environment variable.
#[test]
fn configuration_doc_lists_every_setting() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .expect("docs/configuration.md");
    // Every SWITCHYARD_* name the defaults' comments mention.
    let variables: Vec<&str> = DEFAULTS_TOML
        .split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .filter(|word| word.starts_with("SWITCHYARD_") && word.len() > "SWITCHYARD_".len())
        .collect();
    assert!(variables.len() >= 18, "{variables:?}");
    for variable in variables {
        assert!(
            doc.contains(variable),
            "docs/configuration.md does not mention {variable}"
        );
    }
}

#[test]
fn vault_kek_defaults_to_a_key_file_in_the_data_dir() {
    Jail::expect_with(|_| {
        let config = loader().load().expect("valid");
        assert!(matches!(config.vault.kek, KekSettings::File { path: None }));
        assert!(config.vault.secondary_kek.is_none());
        assert_eq!(config.vault.key_cache_ttl, Duration::from_secs(300));
        assert_eq!(
            config.key_file_path(None),
            PathBuf::from("./switchyard-data/master.key")
        );
        Ok(())
    });
}

#[test]
fn vault_kek_is_chosen_from_the_environment_and_checked() {
    Jail::expect_with(|jail| {
        jail.set_env("SWITCHYARD_VAULT__KEK__PROVIDER", "aws_kms");
        jail.set_env("SWITCHYARD_VAULT__KEK__KEY_ID", "alias/switchyard");
        jail.set_env(
            "SWITCHYARD_VAULT__KEK__ENDPOINT_URL",
            "http://127.0.0.1:5055",
        );
        let config = loader().load().expect("valid");
        assert!(matches!(
            &config.vault.kek,
            KekSettings::AwsKms { key_id, endpoint_url: Some(url), region: None }
                if key_id == "alias/switchyard" && url == "http://127.0.0.1:5055"
        ));

        jail.clear_env();
        jail.set_env("SWITCHYARD_VAULT__KEK__PROVIDER", "env");
        jail.set_env(
            "SWITCHYARD_VAULT__KEK__KEY_BASE64",
            "c2hvcnQtc2VjcmV0LWtleQ==",
        );
        let error = loader().load().unwrap_err().to_string();
        assert!(error.contains("vault.kek.key_base64"), "{error}");
        assert!(!error.contains("c2hvcnQtc2VjcmV0LWtleQ"), "{error}");

        jail.set_env(
            "SWITCHYARD_VAULT__KEK__KEY_BASE64",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        );
        loader().load().expect("32 bytes are valid");

        jail.set_env("SWITCHYARD_VAULT__KEK__PROVIDER", "hsm");
        let error = loader().load().unwrap_err().to_string();
        assert!(error.contains("hsm"), "{error}");
        Ok(())
    });
}

#[test]
fn roles_come_from_a_list_a_comma_string_or_flags() {
    Jail::expect_with(|jail| {
        let all = loader().load().expect("valid");
        assert_eq!(
            all.roles,
            BTreeSet::from([
                ProcessRole::Api,
                ProcessRole::Worker,
                ProcessRole::Scheduler
            ])
        );

        jail.set_env("SWITCHYARD_ROLES", "worker, scheduler");
        let config = loader().load().expect("valid");
        assert_eq!(
            config.roles,
            BTreeSet::from([ProcessRole::Worker, ProcessRole::Scheduler])
        );

        let config = loader()
            .overrides(CliOverrides {
                roles: Some(vec![ProcessRole::Api]),
                ..CliOverrides::default()
            })
            .load()
            .expect("valid");
        assert_eq!(
            config.roles,
            BTreeSet::from([ProcessRole::Api]),
            "flags win"
        );

        jail.set_env("SWITCHYARD_ROLES", "api,ingester");
        let error = loader().load().unwrap_err().to_string();
        assert!(error.contains("ingester"), "{error}");
        jail.set_env("SWITCHYARD_ROLES", "");
        let error = loader().load().unwrap_err().to_string();
        assert!(error.contains("roles"), "{error}");
        Ok(())
    });
}

#[test]
fn outbound_lists_and_issue_spelled_variables() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "SWITCHYARD_OUTBOUND_ALLOW_CIDRS",
            "127.0.0.1/32, 10.0.0.0/8",
        );
        jail.set_env("SWITCHYARD_OUTBOUND_ALLOW_HTTP", "true");
        let config = loader().load().expect("valid");
        assert_eq!(config.outbound.allow_cidrs, ["127.0.0.1/32", "10.0.0.0/8"]);
        assert!(config.outbound.allow_http);

        jail.clear_env();
        jail.set_env("SWITCHYARD_OUTBOUND__ALLOW_CIDRS", "192.168.1.0/24");
        jail.set_env("SWITCHYARD_BLOB__PROVIDER", "s3");
        jail.set_env("SWITCHYARD_BLOB__BUCKET", "payloads");
        let config = loader().load().expect("valid");
        assert_eq!(config.outbound.allow_cidrs, ["192.168.1.0/24"]);
        assert!(!config.outbound.allow_http, "https only by default");
        assert_eq!(config.blob.backend(), "s3");
        Ok(())
    });
}
