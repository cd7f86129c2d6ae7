//! The composition root: [`App::build`] turns a [`Config`] into a bound, ready server, and
//! [`App::run_until_stopped`] serves until the shutdown token is cancelled. `switchyard
//! serve` and the test harness both go through here, so tests run the production wiring.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    middleware,
    routing::get,
};
use secrecy::ExposeSecret;
use switchyard_config::{Config, ProcessRole};
use switchyard_http::{ConfiguredBackend, InMemoryBackend, RedisBackend};
use switchyard_store::{Database, DatabaseOptions, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};
use tracing::Level;

use switchyard_audit::{AuditLog, AuditOptions, AuditReader, AuditWriter};
use switchyard_inbound::{
    events::InboundEvents,
    sources::{IngestSources, SourceStore},
    writer::{IngestWriter, WriterOptions},
};
use switchyard_jobs::{
    runs::RunStore,
    schedule::{ScheduleStore, Scheduler, SchedulerOptions},
    worker::{Worker, WorkerOptions},
};
use switchyard_vault::AuditedVault;

use crate::{
    AppState,
    admin_token::{self, AdminTokenError, AdminTokenSource},
    background,
    error::{self, ApiError},
    inbound, metrics, outbound, request_id, retention, routes,
    state::ApiSettings,
    vault_setup,
};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create the data directory `{path}`")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database")]
    Database(#[source] StoreError),
    #[error(transparent)]
    Migrate(StoreError),
    #[error("cannot set up the admin token")]
    AdminToken(#[from] AdminTokenError),
    #[error("cannot listen on `{address}`")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install the metrics recorder")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// Fail closed: wrapped keys exist that the configured KEK cannot unwrap.
    #[error("cannot open the credential vault")]
    Vault(#[source] switchyard_vault::VaultError),
    #[error("cannot open the blob store")]
    Blob(#[source] switchyard_blob::BlobError),
    #[error("invalid outbound settings: {0}")]
    Outbound(String),
    #[error("cannot move endpoint header values into the vault")]
    EndpointHeaders(#[source] switchyard_outbound::OutboundError),
    #[error("cannot load the connector manifests: {0}")]
    Connectors(String),
    /// The message names the failure, never the URL (it may hold a password).
    #[error("cannot reach the Redis of `connectors.rate_limit_redis_url`: {0}")]
    RateLimits(#[source] switchyard_http::RateLimitError),
}

/// A built server, listening, not yet serving.
pub struct App {
    listener: TcpListener,
    router: Router,
    state: AppState,
    audit_writer: AuditWriter,
    roles: std::collections::BTreeSet<ProcessRole>,
    retention_classes: Vec<switchyard_store::retention::RetentionClass>,
    shutdown_grace: std::time::Duration,
    worker: switchyard_config::WorkerConfig,
    blob_retention: background::BlobRetention,
    /// Started with the worker role: delivers outbound webhooks.
    dispatcher: Option<switchyard_outbound::Dispatcher>,
    /// Stops the ingest writer once requests have drained.
    ingest_shutdown: tokio_util::sync::CancellationToken,
    ingest_writers: Vec<tokio::task::JoinHandle<()>>,
    /// How often the connector directory is checked for changed manifests.
    connectors_reload: std::time::Duration,
    /// How often the scheduled token refresh runs (set when its schedule is first created).
    oauth_refresh_interval: std::time::Duration,
}

impl App {
    /// Opens and migrates the database, sets up the admin token and binds the listener.
    ///
    /// # Errors
    /// [`StartupError`] saying which step failed.
    pub async fn build(config: &Config) -> Result<App, StartupError> {
        // First: every later step may record metrics.
        let metrics = metrics::install_recorder()?;
        create_data_dir(&config.data_dir)?;
        let database = connect(config).await?;
        database.migrate().await.map_err(StartupError::Migrate)?;
        let vault = vault_setup::open_vault(config, &database)
            .await
            .map_err(StartupError::Vault)?;
        tracing::info!(kek = %vault.kek_id(), "credential vault opened");
        let (audit, audit_writer) = AuditLog::start(&database, AuditOptions::default());
        let audit_reader = AuditReader::new(&database);
        let runs_database = database.clone();
        let store = switchyard_store::open(database);

        match admin_token::ensure_admin_token(
            store.as_ref(),
            config.admin_token.as_ref(),
            &config.data_dir,
        )
        .await?
        {
            AdminTokenSource::Configured => {
                tracing::info!("using the configured platform admin token")
            }
            AdminTokenSource::Generated(path) => tracing::warn!(
                path = %path.display(),
                "generated a platform admin token and wrote it to this file; \
                 keep it safe or set SWITCHYARD_ADMIN_TOKEN"
            ),
            AdminTokenSource::Existing(Some(path)) => {
                tracing::info!(path = %path.display(), "platform admin token was set up earlier")
            }
            AdminTokenSource::Existing(None) => {
                tracing::info!("platform admin token was set up earlier")
            }
        }

        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| StartupError::Bind {
                    address: config.listen.clone(),
                    source,
                })?;
        let bound = listener
            .local_addr()
            .map_or_else(|_| config.listen.clone(), |address| address.to_string());
        let blobs = inbound::open_blobs(config)
            .await
            .map_err(StartupError::Blob)?;
        let ssrf = inbound::ssrf_policy(&config.outbound).map_err(StartupError::Outbound)?;
        let http = switchyard_http::GuardedClient::builder(ssrf.clone())
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|error| StartupError::Outbound(error.to_string()))?;
        let vault = Arc::new(vault);
        let audited_vault = AuditedVault::new(Arc::clone(&vault), audit.clone());
        let sources = SourceStore::new(runs_database.clone(), audited_vault.clone());
        let ingest_shutdown = tokio_util::sync::CancellationToken::new();
        // Acknowledged webhooks must survive an OS crash, not only a process crash.
        let ingest_database = runs_database
            .durable_writer()
            .await
            .map_err(StartupError::Database)?;
        let (writer, ingest_writers) = IngestWriter::start(
            ingest_database,
            blobs.clone(),
            WriterOptions::for_database(&runs_database),
            ingest_shutdown.clone(),
        );
        let public_url = config
            .inbound
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_owned();
        let gateway = inbound::InboundGateway {
            ingest_sources: IngestSources::new(sources.clone(), config.inbound.source_cache_ttl),
            sources,
            writer,
            events: InboundEvents::new(runs_database.clone(), blobs.clone(), audited_vault.clone()),
            keys: inbound::key_cache(http.clone()),
            http,
            public_url,
            default_body_limit: config.inbound.body_limit_bytes,
            default_dedup_window: config.inbound.dedup_window,
        };
        let outbound_api = outbound::OutboundApi {
            endpoints: switchyard_outbound::Endpoints::new(
                runs_database.clone(),
                audited_vault.clone(),
                outbound::endpoints_config(&config.outbound),
            ),
            database: runs_database.clone(),
        };
        outbound::move_legacy_headers(&outbound_api.endpoints)
            .await
            .map_err(StartupError::EndpointHeaders)?;
        // Built here so a bad setting fails the start, not the first delivery.
        let dispatcher = if config.roles.contains(&ProcessRole::Worker) {
            let bodies =
                switchyard_outbound::ResponseBodies::new(blobs.clone(), Some(Arc::clone(&vault)));
            Some(
                switchyard_outbound::Dispatcher::with_response_bodies(
                    runs_database.clone(),
                    audited_vault.clone(),
                    outbound::dispatcher_config(&config.outbound, ssrf),
                    bodies,
                )
                .map_err(|error| StartupError::Outbound(error.to_string()))?,
            )
        } else {
            None
        };
        let rotation = crate::rotation::DekCompletion {
            vault: audited_vault.clone(),
            database: runs_database.clone(),
            inbound_events: gateway.events.clone(),
            response_bodies: switchyard_outbound::ResponseBodies::new(blobs.clone(), Some(vault)),
        };
        let health = switchyard_health::HealthRecorder::new(
            runs_database.clone(),
            audited_vault.clone(),
            switchyard_health::HealthOptions::default(),
        );
        let catalogue = crate::connectors::Catalogue::load(config.connectors.directory.clone())
            .map_err(|error| StartupError::Connectors(error.to_string()))?;
        tracing::info!(
            connectors = catalogue.registry().len(),
            "connector catalogue loaded"
        );
        let oauth = build_oauth(
            config,
            &catalogue,
            &runs_database,
            &audited_vault,
            &audit,
            &gateway,
        );
        let rate_limits = match &config.connectors.rate_limit_redis_url {
            None => ConfiguredBackend::Memory(InMemoryBackend::new()),
            Some(url) => ConfiguredBackend::Redis(
                RedisBackend::connect(
                    url.expose_secret(),
                    config.connectors.rate_limit_key_prefix.clone(),
                )
                .await
                .map_err(StartupError::RateLimits)?,
            ),
        };
        tracing::info!(
            backend = match rate_limits {
                ConfiguredBackend::Memory(_) => "memory",
                ConfiguredBackend::Redis(_) => "redis",
            },
            "provider rate budgets"
        );
        let connectors = crate::connectors::ConnectorService::new(
            catalogue,
            rate_limits,
            runs_database.clone(),
            audited_vault.clone(),
            gateway.http.clone(),
            health.clone(),
            config.connectors.max_action_output_bytes,
            Arc::clone(&oauth.flows.broker),
            Arc::clone(&oauth.refresher),
        );
        let capture_index = crate::provider_capture::CaptureIndex::new(runs_database.clone());
        // The writer ends with the last sink (the process); captures still queued then are
        // lost, as a full queue's are: they are diagnostics.
        let (capture_sink, _capture_writer) = crate::provider_capture::BlobCaptureSink::spawn(
            blobs.clone(),
            audited_vault.clone(),
            capture_index.clone(),
            CAPTURE_QUEUE,
        );
        let connectors = connectors.with_captures(Arc::new(capture_sink));
        let captures = crate::provider_capture::Captures::new(
            capture_index,
            blobs.clone(),
            audited_vault.clone(),
        );
        let state = AppState {
            captures,
            connectors,
            oauth,
            health,
            rotation,
            inbound: Arc::new(gateway),
            outbound: Arc::new(outbound_api),
            store,
            api: Arc::new(ApiSettings::from(&config.api)),
            metrics,
            vault: audited_vault,
            audit,
            audit_reader,
            vault_key_cache_ttl: config.vault.key_cache_ttl,
            runs: RunStore::new(&runs_database),
            retention_deleted_tenants: config.retention.deleted_tenants,
        };
        let serve_api = config.roles.contains(&ProcessRole::Api);
        tracing::info!(roles = ?config.roles, "process roles");
        let router = build_router(&state, serve_api);
        Ok(App {
            listener,
            router,
            state,
            audit_writer,
            roles: config.roles.clone(),
            retention_classes: retention::classes(config),
            shutdown_grace: config.shutdown.grace_period,
            worker: config.worker.clone(),
            blob_retention: background::BlobRetention {
                store: blobs,
                inbound_payloads: config.retention.inbound_payloads,
                delivery_responses: config.retention.webhook_deliveries,
                provider_captures: config.retention.provider_captures,
            },
            dispatcher,
            ingest_shutdown,
            ingest_writers,
            connectors_reload: config.connectors.reload_interval,
            oauth_refresh_interval: config.oauth.refresh_check_interval,
        })
    }

    /// The connection health recorder, to attach to provider clients as an observer.
    pub fn health(&self) -> switchyard_health::HealthRecorder {
        self.state.health.clone()
    }

    /// The bound address (the real port when the configuration asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets in-flight requests
    /// finish for up to the grace period, and closes the database pool.
    ///
    /// # Errors
    /// When the listener fails.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        if let Ok(address) = self.listener.local_addr() {
            tracing::info!(address = %address, "switchyard is listening");
        }
        let upkeep = tokio::spawn(metrics::run_upkeep(
            self.state.metrics.clone(),
            shutdown.clone(),
        ));
        let database = self.state.store.database().clone();
        let worker = self.roles.contains(&ProcessRole::Worker).then(|| {
            let registry = background::registry(
                &self.state,
                self.retention_classes.clone(),
                self.blob_retention.clone(),
            );
            let options = worker_options(&self.worker, self.shutdown_grace);
            Worker::start(database.clone(), registry, options, shutdown.clone())
        });
        let dispatcher = self
            .dispatcher
            .as_ref()
            .map(|dispatcher| dispatcher.start(shutdown.clone()));
        // Stopped only once the work that makes provider calls has, so its last attempts are
        // in the final flush.
        let health_stop = CancellationToken::new();
        let health_flusher = self.state.health.start(health_stop.clone());
        let manifest_watcher = self
            .state
            .connectors
            .catalogue
            .watch(self.connectors_reload, shutdown.clone());
        let scheduler = if self.roles.contains(&ProcessRole::Scheduler) {
            let schedules = ScheduleStore::new(&database);
            if let Err(error) =
                background::ensure_retention_schedule(self.state.store.as_ref(), &schedules).await
            {
                tracing::error!(%error, "could not create the retention schedule");
            }
            if let Err(error) = background::ensure_oauth_refresh_schedule(
                self.state.store.as_ref(),
                &schedules,
                self.oauth_refresh_interval,
            )
            .await
            {
                tracing::error!(%error, "could not create the token refresh schedule");
            }
            let sink = Arc::new(background::QueueTickSink {
                database: database.clone(),
            });
            Some(Scheduler::start(
                &database,
                sink,
                SchedulerOptions::default(),
                shutdown.clone(),
            ))
        } else {
            None
        };
        let server = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future();
        tokio::pin!(server);
        // Biased towards shutdown: once cancelled, the drain must run under the grace timeout
        // even though the server future (watching the same token) is also ready to finish.
        let result = tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                tracing::info!(grace = ?self.shutdown_grace, "shutting down: draining in-flight requests");
                match tokio::time::timeout(self.shutdown_grace, &mut server).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!("grace period over: closing the remaining connections");
                        Ok(())
                    }
                }
            }
            result = &mut server => result,
        };
        upkeep.abort();
        // Requests are answered: let the ingest writer commit what it still holds.
        self.ingest_shutdown.cancel();
        for writer in self.ingest_writers {
            let _ = writer.await;
        }
        // The worker saw the same token: it lets running jobs finish within the grace period,
        // then hands the rest back to the queue.
        if let Some(worker) = worker {
            match worker.join().await {
                Ok(report) => tracing::info!(?report, "worker stopped"),
                Err(error) => tracing::error!(%error, "worker stopped with an error"),
            }
        }
        if let Some(scheduler) = scheduler {
            let _ = scheduler.await;
        }
        // It stopped claiming at the same token; requests in flight finish within the
        // delivery timeout and their outcomes are written.
        if let Some(dispatcher) = dispatcher {
            let _ = dispatcher.await;
        }
        health_stop.cancel();
        let _ = health_flusher.await;
        if let Some(watcher) = manifest_watcher {
            let _ = watcher.await;
        }
        // Requests are done: write what the audit log still holds before the pool closes.
        if let Err(error) = self.audit_writer.shutdown().await {
            tracing::error!(%error, "audit entries could not be written before shutdown");
        }
        self.state.store.database().close().await;
        tracing::info!("stopped");
        result
    }
}

