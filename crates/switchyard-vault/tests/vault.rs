//! The vault end to end on real storage: every test runs on SQLite and on PostgreSQL
//! (`SWITCHYARD_TEST_DATABASE_URL`; skipped locally when unset, a failure in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{sync::Arc, time::Duration};

use common::{VaultFixture, contains, env_key, uncached};
use switchyard_test_support::backend_tests;
use switchyard_vault::{
    EnvKek, FileKek, KeyEncryptionKey, KeyState, SecretRef, Vault, VaultError, VaultOptions,
    VersionState,
};

backend_tests! { VaultFixture;

    async fn put_resolve_round_trip(fx) {
        let vault = fx.vault().await;
        let stored = vault.put("t1", "github/token", b"ghp_round_trip_value").await.unwrap();
        assert_eq!(stored.reference, SecretRef::new("t1", "github/token", 1));
        assert_eq!(stored.replaces, None);
        let secret = vault.resolve(&stored.reference).await.unwrap();
        assert_eq!(secret.expose(), b"ghp_round_trip_value");
        assert_eq!(vault.current("t1", "github/token").await.unwrap(), stored.reference);

        // Binary and empty values survive too.
        let binary = vault.put("t1", "bin", &[0, 255, 1, 254]).await.unwrap();
        assert_eq!(vault.resolve(&binary.reference).await.unwrap().expose(), &[0, 255, 1, 254]);
        let empty = vault.put("t1", "empty", b"").await.unwrap();
        assert!(vault.resolve(&empty.reference).await.unwrap().is_empty());

        // No plaintext in the tables.
        assert!(!contains(&fx.dump().await, b"ghp_round_trip_value"));

        let missing = vault.resolve(&SecretRef::new("t1", "nope", 1)).await.unwrap_err();
        assert!(matches!(missing, VaultError::SecretNotFound { .. }), "{missing:?}");
        let invalid = vault.put("", "x", b"v").await.unwrap_err();
        assert!(matches!(invalid, VaultError::InvalidIdentifier { .. }));
    }

    async fn fingerprints_are_stable_per_tenant_and_differ_across_tenants(fx) {
        let vault = fx.vault().await;
        let a1 = vault.put("ta", "one", b"same-value").await.unwrap();
        let a2 = vault.put("ta", "two", b"same-value").await.unwrap();
        let b1 = vault.put("tb", "one", b"same-value").await.unwrap();
        let other = vault.put("ta", "three", b"other-value").await.unwrap();
        assert_eq!(a1.fingerprint, a2.fingerprint);
        assert_eq!(a1.fingerprint.as_str().len(), 16);
        assert!(a1.fingerprint.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a1.fingerprint, b1.fingerprint);
        assert_ne!(a1.fingerprint, other.fingerprint);
        assert_eq!(vault.fingerprint("ta", b"same-value").await.unwrap(), a1.fingerprint);
        // Stable across restarts (the fingerprint key is persisted, wrapped).
        drop(vault);
        let reopened = fx.vault().await;
        assert_eq!(reopened.fingerprint("ta", b"same-value").await.unwrap(), a1.fingerprint);
        let listed = reopened.versions("ta", "one").await.unwrap();
        assert_eq!(listed[0].fingerprint, a1.fingerprint);
    }

    async fn ciphertexts_are_bound_to_tenant_name_and_version(fx) {
        let vault = fx.vault().await;
        vault.put("t1", "a", b"value-a").await.unwrap();
        vault.put("t1", "b", b"value-b").await.unwrap();
        vault.put("t2", "a", b"value-t2").await.unwrap();
        vault.rotate("t1", "a", b"value-a2").await.unwrap();

        // Another name, same tenant and data key: the AAD alone must refuse it.
        fx.exec("UPDATE vault_secrets SET ciphertext = (SELECT ciphertext FROM vault_secrets \
                 WHERE tenant_id = 't1' AND name = 'a' AND version = 1) \
                 WHERE tenant_id = 't1' AND name = 'b' AND version = 1").await;
        let error = vault.resolve(&SecretRef::new("t1", "b", 1)).await.unwrap_err();
        assert!(matches!(error, VaultError::DecryptionFailed), "{error:?}");

        // Another version of the same secret.
        fx.exec("UPDATE vault_secrets SET ciphertext = (SELECT ciphertext FROM vault_secrets \
                 WHERE tenant_id = 't1' AND name = 'a' AND version = 1) \
                 WHERE tenant_id = 't1' AND name = 'a' AND version = 2").await;
        let error = vault.resolve(&SecretRef::new("t1", "a", 2)).await.unwrap_err();
        assert!(matches!(error, VaultError::DecryptionFailed), "{error:?}");

        // Another tenant.
        fx.exec("UPDATE vault_secrets SET ciphertext = (SELECT ciphertext FROM vault_secrets \
                 WHERE tenant_id = 't1' AND name = 'a' AND version = 1) \
                 WHERE tenant_id = 't2' AND name = 'a' AND version = 1").await;
        let error = vault.resolve(&SecretRef::new("t2", "a", 1)).await.unwrap_err();
        assert!(matches!(error, VaultError::DecryptionFailed), "{error:?}");

        // The untouched original still reads.
        assert_eq!(vault.resolve(&SecretRef::new("t1", "a", 1)).await.unwrap().expose(), b"value-a");

        // A wrapped data key moved to another tenant's row does not unwrap either.
        let vault2 = fx.vault().await;
        fx.exec("UPDATE vault_tenant_keys SET wrapped_key = (SELECT wrapped_key FROM vault_tenant_keys \
                 WHERE tenant_id = 't1' AND purpose = 'dek' AND version = 1) \
                 WHERE tenant_id = 't2' AND purpose = 'dek' AND version = 1").await;
        let error = vault2.resolve(&SecretRef::new("t2", "a", 1)).await.unwrap_err();
        assert!(matches!(error, VaultError::KekUnwrapFailed { .. }), "{error:?}");
    }

    async fn blobs_round_trip_and_are_bound_to_their_context(fx) {
        let vault = fx.vault().await;
        let sealed = vault.encrypt_blob("t1", b"t1/webhooks/2026/01/01/id1", b"{\"raw\":1}").await.unwrap();
        assert_eq!(
            vault.decrypt_blob("t1", b"t1/webhooks/2026/01/01/id1", &sealed).await.unwrap().as_slice(),
            b"{\"raw\":1}"
        );
        assert_eq!(Vault::blob_data_key_version(&sealed).unwrap(), 1);
        let error = vault.decrypt_blob("t1", b"t1/webhooks/2026/01/01/id2", &sealed).await.unwrap_err();
        assert!(matches!(error, VaultError::DecryptionFailed), "{error:?}");
        vault.encrypt_blob("t2", b"x", b"y").await.unwrap();
        let error = vault.decrypt_blob("t2", b"t1/webhooks/2026/01/01/id1", &sealed).await.unwrap_err();
        assert!(matches!(error, VaultError::DecryptionFailed), "{error:?}");
        let error = vault.decrypt_blob("t1", b"ctx", &[9, 9]).await.unwrap_err();
        assert!(matches!(error, VaultError::Malformed { .. }), "{error:?}");
    }

    async fn wrong_kek_is_detected_at_open(fx) {
        let vault = fx.open(&env_key(1), uncached()).await;
        vault.put("t1", "s", b"v").await.unwrap();
        drop(vault);
        let error = Vault::open(Arc::clone(&fx.storage), &env_key(2), uncached()).await.unwrap_err();
        match &error {
            VaultError::KekMismatch { configured, missing } => {
                assert!(configured.starts_with("env:"));
                assert!(missing.starts_with("env:"));
                assert_ne!(configured, missing);
            }
            other => panic!("expected KekMismatch, got {other:?}"),
        }
        // The message says what to do and shows no key material.
        assert!(error.to_string().contains("does not match"));
        // A key file, too, is a different KEK: refused, never a fresh start over the data.
        let error = Vault::open(Arc::clone(&fx.storage), &fx.key_file(), uncached()).await.unwrap_err();
        assert!(matches!(error, VaultError::KeyFileMissing { .. }), "{error:?}");
        assert!(!fx.key_path().try_exists().unwrap(), "no key file may be created over existing data");
        // The right key still opens.
        let vault = fx.open(&env_key(1), uncached()).await;
        assert_eq!(vault.resolve(&SecretRef::new("t1", "s", 1)).await.unwrap().expose(), b"v");
    }

    async fn key_file_is_created_only_for_an_empty_vault(fx) {
        let path = fx.key_path();
        let vault = fx.vault().await;
        assert!(path.try_exists().unwrap());
        let kek_id = vault.kek_id();
        assert!(kek_id.starts_with("file:"));
        vault.put("t1", "s", b"v").await.unwrap();
        drop(vault);

        // Reopen: same file, same KEK.
        assert_eq!(fx.vault().await.kek_id(), kek_id);

        // Missing file with wrapped data: a typed error naming the KEK the data needs.
        let backup = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let error = Vault::open(Arc::clone(&fx.storage), &fx.key_file(), uncached()).await.unwrap_err();
        match &error {
            VaultError::KeyFileMissing { stored_kek_ids, .. } => assert_eq!(stored_kek_ids, &kek_id),
            other => panic!("expected KeyFileMissing, got {other:?}"),
        }
        assert!(!path.try_exists().unwrap());

        // A different key file: mismatch.
        std::fs::write(&path, "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n").unwrap();
        let error = Vault::open(Arc::clone(&fx.storage), &fx.key_file(), uncached()).await.unwrap_err();
        assert!(matches!(error, VaultError::KekMismatch { .. }), "{error:?}");

        // Restored: works again.
        std::fs::write(&path, backup).unwrap();
        let vault = fx.vault().await;
        assert_eq!(vault.resolve(&SecretRef::new("t1", "s", 1)).await.unwrap().expose(), b"v");
    }

    async fn secret_rotation_confirm_and_rollback(fx) {
        let vault = fx.vault().await;
        let v1 = vault.put("t1", "api", b"old-value").await.unwrap().reference;
        let error = vault.rotate("t1", "missing", b"x").await.unwrap_err();
        assert!(matches!(error, VaultError::SecretNotFound { .. }), "{error:?}");

        // Rotate: new version current, previous still readable.
        let v2 = vault.rotate("t1", "api", b"new-value").await.unwrap();
        assert_eq!(v2.reference.version, 2);
        assert_eq!(v2.replaces, Some(1));
        assert_eq!(vault.current("t1", "api").await.unwrap(), v2.reference);
        assert_eq!(vault.resolve(&v1).await.unwrap().expose(), b"old-value");
        assert_eq!(vault.resolve(&v2.reference).await.unwrap().expose(), b"new-value");
        let states: Vec<VersionState> = vault.versions("t1", "api").await.unwrap().iter().map(|v| v.state).collect();
        assert_eq!(states, [VersionState::Previous, VersionState::Current]);

        // A second rotation must wait for confirm/rollback.
        let error = vault.put("t1", "api", b"third").await.unwrap_err();
        assert!(matches!(error, VaultError::RotationPending { pending: 2, .. }), "{error:?}");
        // Only the current version can be confirmed.
        let error = vault.confirm(&v1).await.unwrap_err();
        assert!(matches!(error, VaultError::InvalidTransition { .. }), "{error:?}");

        // Confirm: previous destroyed.
        vault.confirm(&v2.reference).await.unwrap();
        let error = vault.resolve(&v1).await.unwrap_err();
        assert!(matches!(error, VaultError::SecretDestroyed { version: 1, .. }), "{error:?}");
        vault.confirm(&v2.reference).await.unwrap(); // idempotent

        // Rotate again and roll back: the new one is destroyed, v2 current again.
        let v3 = vault.rotate("t1", "api", b"bad-value").await.unwrap().reference;
        assert_eq!(v3.version, 3);
        let restored = vault.rollback(&v3).await.unwrap();
        assert_eq!(restored, v2.reference);
        assert_eq!(vault.current("t1", "api").await.unwrap(), v2.reference);
        assert!(matches!(vault.resolve(&v3).await.unwrap_err(), VaultError::SecretDestroyed { .. }));
        assert_eq!(vault.resolve(&v2.reference).await.unwrap().expose(), b"new-value");
        // Nothing left to roll back.
        let error = vault.rollback(&v2.reference).await.unwrap_err();
        assert!(matches!(error, VaultError::InvalidTransition { .. }), "{error:?}");

        // Version numbers are never reused.
        let v4 = vault.rotate("t1", "api", b"fourth").await.unwrap().reference;
        assert_eq!(v4.version, 4);
        vault.confirm(&v4).await.unwrap();

        // Delete destroys every version.
        assert_eq!(vault.delete("t1", "api").await.unwrap(), 1);
        assert!(matches!(vault.resolve(&v4).await.unwrap_err(), VaultError::SecretDestroyed { .. }));
        assert!(matches!(vault.current("t1", "api").await.unwrap_err(), VaultError::SecretNotFound { .. }));
        // A later put starts a fresh current version with a new number.
        assert_eq!(vault.put("t1", "api", b"again").await.unwrap().reference.version, 5);
        assert!(!contains(&fx.dump().await, b"old-value"));
    }

    async fn data_key_rotation_reencrypts_and_retires(fx) {
        let grace = Duration::from_millis(300);
        let options = VaultOptions { cache_ttl: grace, ..VaultOptions::default() };
        let vault = fx.open(&fx.key_file(), options).await;
        let mut refs = Vec::new();
        for i in 0..7 {
            refs.push(vault.put("t1", &format!("s{i}"), format!("value-{i}").as_bytes()).await.unwrap().reference);
        }
        let rotating = vault.rotate("t1", "s0", b"value-0b").await.unwrap().reference;
        let old_blob = vault.encrypt_blob("t1", b"blob-1", b"payload-1").await.unwrap();
        let kept_blob = vault.encrypt_blob("t1", b"blob-2", b"payload-2").await.unwrap();
        let other_tenant = vault.put("t2", "s", b"other").await.unwrap().reference;

        assert_eq!(vault.rotate_dek("t1").await.unwrap(), 2);
        let keys = vault.data_keys("t1").await.unwrap();
        assert_eq!(keys.iter().map(|k| (k.version, k.state)).collect::<Vec<_>>(),
                   [(1, KeyState::DecryptOnly), (2, KeyState::Active)]);

        // New writes use the new key; old data still reads.
        let fresh = vault.put("t1", "fresh", b"fresh-value").await.unwrap().reference;
        let infos = vault.versions("t1", "fresh").await.unwrap();
        assert_eq!(infos[0].dek_version, 2);
        assert_eq!(Vault::blob_data_key_version(&vault.encrypt_blob("t1", b"c", b"d").await.unwrap()).unwrap(), 2);
        assert_eq!(vault.resolve(&refs[3]).await.unwrap().expose(), b"value-3");

        // Too early to retire: another process may still encrypt with the cached old key.
        let error = vault.retire_dek("t1", 1).await.unwrap_err();
        assert!(matches!(error, VaultError::DekRetireTooEarly { version: 1, .. }), "{error:?}");
        tokio::time::sleep(grace).await;
        // Secrets still under it: refused.
        let error = vault.retire_dek("t1", 1).await.unwrap_err();
        assert!(matches!(error, VaultError::DekRetireRefused { .. }), "{error:?}");
        let error = vault.retire_dek("t1", 2).await.unwrap_err();
        assert!(matches!(error, VaultError::DekRetireRefused { .. }), "{error:?}");

        // The blob owner moves the blob it keeps.
        let moved_blob = vault.reencrypt_blob("t1", b"blob-2", &kept_blob).await.unwrap();
        assert_eq!(Vault::blob_data_key_version(&moved_blob).unwrap(), 2);

        // Re-encryption (batch size 100, 8 live rows under key 1) then retirement.
        let report = vault.complete_dek_rotation("t1").await.unwrap();
        assert_eq!(report.reencrypted, 8);
        assert_eq!(report.retired, [1]);
        let keys = vault.data_keys("t1").await.unwrap();
        assert_eq!(keys[0].state, KeyState::Retired);
        assert_eq!(keys[0].kek_id, None);
        for info in vault.versions("t1", "s0").await.unwrap() {
            assert_eq!(info.dek_version, 2);
        }

        // Every secret reads, through a fresh (uncached) vault as well.
        let reopened = fx.vault().await;
        for (i, reference) in refs.iter().enumerate() {
            let expected = format!("value-{i}");
            assert_eq!(reopened.resolve(reference).await.unwrap().expose(), expected.as_bytes());
        }
        assert_eq!(reopened.resolve(&rotating).await.unwrap().expose(), b"value-0b");
        assert_eq!(reopened.resolve(&fresh).await.unwrap().expose(), b"fresh-value");
        assert_eq!(reopened.resolve(&other_tenant).await.unwrap().expose(), b"other");
        // The moved blob reads; the one left behind is gone with its key.
        assert_eq!(reopened.decrypt_blob("t1", b"blob-2", &moved_blob).await.unwrap().as_slice(), b"payload-2");
        let error = reopened.decrypt_blob("t1", b"blob-1", &old_blob).await.unwrap_err();
        assert!(matches!(error, VaultError::DekRetired { version: 1, .. }), "{error:?}");
        vault.retire_dek("t1", 1).await.unwrap(); // idempotent
        // Another rotation still works.
        assert_eq!(vault.rotate_dek("t1").await.unwrap(), 3);
    }

    async fn preparing_a_completion_waits_for_the_grace_period(fx) {
        let grace = Duration::from_millis(300);
        let options = VaultOptions { cache_ttl: grace, ..VaultOptions::default() };
        let vault = fx.open(&fx.key_file(), options).await;
        vault.put("t1", "s", b"value").await.unwrap();
        assert_eq!(vault.prepare_dek_completion("t1").await.unwrap(), None, "nothing rotated out");
        assert_eq!(vault.prepare_dek_completion("never-written").await.unwrap(), None);
        let cached = vault.encrypt_blob("t1", b"b", b"payload").await.unwrap();
        assert_eq!(vault.rotate_dek("t1").await.unwrap(), 2);
        // Another process may still seal with key 1: moving blobs now could miss some.
        let error = vault.prepare_dek_completion("t1").await.unwrap_err();
        assert!(matches!(error, VaultError::DekRetireTooEarly { version: 1, .. }), "{error:?}");
        tokio::time::sleep(grace).await;
        assert_eq!(vault.prepare_dek_completion("t1").await.unwrap(), Some(2));
        let moved = vault.reencrypt_blob("t1", b"b", &cached).await.unwrap();
        assert_eq!(Vault::blob_data_key_version(&moved).unwrap(), 2);
        assert_eq!(vault.complete_dek_rotation("t1").await.unwrap().retired, [1]);
        assert_eq!(vault.prepare_dek_completion("t1").await.unwrap(), None, "done");
        assert_eq!(vault.decrypt_blob("t1", b"b", &moved).await.unwrap().as_slice(), b"payload");
    }

    async fn kek_rotation_from_key_file_to_env(fx) {
        let vault = fx.vault().await;
        let file_id = vault.kek_id();
        let a = vault.put("t1", "a", b"alpha").await.unwrap().reference;
        let b = vault.put("t2", "b", b"beta").await.unwrap().reference;
        let blob = vault.encrypt_blob("t1", b"ctx", b"blob-bytes").await.unwrap();
        vault.rotate_dek("t1").await.unwrap();
        let before = fx.secret_ciphertexts().await;

        let env: Arc<dyn KeyEncryptionKey> = Arc::new(EnvKek::from_base64(&secrecy::SecretString::from(
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".to_owned(),
        )).unwrap());
        let report = vault.rotate_kek(Arc::clone(&env)).await.unwrap();
        assert!(report.kek_id.starts_with("env:"));
        // t1: dek v1, dek v2, fingerprint; t2: dek, fingerprint.
        assert_eq!(report.rewrapped, 5);
        assert_eq!(vault.kek_id(), report.kek_id);
        // The vault kept serving and no secret was re-encrypted.
        assert_eq!(vault.resolve(&a).await.unwrap().expose(), b"alpha");
        assert_eq!(fx.secret_ciphertexts().await, before, "no secret was re-encrypted");
        for key in vault.data_keys("t1").await.unwrap() {
            assert_eq!(key.kek_id.as_deref(), Some(report.kek_id.as_str()));
        }

        // Reopen with the new KEK only: everything reads.
        let reopened = Vault::open_with_keks(Arc::clone(&fx.storage), env, Vec::new(), uncached()).await.unwrap();
        assert_eq!(reopened.resolve(&a).await.unwrap().expose(), b"alpha");
        assert_eq!(reopened.resolve(&b).await.unwrap().expose(), b"beta");
        assert_eq!(reopened.decrypt_blob("t1", b"ctx", &blob).await.unwrap().as_slice(), b"blob-bytes");

        // The old key file no longer opens it.
        let error = Vault::open(Arc::clone(&fx.storage), &fx.key_file(), uncached()).await.unwrap_err();
        match error {
            VaultError::KekMismatch { configured, .. } => assert_eq!(configured, file_id),
            other => panic!("expected KekMismatch, got {other:?}"),
        }
    }

    async fn interrupted_kek_rotation_opens_with_previous_keks(fx) {
        let vault = fx.vault().await;
        let r = vault.put("t1", "a", b"alpha").await.unwrap().reference;
        drop(vault);
        // Simulate a new KEK taking over for new tenants before re-wrapping finished.
        let file = Arc::new(FileKek::load(&fx.key_path()).unwrap().unwrap());
        let env: Arc<dyn KeyEncryptionKey> = Arc::new(EnvKek::from_base64(&secrecy::SecretString::from(
            "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=".to_owned(),
        )).unwrap());
        let both = Vault::open_with_keks(Arc::clone(&fx.storage), Arc::clone(&env), vec![file], uncached()).await.unwrap();
        both.put("t2", "b", b"beta").await.unwrap();
        assert_eq!(both.resolve(&r).await.unwrap().expose(), b"alpha");
        // Env alone cannot open: t1's keys are still under the file KEK.
        let error = Vault::open_with_keks(Arc::clone(&fx.storage), Arc::clone(&env), Vec::new(), uncached()).await.unwrap_err();
        assert!(matches!(error, VaultError::KekMismatch { .. }), "{error:?}");
        // Finish the job.
        assert_eq!(both.rewrap_keys_admin().await.unwrap().rewrapped, 2);
        let env_only = Vault::open_with_keks(Arc::clone(&fx.storage), env, Vec::new(), uncached()).await.unwrap();
        assert_eq!(env_only.resolve(&r).await.unwrap().expose(), b"alpha");
    }

    async fn shredding_destroys_a_tenant_at_once(fx) {
        let options = VaultOptions { cache_ttl: Duration::from_secs(60), ..VaultOptions::default() };
        let vault = fx.open(&fx.key_file(), options).await;
        let a = vault.put("doomed", "a", b"doomed-a").await.unwrap().reference;
        let b = vault.put("doomed", "b", b"doomed-b").await.unwrap().reference;
        vault.rotate("doomed", "a", b"doomed-a2").await.unwrap();
        vault.rotate_dek("doomed").await.unwrap();
        let blob = vault.encrypt_blob("doomed", b"ctx", b"doomed-blob").await.unwrap();
        let survivor = vault.put("kept", "a", b"kept-a").await.unwrap().reference;
        let survivor_blob = vault.encrypt_blob("kept", b"ctx", b"kept-blob").await.unwrap();
        // Warm the cache: shredding must not be defeated by it in this process.
        vault.resolve(&a).await.unwrap();

        let counts = vault.shred_tenant("doomed").await.unwrap();
        assert_eq!(counts.keys, 3); // dek v1, dek v2, fingerprint key
        assert_eq!(counts.secret_versions, 3);

        for reference in [&a, &b] {
            let error = vault.resolve(reference).await.unwrap_err();
            assert!(matches!(error, VaultError::TenantShredded { .. }), "{error:?}");
        }
        let error = vault.decrypt_blob("doomed", b"ctx", &blob).await.unwrap_err();
        assert!(matches!(error, VaultError::TenantShredded { .. }), "{error:?}");
        let error = vault.put("doomed", "c", b"x").await.unwrap_err();
        assert!(matches!(error, VaultError::TenantShredded { .. }), "{error:?}");
        let error = vault.rotate_dek("doomed").await.unwrap_err();
        assert!(matches!(error, VaultError::TenantShredded { .. }), "{error:?}");
        // Nothing recoverable remains in storage.
        assert!(!contains(&fx.dump().await, b"doomed"), "no ciphertext rows of the tenant remain");

        // Other tenants are untouched.
        assert_eq!(vault.resolve(&survivor).await.unwrap().expose(), b"kept-a");
        assert_eq!(vault.decrypt_blob("kept", b"ctx", &survivor_blob).await.unwrap().as_slice(), b"kept-blob");

        // A tenant that never had a key is still marked shredded.
        vault.shred_tenant("never-used").await.unwrap();
        let error = vault.put("never-used", "a", b"x").await.unwrap_err();
        assert!(matches!(error, VaultError::TenantShredded { .. }), "{error:?}");
        // Reopening still works (no wrapped key of shredded tenants is needed).
        fx.open(&fx.key_file(), uncached()).await;
    }

    async fn cached_keys_expire_after_the_ttl(fx) {
        let ttl = Duration::from_millis(400);
        let options = VaultOptions { cache_ttl: ttl, ..VaultOptions::default() };
        let process_a = fx.open(&fx.key_file(), options.clone()).await;
        let reference = process_a.put("t1", "s", b"cached").await.unwrap().reference;
        let unwraps_after_put = process_a.cache_stats().key_unwraps;
        assert_eq!(unwraps_after_put, 2); // data key + fingerprint key, once
        for _ in 0..5 {
            process_a.resolve(&reference).await.unwrap();
        }
        let stats = process_a.cache_stats();
        assert_eq!(stats.key_unwraps, unwraps_after_put, "resolves are served from the cache");
        assert!(stats.key_hits >= 5);

        // Another process shreds the tenant. Within the TTL, this process's cache still serves
        // (the documented bound); after it, the shredding is visible.
        let process_b = fx.open(&fx.key_file(), options).await;
        process_b.shred_tenant("t1").await.unwrap();
        assert_eq!(process_a.resolve(&reference).await.unwrap().expose(), b"cached");
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        let error = process_a.resolve(&reference).await.unwrap_err();
        assert!(matches!(error, VaultError::TenantShredded { .. }), "{error:?}");
        process_a.purge_expired_cache();
    }

    async fn stale_active_key_in_another_process_is_detected_on_write(fx) {
        let options = VaultOptions { cache_ttl: Duration::from_secs(60), ..VaultOptions::default() };
        let a = fx.open(&fx.key_file(), options.clone()).await;
        let b = fx.open(&fx.key_file(), options).await;
        a.put("t1", "x", b"1").await.unwrap();
        b.put("t1", "y", b"2").await.unwrap(); // b caches data key 1 as active
        a.rotate_dek("t1").await.unwrap();
        // b's cached active key is stale: the insert notices and b retries with key 2.
        let written = b.put("t1", "z", b"3").await.unwrap();
        let info = b.versions("t1", "z").await.unwrap();
        assert_eq!(info[0].dek_version, 2);
        assert_eq!(a.resolve(&written.reference).await.unwrap().expose(), b"3");
    }

    async fn concurrent_first_writes_of_a_tenant(fx) {
        let vault = Arc::new(fx.open(&fx.key_file(), VaultOptions::default()).await);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let vault = Arc::clone(&vault);
            tasks.push(tokio::spawn(async move {
                vault.put("new-tenant", &format!("s{i}"), format!("v{i}").as_bytes()).await
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            let stored = task.await.unwrap().unwrap();
            assert_eq!(vault.resolve(&stored.reference).await.unwrap().expose(), format!("v{i}").as_bytes());
        }
        let keys = vault.data_keys("new-tenant").await.unwrap();
        assert_eq!(keys.len(), 1);
    }

    async fn errors_and_debug_output_never_show_secrets(fx) {
        let vault = fx.vault().await;
        let plaintext = "canary-6f1d9a7c-plaintext";
        let stored = vault.put("t1", "canary", plaintext.as_bytes()).await.unwrap();
        let secret = vault.resolve(&stored.reference).await.unwrap();
        assert_eq!(format!("{secret}"), "[REDACTED]");
        assert_eq!(format!("{secret:?}"), "[REDACTED]");
        let mut text = format!("{vault:?} {stored:?} {:?}", vault.versions("t1", "canary").await.unwrap());
        vault.rotate("t1", "canary", b"canary-second").await.unwrap();
        for error in [
            vault.put("t1", "canary", plaintext.as_bytes()).await.unwrap_err(),
            vault.resolve(&SecretRef::new("t1", "canary", 9)).await.unwrap_err(),
            vault.decrypt_blob("t1", plaintext.as_bytes(), &[1, 0, 0, 0, 1, 1, 2, 3]).await.unwrap_err(),
        ] {
            text.push_str(&format!("{error} {error:?}"));
        }
        let key = std::fs::read_to_string(fx.key_path()).unwrap();
        assert!(!text.contains(plaintext), "{text}");
        assert!(!text.contains(key.trim()), "{text}");
        assert!(!text.contains("canary-second"), "{text}");
    }
}
