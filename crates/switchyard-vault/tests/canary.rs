//! The vault's canary leak test, in process: every vault path is exercised with unique
//! plaintexts (canaries) while a TRACE subscriber captures every log line of every crate.
//! Then the logs, the `Debug` and `Display` output of every value and error the vault
//! returned, a dump of every table and every file of the test directory (except the key file,
//! the one place a key belongs) are searched for the canaries and the KEKs, raw and encoded.
//! Zero hits allowed.
//!
//! Runs on SQLite and on PostgreSQL (`SWITCHYARD_TEST_DATABASE_URL`; skipped locally when
//! unset, a failure in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    fmt::{Debug, Display},
    io,
    path::Path,
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use secrecy::SecretString;
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{LeakScanner, TestBackend, TestDatabase};
use switchyard_vault::{
    EnvKek, KekConfig, KeyEncryptionKey, KeyState, SecretRef, Vault, VaultError, VaultOptions,
    VaultStorage, storage_for,
};
use tracing_subscriber::{fmt::MakeWriter, fmt::format::FmtSpan, util::SubscriberInitExt};

// ------------------------------------------------------------------ log capture

/// Everything every test of this binary logged, at TRACE, from every target.
#[derive(Clone)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn contents(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the process-wide subscriber once (both tests share it) and returns its buffer.
fn captured_logs() -> LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer(Arc::new(Mutex::new(Vec::new())));
        // `try_init` also routes `log` records (from dependencies that use `log`) into tracing.
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(buffer.clone())
            .finish()
            .try_init()
            .expect("install the global tracing subscriber");
        buffer
    })
    .clone()
}

// ------------------------------------------------------------------ recording helpers

/// Adds the `Debug` output of a returned value.
fn debug(scanner: &mut LeakScanner, label: &str, value: &impl Debug) {
    scanner.add(format!("debug {label}"), format!("{value:?} {value:#?}"));
}

/// Adds the `Debug` and `Display` output of a returned value.
fn shown(scanner: &mut LeakScanner, label: &str, value: &(impl Debug + Display)) {
    debug(scanner, label, value);
    scanner.add(format!("display {label}"), format!("{value} {value:#}"));
}

/// Adds an error's `Debug` and `Display` output and its whole source chain.
fn error(scanner: &mut LeakScanner, label: &str, error: &VaultError) {
    shown(scanner, label, error);
    let mut source = std::error::Error::source(error);
    let mut depth = 0;
    while let Some(cause) = source {
        depth += 1;
        scanner.add(
            format!("error source {depth} of {label}"),
            format!("{cause} {cause:?}"),
        );
        source = cause.source();
    }
}

/// Unwraps an expected error, checks it with `matches`, and records it.
fn expect_error<T: Debug>(
    scanner: &mut LeakScanner,
    label: &str,
    result: Result<T, VaultError>,
    matches: impl Fn(&VaultError) -> bool,
) -> VaultError {
    let failure = match result {
        Ok(value) => panic!("{label}: expected an error, got {value:?}"),
        Err(failure) => failure,
    };
    assert!(matches(&failure), "{label}: unexpected error {failure:?}");
    error(scanner, label, &failure);
    failure
}

/// A random 32-byte KEK as base64, watched (with its hex form) as a secret.
fn random_env_kek(scanner: &mut LeakScanner, label: &str) -> SecretString {
    let mut key = [0_u8; 32];
    rand::rng().fill_bytes(&mut key);
    let encoded = STANDARD.encode(key);
    scanner.watch(&format!("{label} (base64)"), &encoded);
    scanner.watch(&format!("{label} (hex)"), &hex::encode(key));
    SecretString::from(encoded)
}

/// The key file's contents and its decoded key, watched as secrets.
fn watch_key_file(scanner: &mut LeakScanner, path: &Path) {
    let text = std::fs::read_to_string(path).expect("read the key file");
    let encoded = text.trim();
    scanner.watch("key file (base64)", encoded);
    let key = STANDARD.decode(encoded).expect("the key file holds base64");
    assert_eq!(key.len(), 32);
    scanner.watch("key file (hex)", &hex::encode(key));
}

// ------------------------------------------------------------------ the test

const TENANT: &str = "ten_canary";
const DOOMED: &str = "ten_doomed";

async fn open(storage: &Arc<dyn VaultStorage>, kek: &KekConfig, options: VaultOptions) -> Vault {
    Vault::open(Arc::clone(storage), kek, options)
        .await
        .expect("open the vault")
}

fn with_ttl(cache_ttl: Duration) -> VaultOptions {
    VaultOptions {
        cache_ttl,
        ..VaultOptions::default()
    }
}