/// Provider call captures waiting for the writer; beyond it they are dropped (and counted).
const CAPTURE_QUEUE: usize = 1024;
/// The OAuth parts: client registrations, connect flows and the token refresher, sharing
/// one token broker (the process's minted-token cache) with the connectors.
fn build_oauth(
    config: &Config,
    catalogue: &crate::connectors::Catalogue,
    database: &Database,
    vault: &AuditedVault,
    audit: &AuditLog,
    gateway: &inbound::InboundGateway,
) -> crate::oauth::OAuthService {
    use crate::oauth::{clients::OAuthClients, connect, refresh};
    use switchyard_connectors::store;
    // Token endpoints are called through the same SSRF-guarded client as providers.
    let broker = Arc::new(
        switchyard_connectors::credentials::TokenBroker::new(gateway.http.clone())
            .with_timeout(config.oauth.token_timeout),
    );
    let clients = OAuthClients::new(
        store::OAuthClientStore::new(database.clone()),
        vault.clone(),
        catalogue.clone(),
    );
    let refresher = Arc::new(refresh::Refresher {
        connections: store::ConnectionStore::new(database.clone()),
        clients: clients.clone(),
        vault: vault.clone(),
        locks: store::RefreshLocks::new(database.clone()),
        broker: Arc::clone(&broker),
        catalogue: catalogue.clone(),
        database: database.clone(),
        audit: audit.clone(),
        margin: config.oauth.refresh_margin,
        schedule: refresh::SchedulePolicy {
            ahead: config.oauth.refresh_margin + config.oauth.refresh_check_interval,
            idle_after: config.oauth.idle_refresh_after,
        },
    });
    let callback_url = config
        .oauth
        .callback_url
        .clone()
        .unwrap_or_else(|| format!("{}/oauth/callback", gateway.public_url));
    let flows = connect::ConnectFlows {
        sessions: store::ConnectSessionStore::new(database.clone()),
        clients,
        broker,
        vault: vault.clone(),
        audit: audit.clone(),
        settings: Arc::new(connect::ConnectSettings {
            public_url: gateway.public_url.clone(),
            callback_url,
            session_ttl: config.oauth.session_ttl,
            state_ttl: config.oauth.state_ttl,
        }),
    };
    crate::oauth::OAuthService { flows, refresher }
}

