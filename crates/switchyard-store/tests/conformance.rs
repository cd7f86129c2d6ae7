//! The store conformance suite: the same test bodies on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchyard_core::{ApiKeyId, Role, TenantId};
use switchyard_store::{
    Database, DatabaseOptions, IdempotencyStart, NewApiKey, NewTenant, StoreError, StoredResponse,
    retention,
};
use switchyard_test_support::{TestDatabase, TestStore, backend_tests};

fn tenant_named(name: &str) -> NewTenant {
    NewTenant {
        name: name.to_owned(),
        environment: Some("sandbox".to_owned()),
    }
}

fn key_for(tenant: TenantId, hash: &str, role: Role) -> NewApiKey {
    NewApiKey {
        tenant_id: tenant,
        name: format!("key {hash}"),
        role,
        key_hash: hash.to_owned(),
        prefix: "sy_abcd".to_owned(),
    }
}

backend_tests! { TestStore;
    async fn creates_and_reads_a_tenant(store) {
        let created = store.create_tenant(tenant_named("Acme")).await.unwrap();
        assert_eq!(created.name, "Acme");
        assert_eq!(created.environment.as_deref(), Some("sandbox"));
        let read = store.get_tenant(created.id).await.unwrap().unwrap();
        assert_eq!(read, created, "a tenant reads back exactly as created");
        assert!(store.get_tenant(TenantId::generate()).await.unwrap().is_none());
    }

    async fn pages_tenants_in_creation_order(store) {
        let mut created = Vec::new();
        for index in 0..5 {
            created.push(store.create_tenant(tenant_named(&format!("t{index}"))).await.unwrap().id);
        }
        let first = store.list_all_tenants(None, 2).await.unwrap();
        assert_eq!(first.items.iter().map(|t| t.id).collect::<Vec<_>>(), created[..2]);
        let second = store.list_all_tenants(first.next_after, 2).await.unwrap();
        assert_eq!(second.items.iter().map(|t| t.id).collect::<Vec<_>>(), created[2..4]);
        let last = store.list_all_tenants(second.next_after, 2).await.unwrap();
        assert_eq!(last.items.iter().map(|t| t.id).collect::<Vec<_>>(), created[4..]);
        assert_eq!(last.next_after, None, "the last page has no continuation");
    }

    async fn authenticates_only_unrevoked_keys(store) {
        let tenant = store.create_tenant(tenant_named("Acme")).await.unwrap();
        let key = store.create_api_key(key_for(tenant.id, "hash-1", Role::Write)).await.unwrap();
        let principal = store.find_active_key_by_hash("hash-1").await.unwrap().unwrap();
        assert_eq!((principal.key_id, principal.tenant_id, principal.role), (key.id, tenant.id, Role::Write));
        assert!(store.find_active_key_by_hash("hash-2").await.unwrap().is_none());

        let revoked = store.revoke_api_key(tenant.id, key.id).await.unwrap().unwrap();
        let revoked_at = revoked.revoked_at.expect("revocation time set");
        assert!(store.find_active_key_by_hash("hash-1").await.unwrap().is_none());
        let again = store.revoke_api_key(tenant.id, key.id).await.unwrap().unwrap();
        assert_eq!(again.revoked_at, Some(revoked_at), "revoking twice keeps the first time");
    }

    async fn scopes_api_keys_to_their_tenant(store) {
        let a = store.create_tenant(tenant_named("A")).await.unwrap();
        let b = store.create_tenant(tenant_named("B")).await.unwrap();
        let key = store.create_api_key(key_for(a.id, "hash-a", Role::Admin)).await.unwrap();
        assert!(store.get_api_key(b.id, key.id).await.unwrap().is_none());
        assert!(store.revoke_api_key(b.id, key.id).await.unwrap().is_none());
        assert!(store.list_api_keys(b.id, None, 10).await.unwrap().items.is_empty());
        assert!(store.find_active_key_by_hash("hash-a").await.unwrap().is_some(), "B could not revoke A's key");
        assert_eq!(store.list_api_keys(a.id, None, 10).await.unwrap().items, vec![key.clone()]);
        assert_eq!(store.get_api_key(a.id, key.id).await.unwrap(), Some(key));
        assert!(store.get_api_key(a.id, ApiKeyId::generate()).await.unwrap().is_none());
    }

    async fn rejects_a_duplicate_key_hash(store) {
        let tenant = store.create_tenant(tenant_named("Acme")).await.unwrap();
        store.create_api_key(key_for(tenant.id, "same", Role::Read)).await.unwrap();
        let error = store.create_api_key(key_for(tenant.id, "same", Role::Read)).await.unwrap_err();
        assert!(matches!(error, StoreError::Database(_)), "{error:?}");
    }

    async fn claims_an_idempotency_key_once(store) {
        let ttl = time::Duration::hours(24);
        assert_eq!(store.claim_idempotency_key("s", "k", "h1", ttl).await.unwrap(), IdempotencyStart::Claimed);
        assert_eq!(store.claim_idempotency_key("s", "k", "h1", ttl).await.unwrap(), IdempotencyStart::InProgress);
        assert_eq!(store.claim_idempotency_key("s", "k", "h2", ttl).await.unwrap(), IdempotencyStart::Mismatch);
        assert_eq!(store.claim_idempotency_key("other", "k", "h2", ttl).await.unwrap(), IdempotencyStart::Claimed, "scopes are separate");

        let response = StoredResponse { status: 201, content_type: Some("application/json".into()), body: b"{}".to_vec() };
        store.complete_idempotency_key("s", "k", &response).await.unwrap();
        assert_eq!(store.claim_idempotency_key("s", "k", "h1", ttl).await.unwrap(), IdempotencyStart::Completed(response.clone()));
        store.release_idempotency_key("s", "k").await.unwrap();
        assert_eq!(
            store.claim_idempotency_key("s", "k", "h1", ttl).await.unwrap(),
            IdempotencyStart::Completed(response),
            "a completed record is not released"
        );
    }

    async fn frees_released_and_expired_idempotency_keys(store) {
        let ttl = time::Duration::hours(24);
        assert_eq!(store.claim_idempotency_key("s", "k", "h1", ttl).await.unwrap(), IdempotencyStart::Claimed);
        store.release_idempotency_key("s", "k").await.unwrap();
        assert_eq!(store.claim_idempotency_key("s", "k", "h2", ttl).await.unwrap(), IdempotencyStart::Claimed);
        assert_eq!(
            store.claim_idempotency_key("s", "k", "h3", time::Duration::ZERO - time::Duration::seconds(1)).await.unwrap(),
            IdempotencyStart::Claimed,
            "an expired record is forgotten"
        );
    }

    async fn one_of_many_racing_claims_wins(store) {
        let ttl = time::Duration::hours(24);
        let claims = (0..16).map(|_| store.claim_idempotency_key("race", "k", "h", ttl));
        let outcomes = futures::future::join_all(claims).await;
        let winners = outcomes.iter().filter(|o| matches!(o, Ok(IdempotencyStart::Claimed))).count();
        assert_eq!(winners, 1, "{outcomes:?}");
    }

    async fn deleting_a_tenant_hides_it_and_revokes_its_keys(store) {
        let doomed = store.create_tenant(tenant_named("Doomed")).await.unwrap();
        let kept = store.create_tenant(tenant_named("Kept")).await.unwrap();
        store.create_api_key(key_for(doomed.id, "doomed-key", Role::Admin)).await.unwrap();
        store.create_api_key(key_for(kept.id, "kept-key", Role::Admin)).await.unwrap();

        let deleted = store.mark_tenant_deleted(doomed.id).await.unwrap().unwrap();
        assert!(deleted.deleted_at.is_some());
        assert!(store.mark_tenant_deleted(doomed.id).await.unwrap().is_none(), "deleting twice finds nothing");
        assert!(store.get_tenant(doomed.id).await.unwrap().is_none());
        assert!(store.find_active_key_by_hash("doomed-key").await.unwrap().is_none(), "keys revoked at once");
        assert!(store.find_active_key_by_hash("kept-key").await.unwrap().is_some());
        let listed = store.list_all_tenants(None, 10).await.unwrap();
        assert_eq!(listed.items.iter().map(|t| t.id).collect::<Vec<_>>(), vec![kept.id]);
    }

    async fn purges_only_tenants_deleted_before_the_cutoff(store) {
        let doomed = store.create_tenant(tenant_named("Doomed")).await.unwrap();
        let kept = store.create_tenant(tenant_named("Kept")).await.unwrap();
        store.create_api_key(key_for(doomed.id, "doomed-key", Role::Admin)).await.unwrap();
        store.mark_tenant_deleted(doomed.id).await.unwrap();

        let classes = retention::store_classes(std::time::Duration::from_secs(3600), std::time::Duration::from_secs(3600));
        let tenants = classes.iter().find(|class| class.name == "deleted_tenants").unwrap();
        let database = store.database().clone();
        let before_deletion = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
        assert_eq!(retention::purge_expired(&database, tenants, before_deletion, 10).await.unwrap().rows, 0, "still inside the window");
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
        assert_eq!(retention::purge_expired(&database, tenants, later, 10).await.unwrap().rows, 1, "only the deleted tenant");
        assert!(store.list_api_keys(doomed.id, None, 10).await.unwrap().items.is_empty(), "keys went with it");
        assert!(store.get_tenant(kept.id).await.unwrap().is_some());
    }

    async fn purges_expired_rows_in_batches_and_counts_them_dry(store) {
        let ttl = time::Duration::hours(1);
        for index in 0..7 {
            store.claim_idempotency_key("s", &format!("k{index}"), "h", ttl).await.unwrap();
        }
        let classes = retention::store_classes(std::time::Duration::from_secs(3600), std::time::Duration::from_secs(3600));
        let class = classes.iter().find(|class| class.name == "idempotency_keys").unwrap();
        let database = store.database().clone();
        let past = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
        assert_eq!(retention::count_expired(&database, class, past).await.unwrap().rows, 0, "nothing is that old");
        assert_eq!(retention::purge_expired(&database, class, past, 3).await.unwrap().rows, 0);

        let future = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
        assert_eq!(retention::count_expired(&database, class, future).await.unwrap().rows, 7, "dry run counts");
        assert_eq!(retention::count_expired(&database, class, future).await.unwrap().rows, 7, "and deletes nothing");
        let purged = retention::purge_expired(&database, class, future, 3).await.unwrap();
        assert_eq!(purged.rows, 7, "three batches of at most 3");
        assert_eq!(retention::count_expired(&database, class, future).await.unwrap().rows, 0);
    }

    async fn settings_initialise_once(store) {
        assert_eq!(store.get_setting("x").await.unwrap(), None);
        assert!(store.insert_setting_if_absent("x", "1").await.unwrap());
        assert!(!store.insert_setting_if_absent("x", "2").await.unwrap());
        assert_eq!(store.get_setting("x").await.unwrap().as_deref(), Some("1"));
        store.put_setting("x", "3").await.unwrap();
        assert_eq!(store.get_setting("x").await.unwrap().as_deref(), Some("3"));
    }

    async fn refuses_a_schema_newer_than_the_binary(store) {
        let database = store.database().clone();
        let future_version = database.latest_known_migration() + 1;
        let insert = "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
                      VALUES ($1, 'from the future', CURRENT_TIMESTAMP, TRUE, $2, 0)";
        match &database {
            Database::Sqlite(pool) => {
                sqlx::query(insert).bind(future_version).bind(vec![0u8; 48]).execute(pool).await.unwrap();
            }
            Database::Postgres(pool) => {
                sqlx::query(insert).bind(future_version).bind(vec![0u8; 48]).execute(pool).await.unwrap();
            }
        }
        let error = database.migrate().await.unwrap_err();
        assert!(matches!(error, StoreError::SchemaTooNew { version } if version == future_version), "{error:?}");
        assert!(error.to_string().contains("newer than this binary"));
    }
}

