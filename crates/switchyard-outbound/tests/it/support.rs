//! Shared fixture: a migrated database with the vault and audit log on it, the endpoint store,
//! and a programmable HTTP receiver on 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use secrecy::SecretString;
use switchyard_audit::{Actor, AuditLog, AuditOptions, AuditWriter};
use switchyard_core::TenantId;
use switchyard_http::{BreakerConfig, JitteredSchedule, SsrfPolicy};
use switchyard_outbound::{
    Dispatcher, DispatcherConfig, Endpoints, EndpointsConfig, ManualClock, NewEndpoint,
};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{BackendFixture, TestBackend, TestDatabase};
use switchyard_vault::{AuditContext, AuditedVault, KekConfig, Vault, VaultOptions, storage_for};
use tokio_util::sync::CancellationToken;

pub struct Fixture {
    pub database: Database,
    pub vault: AuditedVault,
    pub endpoints: Endpoints,
    pub context: AuditContext,
    _audit: AuditWriter,
    // Last: dropped after the pool (PostgreSQL databases are dropped WITH (FORCE)).
    _test_db: TestDatabase,
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
        let vault = AuditedVault::new(Arc::new(vault), log);
        let endpoints = Endpoints::new(
            database.clone(),
            vault.clone(),
            EndpointsConfig {
                allow_http: true,
                ..EndpointsConfig::default()
            },
        );
        Some(Self {
            database,
            vault,
            endpoints,
            context: AuditContext::new(Actor::PlatformAdmin),
            _audit: writer,
            _test_db: test_db,
        })
    }
}

/// A dispatcher config for tests: local receivers allowed, quick polling, no jitter.
pub fn test_config(clock: &ManualClock) -> DispatcherConfig {
    DispatcherConfig {
        ssrf: SsrfPolicy::strict()
            .with_allow_http(true)
            .with_allow_cidrs(SsrfPolicy::parse_allow_list("127.0.0.1/32").expect("cidr")),
        poll_interval: Duration::from_millis(50),
        claim_coalesce: Duration::from_millis(1),
        timeout: Duration::from_secs(5),
        schedule: JitteredSchedule::new(vec![Duration::ZERO, Duration::from_secs(3600)], 0.0),
        breaker: Some(BreakerConfig {
            min_calls: 1000,
            ..BreakerConfig::default()
        }),
        rng_seed: Some(42),
        clock: Arc::new(clock.clone()),
        housekeeping_interval: Duration::from_secs(3600),
        // The backlog gauge is process-wide: only the metrics test publishes it.
        backlog_top: 0,
        ..DispatcherConfig::default()
    }
}

pub struct Running {
    pub dispatcher: Dispatcher,
    pub cancel: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.handle).await;
    }
}

impl Fixture {
    pub fn dispatcher(&self, config: DispatcherConfig) -> Running {
        let dispatcher =
            Dispatcher::new(self.database.clone(), self.vault.clone(), config).expect("dispatcher");
        let cancel = CancellationToken::new();
        let handle = dispatcher.start(cancel.clone());
        Running {
            dispatcher,
            cancel,
            handle,
        }
    }

    /// An endpoint of `tenant` at `url` subscribed to `types`, returning its id and secret.
    pub async fn endpoint(
        &self,
        tenant: TenantId,
        url: &str,
        types: &[&str],
    ) -> (switchyard_core::EndpointId, SecretString) {
        let mut new = NewEndpoint::new(url);
        new.event_types = types.iter().map(|t| (*t).to_owned()).collect();
        let created = self
            .endpoints
            .create(&self.context, tenant, new)
            .await
            .expect("create endpoint");
        (created.endpoint.id, created.secret)
    }

    /// The `body` column of an event as stored (sealed), bypassing the crate.
    pub async fn stored_body(&self, event: switchyard_core::MessageId) -> String {
        let sql = "SELECT body FROM webhook_events WHERE id = $1";
        let id = event.to_string();
        match &self.database {
            Database::Sqlite(pool) => sqlx::query_scalar(sql).bind(id).fetch_one(pool).await,
            Database::Postgres(pool) => sqlx::query_scalar(sql).bind(id).fetch_one(pool).await,
        }
        .expect("read the stored body")
    }

    /// Overwrites the `body` column of an event, as a bad restore or a hand edit would.
    pub async fn set_stored_body(&self, event: switchyard_core::MessageId, body: &str) {
        let sql = "UPDATE webhook_events SET body = $2 WHERE id = $1";
        self.update_one(sql, &event.to_string(), body).await;
    }

    /// Runs `sql` with `$1 = id` and `$2 = value`, and asserts it changed one row.
    async fn update_one(&self, sql: &str, id: &str, value: &str) {
        let updated = match &self.database {
            Database::Sqlite(pool) => sqlx::query(sql)
                .bind(id)
                .bind(value)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Database::Postgres(pool) => sqlx::query(sql)
                .bind(id)
                .bind(value)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
        assert_eq!(updated, 1, "{sql}");
    }
}

/// An endpoint row's header columns as stored: the legacy `headers`, `header_names` and
/// `headers_version`, bypassing the crate.
pub type HeaderColumns = (String, String, Option<i32>);

impl Fixture {
    pub async fn header_columns(&self, endpoint: switchyard_core::EndpointId) -> HeaderColumns {
        let sql =
            "SELECT headers, header_names, headers_version FROM webhook_endpoints WHERE id = $1";
        let id = endpoint.to_string();
        match &self.database {
            Database::Sqlite(pool) => sqlx::query_as(sql).bind(id).fetch_one(pool).await,
            Database::Postgres(pool) => sqlx::query_as(sql).bind(id).fetch_one(pool).await,
        }
        .expect("read the header columns")
    }

    /// Puts `headers` (JSON) in the legacy column and forgets the vault's, as a row saved
    /// before migration 0011 looks.
    pub async fn set_legacy_headers(&self, endpoint: switchyard_core::EndpointId, headers: &str) {
        let sql = "UPDATE webhook_endpoints SET headers = $2, header_names = '[]', \
            headers_version = NULL WHERE id = $1";
        self.update_one(sql, &endpoint.to_string(), headers).await;
    }
}

/// What a receiver answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: String::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }
}

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

type Rule = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

#[derive(Default)]
struct ReceiverState {
    rules: HashMap<String, Rule>,
    received: HashMap<String, Vec<Received>>,
}

/// An HTTP server that records every request per path and answers by rule (default 204).
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
}

async fn handle(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Received {
        headers,
        body,
        at: Instant::now(),
    };
    let path = uri.path().to_owned();
    let reply = {
        let mut state = state.lock().unwrap();
        let reply = state
            .rules
            .get(&path)
            .map_or(Reply::status(204), |rule| rule(&received));
        state.received.entry(path).or_default().push(received);
        reply
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn rule(&self, path: &str, rule: impl Fn(&Received) -> Reply + Send + Sync + 'static) {
        self.state
            .lock()
            .unwrap()
            .rules
            .insert(path.to_owned(), Arc::new(rule));
    }

    pub fn reply(&self, path: &str, reply: Reply) {
        self.rule(path, move |_| reply.clone());
    }

    pub fn received(&self, path: &str) -> Vec<Received> {
        self.state
            .lock()
            .unwrap()
            .received
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `path` has received at least `n` requests.
    pub async fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received(path);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: expected {n} requests within {within:?}, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Polls `check` until it returns `Some`, or panics after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
