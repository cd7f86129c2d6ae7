//! Shared fixture: a migrated database with the vault and audit log on it, and recorders as
//! separate processes would have them (each with its own pool).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use secrecy::SecretString;
use switchyard_audit::{Actor, AuditLog, AuditOptions, AuditWriter};
use switchyard_core::TenantId;
use switchyard_health::{HealthOptions, HealthRecorder};
use switchyard_http::{AttemptRecord, OutcomeClass};
use switchyard_outbound::{Endpoints, EndpointsConfig, NewEndpoint};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{BackendFixture, TestBackend, TestDatabase};
use switchyard_vault::{AuditContext, AuditedVault, KekConfig, Vault, VaultOptions, storage_for};

pub struct Fixture {
    pub database: Database,
    pub vault: AuditedVault,
    _audit: AuditWriter,
    // Last: dropped after the pools (PostgreSQL databases are dropped WITH (FORCE)).
    test_db: TestDatabase,
}

impl BackendFixture for Fixture {
    async fn start(backend: TestBackend) -> Option<Self> {
        let test_db = TestDatabase::create(backend).await?;
        let database = Database::connect(test_db.url(), &DatabaseOptions::default())
            .await
            .expect("connect");
        database.migrate().await.expect("migrate");
        let kek = KekConfig::Env {
            key_base64: SecretString::from(
                base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            ),
        };
        let vault = Vault::open(storage_for(&database), &kek, VaultOptions::default())
            .await
            .expect("open the vault");
        let (log, writer) = AuditLog::start(&database, AuditOptions::default());
        Some(Self {
            database,
            vault: AuditedVault::new(Arc::new(vault), log),
            _audit: writer,
            test_db,
        })
    }
}

impl Fixture {
    /// A recorder on the fixture's own pool.
    pub fn recorder(&self) -> HealthRecorder {
        HealthRecorder::new(
            self.database.clone(),
            self.vault.clone(),
            HealthOptions::default(),
        )
    }

    /// A recorder with a pool of its own on the same database, as another process has.
    pub async fn other_process(&self) -> HealthRecorder {
        let database = Database::connect(self.test_db.url(), &DatabaseOptions::default())
            .await
            .expect("connect a second pool");
        HealthRecorder::new(database, self.vault.clone(), HealthOptions::default())
    }

    /// An endpoint of `tenant` subscribed to every connection event.
    pub async fn subscriber(&self, tenant: TenantId) {
        let endpoints = Endpoints::new(
            self.database.clone(),
            self.vault.clone(),
            EndpointsConfig::default(),
        );
        let mut new = NewEndpoint::new("https://hooks.example.com/health");
        new.event_types = vec!["switchyard.connection.*".to_owned()];
        endpoints
            .create(&AuditContext::new(Actor::PlatformAdmin), tenant, new)
            .await
            .expect("create endpoint");
    }

    /// The types of `tenant`'s published events, oldest first, read from the table itself.
    pub async fn event_types(&self, tenant: TenantId) -> Vec<String> {
        let sql = "SELECT event_type FROM webhook_events WHERE tenant_id = $1 \
                   ORDER BY created_at, id";
        let tenant = tenant.to_string();
        match &self.database {
            Database::Sqlite(pool) => sqlx::query_scalar(sql).bind(tenant).fetch_all(pool).await,
            Database::Postgres(pool) => sqlx::query_scalar(sql).bind(tenant).fetch_all(pool).await,
        }
        .expect("read events")
    }

    /// Every text column of the connection's rows, as stored, joined.
    pub async fn stored_text(&self, tenant: TenantId, connection: &str) -> String {
        let sql = "SELECT provider || ' ' || status || ' ' || recent_errors \
                   FROM connection_health WHERE tenant_id = $1 AND connection_id = $2";
        let tenant = tenant.to_string();
        let rows: Vec<String> = match &self.database {
            Database::Sqlite(pool) => {
                sqlx::query_scalar(sql)
                    .bind(tenant)
                    .bind(connection)
                    .fetch_all(pool)
                    .await
            }
            Database::Postgres(pool) => {
                sqlx::query_scalar(sql)
                    .bind(tenant)
                    .bind(connection)
                    .fetch_all(pool)
                    .await
            }
        }
        .expect("read the connection row");
        rows.join("\n")
    }
}

/// An attempt of `connection` in `tenant` now.
pub fn attempt(tenant: TenantId, connection: &str, class: OutcomeClass) -> AttemptRecord {
    let status = match class {
        OutcomeClass::Success => Some(200),
        OutcomeClass::AuthFailure => Some(401),
        OutcomeClass::RateLimited => Some(429),
        OutcomeClass::ClientError => Some(404),
        OutcomeClass::ServerError => Some(503),
        OutcomeClass::Timeout | OutcomeClass::Transport | OutcomeClass::CircuitOpen => None,
    };
    AttemptRecord {
        tenant: tenant.to_string(),
        provider: "github".to_owned(),
        connection: Some(connection.to_owned()),
        method: "GET".to_owned(),
        route: "/repos/{owner}/{repo}/branches".to_owned(),
        status,
        class,
        latency: Duration::from_millis(40),
        at: SystemTime::now(),
        error: (!class.is_success()).then(|| match status {
            Some(code) => format!("http_{code}"),
            None => class.as_str().to_owned(),
        }),
    }
}

/// Records `n` attempts of `class`.
pub fn record_n(
    recorder: &HealthRecorder,
    tenant: TenantId,
    connection: &str,
    class: OutcomeClass,
    n: usize,
) {
    use switchyard_http::CallObserver;
    for _ in 0..n {
        recorder.attempt(&attempt(tenant, connection, class));
    }
}
