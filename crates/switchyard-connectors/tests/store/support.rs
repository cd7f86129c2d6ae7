//! Shared fixture: a migrated database with both stores on it, and raw SQL to look under them.

use serde_json::Value;
use switchyard_connectors::store::{
    ConnectionStore, NewConnection, PageCounts, PageWrite, RecordStore, RecordUpsert,
};
use switchyard_core::{ConnectionId, RunId, TenantId};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{BackendFixture, TestBackend, TestDatabase};

pub struct Fixture {
    pub database: Database,
    pub connections: ConnectionStore,
    pub records: RecordStore,
    // Last: dropped after the pools (PostgreSQL databases are dropped WITH (FORCE)).
    _test_db: TestDatabase,
}

impl BackendFixture for Fixture {
    async fn start(backend: TestBackend) -> Option<Self> {
        let test_db = TestDatabase::create(backend).await?;
        let database = Database::connect(test_db.url(), &DatabaseOptions::default())
            .await
            .expect("connect");
        database.migrate().await.expect("migrate");
        Some(Self {
            connections: ConnectionStore::new(database.clone()),
            records: RecordStore::new(database.clone()),
            database,
            _test_db: test_db,
        })
    }
}

/// A record of `key` with `data`.
pub fn record(key: &str, data: Value) -> RecordUpsert {
    RecordUpsert {
        primary_key: key.to_owned(),
        data,
    }
}

/// A page of `stream` with nothing in it yet.
pub fn page<'a>(
    tenant: &'a TenantId,
    connection: &'a ConnectionId,
    stream: &'a str,
    run: Option<&'a RunId>,
) -> PageWrite<'a> {
    PageWrite {
        tenant,
        connection,
        stream,
        run,
        seen_by: None,
        upserts: Vec::new(),
        deletions: Vec::new(),
        seen: Vec::new(),
        checkpoint: None,
    }
}

pub fn counts(added: u64, updated: u64, unchanged: u64, deleted: u64) -> PageCounts {
    PageCounts {
        added,
        updated,
        unchanged,
        deleted,
    }
}

impl Fixture {
    /// A new tenant with one connection named `github`.
    pub async fn tenant_with_connection(&self) -> (TenantId, ConnectionId) {
        let tenant = TenantId::generate();
        let connection = self
            .connections
            .create(NewConnection::new(tenant, "github", "github"))
            .await
            .unwrap();
        (tenant, connection.id)
    }

    /// Rows of `table` belonging to `connection`, counted in SQL under the stores.
    pub async fn rows(&self, table: &str, tenant: &TenantId, connection: &ConnectionId) -> i64 {
        let column = if table == "connections" {
            "id"
        } else {
            "connection_id"
        };
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1 AND {column} = $2");
        let (tenant, connection) = (tenant.to_string(), connection.to_string());
        match &self.database {
            Database::Sqlite(pool) => {
                sqlx::query_scalar(&sql)
                    .bind(tenant)
                    .bind(connection)
                    .fetch_one(pool)
                    .await
            }
            Database::Postgres(pool) => {
                sqlx::query_scalar(&sql)
                    .bind(tenant)
                    .bind(connection)
                    .fetch_one(pool)
                    .await
            }
        }
        .expect("count rows")
    }

    /// Makes every transaction that saves a checkpoint containing `boom` fail at its last
    /// statement, after the records and changes were written.
    pub async fn fail_checkpoints_with_boom(&self) {
        match &self.database {
            Database::Sqlite(pool) => {
                sqlx::query(
                    "CREATE TRIGGER fail_boom BEFORE UPDATE ON sync_streams \
                     WHEN NEW.checkpoint LIKE '%boom%' BEGIN SELECT RAISE(ABORT, 'boom'); END",
                )
                .execute(pool)
                .await
                .unwrap();
            }
            Database::Postgres(pool) => {
                sqlx::query(
                    "CREATE FUNCTION fail_boom() RETURNS trigger LANGUAGE plpgsql \
                     AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$",
                )
                .execute(pool)
                .await
                .unwrap();
                sqlx::query(
                    "CREATE TRIGGER fail_boom BEFORE UPDATE ON sync_streams FOR EACH ROW \
                     WHEN (NEW.checkpoint LIKE '%boom%') EXECUTE FUNCTION fail_boom()",
                )
                .execute(pool)
                .await
                .unwrap();
            }
        }
    }
}