async fn connect(config: &Config) -> Result<Database, StartupError> {
    let url = config.effective_database_url();
    let options = DatabaseOptions {
        max_connections: config.database.max_connections,
        acquire_timeout: config.database.acquire_timeout,
    };
    let database = Database::connect(url.expose_secret(), &options)
        .await
        .map_err(StartupError::Database)?;
    tracing::info!(backend = ?database.backend(), "database connected");
    Ok(database)
}

fn create_data_dir(path: &std::path::Path) -> Result<(), StartupError> {
    let error = |source| StartupError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The directory holds the admin token and the SQLite database: owner only.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(error)?;
    }
    Ok(())
}

/// Routes plus the layers every request passes through. The last layer added runs first.
fn build_router(state: &AppState, serve_api: bool) -> Router {
    let (routes, document) = routes::router(state, serve_api);
    let document = Arc::new(document);
    routes
        .route("/metrics", get(routes::operations::metrics))
        .route(
            "/openapi.json",
            get(move || {
                let document = Arc::clone(&document);
                async move { axum::Json(document.as_ref().clone()) }
            }),
        )
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.api.body_limit_bytes))
        .layer(CatchPanicLayer::custom(|_panic| {
            axum::response::IntoResponse::into_response(ApiError::internal("handler panicked"))
        }))
        .layer(middleware::from_fn(metrics::middleware))
        .layer(
            TraceLayer::new_for_http()
                // The path only: query strings may carry things that do not belong in logs
                // (an OAuth callback's code and state), and connect pages' paths are redacted.
                .make_span_with(|request: &Request| {
                    tracing::info_span!("http", otel.kind = "server", method = %request.method(), path = %loggable_path(request.uri().path()))
                })
                .on_request(())
                .on_response(tower_http::trace::DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(middleware::from_fn(request_id::middleware))
        .with_state(state.clone())
}

/// A request path as logs may show it: a connect page's session token is its capability,
/// so `/connect/{token}/…` keeps only the route.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/connect/") {
        Some(rest) => {
            let after_token = rest.find('/').map_or("", |at| &rest[at..]);
            format!("/connect/{{token}}{after_token}").into()
        }
        None => path.into(),
    }
}

/// The worker's options from configuration.
fn worker_options(
    config: &switchyard_config::WorkerConfig,
    shutdown_grace: std::time::Duration,
) -> WorkerOptions {
    WorkerOptions {
        concurrency: config.concurrency,
        claim_batch: config.claim_batch,
        kind_concurrency: config.kind_concurrency.clone().into_iter().collect(),
        tenant_share: (config.tenant_share > 0).then_some(config.tenant_share),
        lease: config.lease,
        heartbeat_interval: config.heartbeat_interval,
        shutdown_grace,
        ..WorkerOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn connect_tokens_never_reach_the_logs() {
        assert_eq!(loggable_path("/connect/s3cr3t"), "/connect/{token}");
        assert_eq!(
            loggable_path("/connect/s3cr3t/oauth/slack"),
            "/connect/{token}/oauth/slack"
        );
        assert_eq!(loggable_path("/v1/connections"), "/v1/connections");
        assert_eq!(loggable_path("/oauth/callback"), "/oauth/callback");
    }
}