#[tokio::test]
async fn rejects_unknown_url_schemes_without_echoing_the_url() {
    let error = Database::connect("mysql://user:hunter2@host/db", &DatabaseOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::UnsupportedUrl { .. }));
    assert!(!error.to_string().contains("hunter2"));
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let database = TestDatabase::sqlite();
    let Database::Sqlite(pool) = Database::connect(database.url(), &DatabaseOptions::default())
        .await
        .unwrap()
    else {
        panic!("expected SQLite");
    };
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn sqlite_durable_writer_fsyncs_every_commit_on_the_same_file() {
    let database = TestDatabase::sqlite();
    let shared = Database::connect(database.url(), &DatabaseOptions::default())
        .await
        .unwrap();
    let durable = shared.durable_writer().await.unwrap();
    let (Database::Sqlite(shared_pool), Database::Sqlite(durable_pool)) = (&shared, &durable)
    else {
        panic!("expected SQLite");
    };
    // 1 = NORMAL, 2 = FULL.
    let synchronous = |pool| async move {
        let (level,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        level
    };
    assert_eq!(synchronous(shared_pool).await, 1);
    assert_eq!(synchronous(durable_pool).await, 2);
    sqlx::query("CREATE TABLE durable_probe (id INTEGER)")
        .execute(durable_pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO durable_probe VALUES (7)")
        .execute(durable_pool)
        .await
        .unwrap();
    let (seen,): (i64,) = sqlx::query_as("SELECT id FROM durable_probe")
        .fetch_one(shared_pool)
        .await
        .unwrap();
    assert_eq!(seen, 7, "both pools open the same file");
}