async fn run_canary_test(backend: TestBackend) {
    let logs = captured_logs();
    let Some(test_db) = TestDatabase::create(backend).await else {
        return;
    };
    let database = Database::connect(test_db.url(), &DatabaseOptions::default())
        .await
        .expect("connect to the test database");
    database.migrate().await.expect("migrate the test database");
    let storage = storage_for(&database);
    let key_path = test_db.path("master.key");
    let key_file = KekConfig::KeyFile {
        path: key_path.clone(),
    };
    let mut scanner = LeakScanner::new();

    // Two processes' worth of vaults on one database: one caching (a long TTL, so its second
    // resolve is served from memory), one not (every resolve reads and unwraps).
    let cached = open(&storage, &key_file, with_ttl(Duration::from_secs(60))).await;
    let uncached = open(&storage, &key_file, with_ttl(Duration::ZERO)).await;
    watch_key_file(&mut scanner, &key_path);
    debug(&mut scanner, "cached vault", &cached);
    debug(&mut scanner, "key file config", &key_file);
    debug(&mut scanner, "kek id", &cached.kek_id());

    // --- put, resolve (uncached, then cached) -----------------------------------------
    let first = scanner.canary("secret-v1");
    let stored = cached
        .put(TENANT, "github/token", first.as_bytes())
        .await
        .unwrap();
    debug(&mut scanner, "put v1", &stored);
    shown(&mut scanner, "put v1 reference", &stored.reference);
    shown(&mut scanner, "put v1 fingerprint", &stored.fingerprint);
    let v1 = stored.reference.clone();

    let secret = uncached.resolve(&v1).await.unwrap();
    assert_eq!(secret.expose(), first.as_bytes());
    shown(&mut scanner, "uncached resolve v1", &secret);
    let secret = cached.resolve(&v1).await.unwrap();
    assert_eq!(secret.expose(), first.as_bytes());
    let before = cached.cache_stats();
    let secret = cached.resolve(&v1).await.unwrap();
    assert_eq!(secret.expose(), first.as_bytes());
    let after = cached.cache_stats();
    assert_eq!(
        after.key_unwraps, before.key_unwraps,
        "served from the cache"
    );
    assert!(after.key_hits > before.key_hits, "served from the cache");
    shown(&mut scanner, "cached resolve v1", &secret);
    debug(&mut scanner, "cache stats", &after);
    shown(
        &mut scanner,
        "current",
        &cached.current(TENANT, "github/token").await.unwrap(),
    );

    // --- rotate, resolve both versions, confirm --------------------------------------
    let second = scanner.canary("secret-v2");
    let rotated = cached
        .rotate(TENANT, "github/token", second.as_bytes())
        .await
        .unwrap();
    debug(&mut scanner, "rotate to v2", &rotated);
    assert_eq!(rotated.replaces, Some(1));
    let v2 = rotated.reference.clone();
    for vault in [&cached, &uncached] {
        let old = vault.resolve(&v1).await.unwrap();
        let new = vault.resolve(&v2).await.unwrap();
        assert_eq!(old.expose(), first.as_bytes());
        assert_eq!(new.expose(), second.as_bytes());
        shown(&mut scanner, "resolve v1 during rotation", &old);
        shown(&mut scanner, "resolve v2 during rotation", &new);
    }
    debug(
        &mut scanner,
        "versions during rotation",
        &uncached.versions(TENANT, "github/token").await.unwrap(),
    );
    // A plaintext offered while a rotation is pending must not show up in the error.
    let refused = scanner.canary("put-while-pending");
    expect_error(
        &mut scanner,
        "put while a rotation is pending",
        uncached
            .put(TENANT, "github/token", refused.as_bytes())
            .await,
        |e| matches!(e, VaultError::RotationPending { .. }),
    );
    cached.confirm(&v2).await.unwrap();
    cached.confirm(&v2).await.unwrap(); // a no-op the second time
    expect_error(
        &mut scanner,
        "resolve a destroyed version (uncached)",
        uncached.resolve(&v1).await,
        |e| matches!(e, VaultError::SecretDestroyed { .. }),
    );
    expect_error(
        &mut scanner,
        "resolve a destroyed version (cached)",
        cached.resolve(&v1).await,
        |e| matches!(e, VaultError::SecretDestroyed { .. }),
    );
    expect_error(
        &mut scanner,
        "confirm a destroyed version",
        cached.confirm(&v1).await,
        |e| matches!(e, VaultError::InvalidTransition { .. }),
    );

    // --- rotate, roll back -----------------------------------------------------------
    let third = scanner.canary("secret-v3-rolled-back");
    let rolled = uncached
        .rotate(TENANT, "github/token", third.as_bytes())
        .await
        .unwrap();
    debug(&mut scanner, "rotate to v3", &rolled);
    let v3 = rolled.reference.clone();
    let secret = cached.resolve(&v3).await.unwrap();
    assert_eq!(secret.expose(), third.as_bytes());
    shown(&mut scanner, "resolve v3", &secret);
    let restored = uncached.rollback(&v3).await.unwrap();
    assert_eq!(restored, v2);
    shown(&mut scanner, "rollback", &restored);
    let secret = uncached.resolve(&restored).await.unwrap();
    assert_eq!(secret.expose(), second.as_bytes());
    shown(&mut scanner, "resolve after rollback", &secret);
    expect_error(
        &mut scanner,
        "resolve a rolled-back version",
        uncached.resolve(&v3).await,
        |e| matches!(e, VaultError::SecretDestroyed { .. }),
    );
    expect_error(
        &mut scanner,
        "roll back without a rotation",
        uncached.rollback(&v2).await,
        |e| matches!(e, VaultError::InvalidTransition { .. }),
    );
    let unknown = scanner.canary("rotate-unknown");
    expect_error(
        &mut scanner,
        "rotate a missing secret",
        uncached.rotate(TENANT, "missing", unknown.as_bytes()).await,
        |e| matches!(e, VaultError::SecretNotFound { .. }),
    );
    let invalid = scanner.canary("invalid-name");
    expect_error(
        &mut scanner,
        "put with an invalid name",
        uncached.put(TENANT, "bad\nname", invalid.as_bytes()).await,
        |e| matches!(e, VaultError::InvalidIdentifier { .. }),
    );
    expect_error(
        &mut scanner,
        "resolve a missing version",
        uncached
            .resolve(&SecretRef::new(TENANT, "github/token", 99))
            .await,
        |e| matches!(e, VaultError::SecretNotFound { .. }),
    );

    // --- fingerprint -----------------------------------------------------------------
    let fingerprint = uncached
        .fingerprint(TENANT, second.as_bytes())
        .await
        .unwrap();
    assert_eq!(fingerprint, rotated.fingerprint);
    shown(&mut scanner, "fingerprint of v2", &fingerprint);
    let unstored = scanner.canary("fingerprint-only");
    shown(
        &mut scanner,
        "fingerprint of an unstored value",
        &cached
            .fingerprint(TENANT, unstored.as_bytes())
            .await
            .unwrap(),
    );

    // --- delete ----------------------------------------------------------------------
    let deleted = scanner.canary("deleted");
    let doomed_secret = cached
        .put(TENANT, "to-delete", deleted.as_bytes())
        .await
        .unwrap();
    debug(&mut scanner, "put to-delete", &doomed_secret);
    cached.resolve(&doomed_secret.reference).await.unwrap();
    let count = cached.delete(TENANT, "to-delete").await.unwrap();
    assert_eq!(count, 1);
    debug(&mut scanner, "delete", &count);
    expect_error(
        &mut scanner,
        "resolve a deleted secret",
        cached.resolve(&doomed_secret.reference).await,
        |e| matches!(e, VaultError::SecretDestroyed { .. }),
    );

    // --- blobs -----------------------------------------------------------------------
    let blob_plain = scanner.canary("blob");
    let blob = cached
        .encrypt_blob(TENANT, b"blobs/one", blob_plain.as_bytes())
        .await
        .unwrap();
    debug(&mut scanner, "encrypt_blob", &blob);
    // The decrypted bytes are the caller's plaintext by design (`Zeroizing<Vec<u8>>` prints
    // them); they are compared, not recorded.
    let opened = uncached
        .decrypt_blob(TENANT, b"blobs/one", &blob)
        .await
        .unwrap();
    assert_eq!(opened.as_slice(), blob_plain.as_bytes());
    expect_error(
        &mut scanner,
        "decrypt a blob in another context",
        uncached.decrypt_blob(TENANT, b"blobs/two", &blob).await,
        |e| matches!(e, VaultError::DecryptionFailed),
    );
    expect_error(
        &mut scanner,
        "decrypt a malformed blob",
        uncached
            .decrypt_blob(TENANT, b"blobs/one", &blob[..8])
            .await,
        |e| matches!(e, VaultError::Malformed { .. }),
    );
    let unchanged = cached
        .reencrypt_blob(TENANT, b"blobs/one", &blob)
        .await
        .unwrap();
    assert_eq!(unchanged, blob, "already on the active key");

    // --- data-key rotation -----------------------------------------------------------
    let dek = uncached.rotate_dek(TENANT).await.unwrap();
    assert_eq!(dek, 2);
    let moved_blob = uncached
        .reencrypt_blob(TENANT, b"blobs/one", &blob)
        .await
        .unwrap();
    debug(&mut scanner, "reencrypt_blob", &moved_blob);
    assert_eq!(Vault::blob_data_key_version(&moved_blob).unwrap(), 2);
    let moved = uncached.reencrypt_secrets(TENANT).await.unwrap();
    assert!(moved >= 1, "{moved}");
    debug(&mut scanner, "reencrypt_secrets", &moved);
    // The caching vault must wait for its TTL before retiring the old key.
    expect_error(
        &mut scanner,
        "retire too early",
        cached.complete_dek_rotation(TENANT).await,
        |e| matches!(e, VaultError::DekRetireTooEarly { .. }),
    );
    let report = uncached.complete_dek_rotation(TENANT).await.unwrap();
    assert_eq!(report.retired, vec![1]);
    debug(&mut scanner, "complete_dek_rotation", &report);
    expect_error(
        &mut scanner,
        "decrypt a blob under a retired key",
        uncached.decrypt_blob(TENANT, b"blobs/one", &blob).await,
        |e| matches!(e, VaultError::DekRetired { .. }),
    );
    assert_eq!(
        uncached
            .decrypt_blob(TENANT, b"blobs/one", &moved_blob)
            .await
            .unwrap()
            .as_slice(),
        blob_plain.as_bytes()
    );
    // A second rotation completed in one call re-encrypts and retires.
    let after_rotation = scanner.canary("written-under-dek-2");
    let under_two = uncached
        .put(TENANT, "under-two", after_rotation.as_bytes())
        .await
        .unwrap();
    assert_eq!(uncached.rotate_dek(TENANT).await.unwrap(), 3);
    let moved_blob = uncached
        .reencrypt_blob(TENANT, b"blobs/one", &moved_blob)
        .await
        .unwrap();
    debug(&mut scanner, "reencrypt_blob 2", &moved_blob);
    assert_eq!(Vault::blob_data_key_version(&moved_blob).unwrap(), 3);
    let report = uncached.complete_dek_rotation(TENANT).await.unwrap();
    assert!(report.reencrypted >= 2, "{report:?}");
    assert_eq!(report.retired, vec![2]);
    debug(&mut scanner, "complete_dek_rotation 2", &report);
    let keys = uncached.data_keys(TENANT).await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.state).collect::<Vec<_>>(),
        [KeyState::Retired, KeyState::Retired, KeyState::Active]
    );
    debug(&mut scanner, "data_keys", &keys);
    let secret = uncached.resolve(&under_two.reference).await.unwrap();
    assert_eq!(secret.expose(), after_rotation.as_bytes());
    shown(&mut scanner, "resolve after dek rotation", &secret);
    drop(cached); // its key ring holds only the key file, about to be rotated out

    // --- KEK rotation: key file -> environment ---------------------------------------
    let env_base64 = random_env_kek(&mut scanner, "env kek");
    let env_config = KekConfig::Env {
        key_base64: env_base64.clone(),
    };
    debug(&mut scanner, "env kek config", &env_config);
    let env_kek: Arc<dyn KeyEncryptionKey> = Arc::new(EnvKek::from_base64(&env_base64).unwrap());
    debug(&mut scanner, "env kek", &env_kek);
    let report = uncached.rotate_kek(Arc::clone(&env_kek)).await.unwrap();
    assert!(report.kek_id.starts_with("env:"), "{report:?}");
    assert!(report.rewrapped >= 2, "{report:?}");
    debug(&mut scanner, "rotate_kek", &report);
    let on_env = open(&storage, &env_config, with_ttl(Duration::from_secs(60))).await;
    debug(&mut scanner, "vault on env kek", &on_env);
    for (reference, plaintext) in [(&v2, &second), (&under_two.reference, &after_rotation)] {
        let secret = on_env.resolve(reference).await.unwrap();
        assert_eq!(secret.expose(), plaintext.as_bytes());
        shown(&mut scanner, "resolve after kek rotation", &secret);
    }
    assert_eq!(
        on_env
            .decrypt_blob(TENANT, b"blobs/one", &moved_blob)
            .await
            .unwrap()
            .as_slice(),
        blob_plain.as_bytes()
    );

    // --- wrong KEKs at open: typed errors, no key material ----------------------------
    expect_error(
        &mut scanner,
        "open with the old key file",
        Vault::open(Arc::clone(&storage), &key_file, with_ttl(Duration::ZERO)).await,
        |e| matches!(e, VaultError::KekMismatch { .. }),
    );
    let wrong = KekConfig::Env {
        key_base64: random_env_kek(&mut scanner, "wrong env kek"),
    };
    expect_error(
        &mut scanner,
        "open with a wrong env kek",
        Vault::open(Arc::clone(&storage), &wrong, with_ttl(Duration::ZERO)).await,
        |e| matches!(e, VaultError::KekMismatch { .. }),
    );
    let missing_path = test_db.path("missing.key");
    expect_error(
        &mut scanner,
        "open with a missing key file",
        Vault::open(
            Arc::clone(&storage),
            &KekConfig::KeyFile {
                path: missing_path.clone(),
            },
            with_ttl(Duration::ZERO),
        )
        .await,
        |e| matches!(e, VaultError::KeyFileMissing { .. }),
    );
    assert!(
        !missing_path.try_exists().unwrap(),
        "no key is created over existing data"
    );
    let not_base64 = SecretString::from(format!("{}!", scanner.canary("bad-kek")));
    expect_error(
        &mut scanner,
        "env kek that is not base64",
        EnvKek::from_base64(&not_base64),
        |e| matches!(e, VaultError::EnvKeyInvalid { .. }),
    );

    // --- crypto-shredding ------------------------------------------------------------
    let doomed_plain = scanner.canary("doomed-secret");
    let doomed = on_env
        .put(DOOMED, "token", doomed_plain.as_bytes())
        .await
        .unwrap();
    let doomed_blob_plain = scanner.canary("doomed-blob");
    let doomed_blob = on_env
        .encrypt_blob(DOOMED, b"blobs/doomed", doomed_blob_plain.as_bytes())
        .await
        .unwrap();
    on_env.resolve(&doomed.reference).await.unwrap(); // warm the cache
    let counts = on_env.shred_tenant(DOOMED).await.unwrap();
    assert_eq!((counts.keys, counts.secret_versions), (2, 1));
    debug(&mut scanner, "shred_tenant", &counts);
    expect_error(
        &mut scanner,
        "resolve in a shredded tenant",
        on_env.resolve(&doomed.reference).await,
        |e| matches!(e, VaultError::TenantShredded { .. }),
    );
    expect_error(
        &mut scanner,
        "resolve in a shredded tenant (uncached)",
        uncached.resolve(&doomed.reference).await,
        |e| matches!(e, VaultError::TenantShredded { .. }),
    );
    expect_error(
        &mut scanner,
        "decrypt a blob of a shredded tenant",
        on_env
            .decrypt_blob(DOOMED, b"blobs/doomed", &doomed_blob)
            .await,
        |e| matches!(e, VaultError::TenantShredded { .. }),
    );
    let late = scanner.canary("put-after-shred");
    expect_error(
        &mut scanner,
        "put in a shredded tenant",
        on_env.put(DOOMED, "token", late.as_bytes()).await,
        |e| matches!(e, VaultError::TenantShredded { .. }),
    );
    expect_error(
        &mut scanner,
        "fingerprint in a shredded tenant",
        on_env.fingerprint(DOOMED, late.as_bytes()).await,
        |e| matches!(e, VaultError::TenantShredded { .. }),
    );
    expect_error(
        &mut scanner,
        "rotate the data key of a shredded tenant",
        on_env.rotate_dek(DOOMED).await,
        |e| matches!(e, VaultError::TenantShredded { .. }),
    );
    // The surviving tenant is untouched.
    assert_eq!(
        on_env.resolve(&v2).await.unwrap().expose(),
        second.as_bytes()
    );
    debug(&mut scanner, "final cache stats", &on_env.cache_stats());
    drop((on_env, uncached));
    database.close().await;

    // --- scan ------------------------------------------------------------------------
    let captured = logs.contents();
    let text = String::from_utf8_lossy(&captured);
    for expected in [
        "rotated tenant data key",
        "rotated key-encryption key",
        "crypto-shredded tenant",
        TENANT,
        // Dependencies' events too: every statement sqlx ran, at DEBUG.
        "sqlx::query",
    ] {
        assert!(
            text.contains(expected),
            "the logs were captured: {expected}"
        );
    }
    scanner.add("logs (TRACE, all targets)", captured);
    scanner.add_database(&test_db).await;
    scanner.add_dir(test_db.dir(), |path| path == key_path);
    assert!(
        scanner.haystack_count() > 100,
        "{}",
        scanner.haystack_count()
    );
    scanner.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    run_canary_test(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    run_canary_test(TestBackend::Postgres).await;
}
