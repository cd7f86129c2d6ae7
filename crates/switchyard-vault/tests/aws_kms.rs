//! The AWS KMS KEK against moto (`scripts/peers/moto.sh start`, then
//! `SWITCHYARD_TEST_MOTO_URL=http://127.0.0.1:5055`). Skipped locally when unset; in CI
//! (`CI=true`) an unset variable fails the run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{sync::Arc, time::Duration};

use common::{VaultFixture, uncached};
use secrecy::SecretString;
use switchyard_test_support::{BackendFixture, TestBackend, required_test_server};
use switchyard_vault::{
    AwsKmsConfig, AwsKmsKek, KekConfig, KeyBytes, KeyEncryptionKey, KeyPurpose, SecretRef,
    StaticCredentials, Vault, VaultError, WrapContext,
};

fn config(endpoint: &str, key_id: &str) -> AwsKmsConfig {
    let mut config = AwsKmsConfig::new(key_id);
    config.region = Some("us-east-1".to_owned());
    config.endpoint_url = Some(endpoint.to_owned());
    config.credentials = Some(StaticCredentials {
        access_key_id: "testing".to_owned(),
        secret_access_key: SecretString::from("testing"),
        session_token: None,
    });
    config
}

/// Creates a fresh symmetric KMS key in moto and returns its config.
async fn new_kms_key(endpoint: &str) -> AwsKmsConfig {
    let client = config(endpoint, "unused").client().await;
    let created = client
        .create_key()
        .description("switchyard vault test KEK")
        .send()
        .await
        .expect("create a KMS key in moto");
    let key_id = created.key_metadata().unwrap().key_id().to_owned();
    config(endpoint, &key_id)
}

fn context(tenant: &str, version: u32) -> WrapContext<'_> {
    WrapContext {
        tenant,
        purpose: KeyPurpose::DataKey,
        version,
    }
}

#[tokio::test]
async fn kms_generates_wraps_and_unwraps_with_context_binding() {
    let Some(endpoint) = required_test_server("SWITCHYARD_TEST_MOTO_URL") else {
        return;
    };
    let kek = AwsKmsKek::connect(&new_kms_key(&endpoint).await)
        .await
        .unwrap();
    assert!(kek.kek_id().starts_with("aws-kms:arn:aws:kms:us-east-1:"));

    let (key, wrapped) = kek.generate(&context("t1", 1)).await.unwrap();
    let back = kek.unwrap(&wrapped, &context("t1", 1)).await.unwrap();
    assert_eq!(back.expose(), key.expose());

    let own = KeyBytes::generate();
    let wrapped_own = kek.wrap(&own, &context("t1", 2)).await.unwrap();
    assert_eq!(
        kek.unwrap(&wrapped_own, &context("t1", 2))
            .await
            .unwrap()
            .expose(),
        own.expose()
    );

    // The encryption context binds tenant and version.
    for wrong in [context("t2", 1), context("t1", 7)] {
        let error = kek.unwrap(&wrapped, &wrong).await.unwrap_err();
        assert!(
            matches!(error, VaultError::KekUnwrapFailed { .. }),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn vault_on_kms_and_key_mismatch_is_refused() {
    let Some(endpoint) = required_test_server("SWITCHYARD_TEST_MOTO_URL") else {
        return;
    };
    let fx = VaultFixture::start(TestBackend::Sqlite).await.unwrap();
    let key_a = KekConfig::AwsKms(new_kms_key(&endpoint).await);
    let vault = fx.open(&key_a, uncached()).await;
    let stored = vault.put("t1", "token", b"kms-protected").await.unwrap();
    assert_eq!(
        vault.resolve(&stored.reference).await.unwrap().expose(),
        b"kms-protected"
    );
    drop(vault);

    // Reopen: the start-up check unwraps a key through KMS.
    let vault = fx.open(&key_a, uncached()).await;
    assert_eq!(
        vault.resolve(&stored.reference).await.unwrap().expose(),
        b"kms-protected"
    );

    // Another KMS key: refused with a typed error.
    let key_b = KekConfig::AwsKms(new_kms_key(&endpoint).await);
    let error = Vault::open(Arc::clone(&fx.storage), &key_b, uncached())
        .await
        .unwrap_err();
    assert!(matches!(error, VaultError::KekMismatch { .. }), "{error:?}");
}

#[tokio::test]
async fn kek_rotation_from_key_file_to_kms() {
    let Some(endpoint) = required_test_server("SWITCHYARD_TEST_MOTO_URL") else {
        return;
    };
    let fx = VaultFixture::start(TestBackend::Sqlite).await.unwrap();
    let vault = fx.vault().await;
    let a = vault.put("t1", "a", b"alpha").await.unwrap().reference;
    let b = vault.put("t2", "b", b"beta").await.unwrap().reference;
    vault.rotate_dek("t1").await.unwrap();
    let blob = vault.encrypt_blob("t1", b"ctx", b"blob").await.unwrap();
    let before = fx.secret_ciphertexts().await;

    let kms_config = new_kms_key(&endpoint).await;
    let kms = Arc::new(AwsKmsKek::connect(&kms_config).await.unwrap());
    let report = vault.rotate_kek(kms).await.unwrap();
    assert!(report.kek_id.starts_with("aws-kms:"));
    assert_eq!(report.rewrapped, 5);
    assert_eq!(vault.resolve(&a).await.unwrap().expose(), b"alpha");
    assert_eq!(
        fx.secret_ciphertexts().await,
        before,
        "no secret re-encrypted"
    );

    // New tenants' keys come from KMS GenerateDataKey.
    let c = vault.put("t3", "c", b"gamma").await.unwrap().reference;

    // KMS alone opens everything now; the key file alone does not.
    let reopened = fx.open(&KekConfig::AwsKms(kms_config), uncached()).await;
    for (reference, value) in [(&a, &b"alpha"[..]), (&b, b"beta"), (&c, b"gamma")] {
        assert_eq!(reopened.resolve(reference).await.unwrap().expose(), value);
    }
    assert_eq!(
        reopened
            .decrypt_blob("t1", b"ctx", &blob)
            .await
            .unwrap()
            .as_slice(),
        b"blob"
    );
    let error = Vault::open(Arc::clone(&fx.storage), &fx.key_file(), uncached())
        .await
        .unwrap_err();
    assert!(matches!(error, VaultError::KekMismatch { .. }), "{error:?}");
    assert_eq!(
        reopened
            .resolve(&SecretRef::new("t1", "a", 1))
            .await
            .unwrap()
            .expose(),
        b"alpha"
    );
}

/// Needs no moto: an unreachable KMS endpoint must fail the open, never fall back.
#[tokio::test]
async fn unreachable_kms_fails_closed() {
    let fx = VaultFixture::start(TestBackend::Sqlite).await.unwrap();
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let mut unreachable = config("http://127.0.0.1:9", "alias/switchyard");
    unreachable.operation_timeout = Duration::from_secs(5);
    let error = Vault::open(
        Arc::clone(&fx.storage),
        &KekConfig::AwsKms(unreachable),
        uncached(),
    )
    .await
    .unwrap_err();
    match &error {
        VaultError::Kms {
            operation, key_id, ..
        } => {
            assert_eq!(*operation, "DescribeKey");
            assert_eq!(key_id, "alias/switchyard");
        }
        other => panic!("expected a KMS error, got {other:?}"),
    }
    assert!(!error.to_string().contains("testing"), "{error}");
}
