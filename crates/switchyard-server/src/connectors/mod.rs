//! Connections and what is done through them: the server side of the connector framework
//! (`docs/connectors.md`).
//!
//! - [`action_job`]: actions ready to run, and the `connector.action` job of `"async": true`
//!   ones; [`action_results`]: what those came to.
//! - [`catalogue`]: the connectors this process serves, reloaded when their directory changes.
//! - [`credentials`]: connection credentials from the vault, placed per attempt.
//! - [`sync_job`]: the `connector.sync` job that runs a stream's sync as a run.
//! - [`webhooks`]: verified webhooks of linked sources, handed to their connection's connector.
//!
//! [`ConnectorService`] owns the flows that span the vault, the connection store and the
//! provider call stack: creating a connection (its credential goes to the vault first, the
//! row holds only the reference), rotating its credential (the new version is checked before
//! the old one is destroyed), testing it, running actions.

pub mod action_job;
pub mod action_results;
pub mod catalogue;
pub mod credentials;
pub mod sync_job;
pub mod webhooks;

use std::sync::Arc;

use serde_json::{Map, Value};
use switchyard_connectors::manifest::{AuthMode, ErrorKind};
use switchyard_connectors::store::{
    Connection, ConnectionStatus, ConnectionStore, ConnectionUpdate, CredentialRef,
    CredentialStatus, NewConnection, RecordStore, StoreError,
};
use switchyard_connectors::{
    CallContext, CheckReport, ConnectionContext, Connector, ConnectorError, ProviderCalls,
    credentials::{TokenBroker, check_fields},
};
use switchyard_core::{ConnectionId, ErrorCode, TenantId};
use switchyard_http::{
    AdaptiveConfig, AdaptiveLimits, BreakerConfig, BreakerRegistry, CaptureSink, ConfiguredBackend,
    CredentialSource, GuardedClient, ProviderClient, Rate, RateLimiter, SystemClock,
};
use switchyard_vault::{AuditContext, AuditedVault, SecretRef, VaultError};

use crate::error::ApiError;
pub use catalogue::Catalogue;
use credentials::{ConnectionCredentials, secret_name};

/// The parts of the provider call stack every connection shares: one rate budget, one set
/// of adaptive states and breakers per process.
#[derive(Clone)]
struct StackParts {
    client: GuardedClient,
    limiter: Arc<RateLimiter<ConfiguredBackend>>,
    adaptive: Arc<AdaptiveLimits>,
    breakers: Arc<BreakerRegistry>,
    health: switchyard_health::HealthRecorder,
    /// Where calls of providers whose manifest enables `limits.capture` are captured.
    captures: Option<Arc<dyn CaptureSink>>,
}

impl StackParts {
    fn client<C: CredentialSource>(&self, credentials: C) -> ProviderClient<ConfiguredBackend, C> {
        let client = ProviderClient::new(
            self.client.clone(),
            Arc::clone(&self.limiter),
            Arc::clone(&self.adaptive),
            Arc::clone(&self.breakers),
            credentials,
        )
        .with_observer(self.health.observer());
        match &self.captures {
            Some(sink) => client.with_capture_sink(Arc::clone(sink)),
            None => client,
        }
    }
}

/// Connections, their credentials and the calls made through them. Cheap to clone.
#[derive(Clone)]
pub struct ConnectorService {
    pub catalogue: Catalogue,
    pub connections: ConnectionStore,
    pub records: RecordStore,
    vault: AuditedVault,
    stack: StackParts,
    credentials: ConnectionCredentials,
    calls: Arc<dyn ProviderCalls>,
    pub max_action_output_bytes: usize,
}

/// A connection to create, as the API received it.
pub struct CreateConnection {
    pub provider: String,
    pub name: String,
    pub config: Value,
    pub base_url: Option<String>,
    /// The auth mode's `type`; may be left out when the connector has one mode.
    pub auth_mode: Option<String>,
    /// The credential fields of the mode; `None` only for a connector that needs none.
    pub credentials: Option<Map<String, Value>>,
}

impl ConnectorService {
    /// `broker` places and mints tokens for every connection of this process; `refresher`
    /// refreshes OAuth tokens that are due before they are placed.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        catalogue: Catalogue,
        rate_limits: ConfiguredBackend,
        database: switchyard_store::Database,
        vault: AuditedVault,
        http: GuardedClient,
        health: switchyard_health::HealthRecorder,
        max_action_output_bytes: usize,
        broker: Arc<TokenBroker>,
        refresher: Arc<crate::oauth::refresh::Refresher>,
    ) -> Self {
        let connections = ConnectionStore::new(database.clone());
        // Without a declared rate a provider is limited by its own signals only; this bucket
        // is the ceiling for scopes that declare none.
        let ceiling = Rate::per_second(std::num::NonZeroU32::MIN.saturating_add(9_999));
        let stack = StackParts {
            client: http,
            limiter: Arc::new(RateLimiter::new(rate_limits, ceiling)),
            adaptive: Arc::new(AdaptiveLimits::new(
                AdaptiveConfig::default(),
                Arc::new(SystemClock),
            )),
            breakers: Arc::new(BreakerRegistry::new(
                BreakerConfig::default(),
                Arc::new(SystemClock),
            )),
            health,
            captures: None,
        };
        let credentials = ConnectionCredentials {
            connections: connections.clone(),
            vault: vault.clone(),
            catalogue: catalogue.clone(),
            broker,
            refresher,
        };
        let calls: Arc<dyn ProviderCalls> = Arc::new(stack.client(credentials.clone()));
        Self {
            catalogue,
            connections,
            records: RecordStore::new(database),
            vault,
            stack,
            credentials,
            calls,
            max_action_output_bytes,
        }
    }

    /// The connector of `provider`, or 404 for an unknown one.
    pub fn connector(&self, provider: &str) -> Result<Arc<dyn Connector>, ApiError> {
        self.catalogue
            .connector(provider)
            .ok_or_else(|| ApiError::not_found(format_args!("provider `{provider}`")))
    }

    /// What a connector call needs to know about `connection`.
    pub fn context(connection: &Connection) -> ConnectionContext {
        ConnectionContext {
            tenant: connection.tenant_id,
            connection: connection.id,
            config: connection.config.clone(),
            base_url: connection.base_url.clone(),
            auth_mode: connection.credential.as_ref().map(|c| c.mode.clone()),
        }
    }

    /// Captures the calls of providers whose manifest enables `limits.capture` into `sink`.
    pub fn with_captures(mut self, sink: Arc<dyn CaptureSink>) -> Self {
        self.stack.captures = Some(sink);
        self.calls = Arc::new(self.stack.client(self.credentials.clone()));
        self
    }

    /// Calls through the stack with the connection's stored credential.
    pub fn calls(&self) -> &dyn ProviderCalls {
        self.calls.as_ref()
    }

    /// The tenant's connection, or 404 (another tenant's is not found either).
    pub async fn get(&self, tenant: TenantId, id: ConnectionId) -> Result<Connection, ApiError> {
        self.connections
            .get(&tenant, &id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::not_found(format_args!("connection `{id}`")))
    }

    fn auth_mode(&self, provider: &str, requested: Option<&str>) -> Result<AuthMode, ApiError> {
        let manifest = self
            .catalogue
            .registry()
            .manifest(provider)
            .ok_or_else(|| {
                ApiError::new(ErrorCode::UnsupportedOperation)
                    .with_detail(format!("`{provider}` takes no stored credentials"))
            })?;
        manifest.auth_mode(requested).cloned().ok_or_else(|| {
            let modes: Vec<&str> = manifest.auth.iter().map(AuthMode::kind).collect();
            ApiError::new(ErrorCode::ValidationFailed).with_detail(match requested {
                Some(kind) => format!("`auth_mode`: `{kind}` is not one of {modes:?}"),
                None => format!("`auth_mode`: choose one of {modes:?}"),
            })
        })
    }

    /// Stores `fields` as a new version of the connection's secret.
    async fn put_secret(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        id: &ConnectionId,
        mode: &AuthMode,
        fields: &Map<String, Value>,
        rotate: bool,
    ) -> Result<switchyard_vault::StoredSecret, ApiError> {
        check_fields(mode, fields).map_err(|e| {
            ApiError::new(ErrorCode::ValidationFailed).with_detail(format!("`credentials`: {e}"))
        })?;
        let plaintext = serde_json::to_vec(fields).map_err(ApiError::internal)?;
        let name = secret_name(id);
        let stored = if rotate {
            self.vault.rotate(context, tenant, &name, &plaintext).await
        } else {
            self.vault.put(context, tenant, &name, &plaintext).await
        };
        stored.map_err(vault_error)
    }

    /// Creates a connection: config checked against the connector's form, credential
    /// checked against its auth mode and stored in the vault, then the row.
    pub async fn create(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        request: CreateConnection,
    ) -> Result<Connection, ApiError> {
        let connector = self.connector(&request.provider)?;
        connector
            .validate_config(&request.config)
            .map_err(connector_error)?;
        let id = ConnectionId::generate();
        let credential = match request.credentials {
            Some(fields) => {
                let mode = self.auth_mode(&request.provider, request.auth_mode.as_deref())?;
                let stored = self
                    .put_secret(context, tenant, &id, &mode, &fields, false)
                    .await?;
                Some(CredentialRef {
                    name: stored.reference.name,
                    version: stored.reference.version,
                    fingerprint: stored.fingerprint.to_string(),
                    mode: mode.kind().to_owned(),
                    expires_at: token_expiry(&mode, &fields),
                    refreshed_at: token_expiry(&mode, &fields)
                        .map(|_| time::OffsetDateTime::now_utc()),
                })
            }
            None => None,
        };
        let created = self
            .connections
            .create(NewConnection {
                tenant_id: tenant,
                id,
                provider: request.provider,
                name: request.name,
                config: request.config,
                base_url: request.base_url,
                credential: credential.clone(),
            })
            .await;
        match created {
            Ok(connection) => Ok(connection),
            Err(error) => {
                // The row is not there: neither may its secret be.
                if credential.is_some()
                    && let Err(cleanup) =
                        self.vault.delete(context, tenant, &secret_name(&id)).await
                {
                    tracing::error!(error = %cleanup, connection = %id, "could not destroy the secret of a connection that was not created");
                }
                Err(store_error(error))
            }
        }
    }

    /// Changes a connection's name, config or base URL (the config checked again).
    pub async fn update(
        &self,
        tenant: TenantId,
        id: ConnectionId,
        update: ConnectionUpdate,
    ) -> Result<Connection, ApiError> {
        if let Some(config) = &update.config {
            let current = self.get(tenant, id).await?;
            self.connector(&current.provider)?
                .validate_config(config)
                .map_err(connector_error)?;
        }
        self.connections
            .update(&tenant, &id, update)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::not_found(format_args!("connection `{id}`")))
    }

    /// Deletes a connection with its records, then destroys its secret.
    pub async fn delete(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        id: ConnectionId,
    ) -> Result<(), ApiError> {
        let deleted = self
            .connections
            .delete(&tenant, &id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::not_found(format_args!("connection `{id}`")))?;
        if deleted.credential.is_some() {
            match self.vault.delete(context, tenant, &secret_name(&id)).await {
                Ok(_) | Err(VaultError::SecretNotFound { .. }) => {}
                Err(error) => return Err(vault_error(error)),
            }
        }
        Ok(())
    }

    /// Refuses calls through a disabled connection, or one whose provider refused its
    /// refresh token (a person must authorize it again through a connect session).
    pub fn usable(connection: &Connection) -> Result<(), ApiError> {
        if connection.status != ConnectionStatus::Active {
            return Err(
                ApiError::new(ErrorCode::Conflict).with_detail("the connection is disabled")
            );
        }
        if connection.credential_status == CredentialStatus::ReauthorizationRequired {
            return Err(
                ApiError::new(ErrorCode::ReauthorizationRequired).with_detail(
                    "create a connect session with this `connection_id` to authorize it again",
                ),
            );
        }
        Ok(())
    }

    /// Runs the connector's check with the stored credential.
    pub async fn test(&self, connection: &Connection) -> Result<CheckReport, ApiError> {
        Self::usable(connection)?;
        let connector = self.connector(&connection.provider)?;
        let context = Self::context(connection);
        connector
            .test_connection(CallContext {
                calls: self.calls(),
                connection: &context,
            })
            .await
            .map_err(connector_error)
    }

    /// Rotates the connection's credential: the new version is stored, checked with the
    /// connector's check, and only then made the connection's, the old one destroyed. A new
    /// credential that fails its check is rolled back and the report says why; the old one
    /// stays in use.
    ///
    /// It holds the credential's refresh lock throughout, so a token refresh never meets the
    /// rotation's unconfirmed version (nor has its own write refused mid-rotation).
    pub async fn rotate_credentials(
        &self,
        context: &AuditContext,
        connection: &Connection,
        auth_mode: Option<&str>,
        fields: &Map<String, Value>,
    ) -> Result<(Connection, CheckReport), ApiError> {
        let guard = self
            .credentials
            .refresher
            .locks
            .lock(
                &connection.tenant_id.to_string(),
                &secret_name(&connection.id),
            )
            .await
            .map_err(store_error)?;
        let rotated = self
            .rotate_locked(context, connection, auth_mode, fields)
            .await;
        if let Err(error) = guard.release().await {
            tracing::warn!(
                code = error.code(),
                "the refresh lock was not released cleanly"
            );
        }
        rotated
    }

    async fn rotate_locked(
        &self,
        context: &AuditContext,
        connection: &Connection,
        auth_mode: Option<&str>,
        fields: &Map<String, Value>,
    ) -> Result<(Connection, CheckReport), ApiError> {
        let connector = self.connector(&connection.provider)?;
        let kind = auth_mode.or(connection.credential.as_ref().map(|c| c.mode.as_str()));
        let mode = self.auth_mode(&connection.provider, kind)?;
        let tenant = connection.tenant_id;
        let stored = self
            .put_secret(
                context,
                tenant,
                &connection.id,
                &mode,
                fields,
                connection.credential.is_some(),
            )
            .await?;
        let probe = self.stack.client(self.credentials.probe(
            SecretRef::new(
                tenant.to_string(),
                stored.reference.name.clone(),
                stored.reference.version,
            ),
            mode.clone(),
        ));
        let cx = ConnectionContext {
            auth_mode: Some(mode.kind().to_owned()),
            ..Self::context(connection)
        };
        let report = match connector
            .test_connection(CallContext {
                calls: &probe,
                connection: &cx,
            })
            .await
        {
            Ok(report) => report,
            Err(ConnectorError::Unsupported { .. }) => {
                return Err(ApiError::new(ErrorCode::UnsupportedOperation)
                    .with_detail("the connector has no check to prove a new credential with"));
            }
            Err(error) => return Err(connector_error(error)),
        };
        if !report.success {
            if stored.replaces.is_some() {
                self.vault
                    .rollback(context, &stored.reference)
                    .await
                    .map_err(vault_error)?;
            } else {
                self.vault
                    .delete(context, tenant, &stored.reference.name)
                    .await
                    .map_err(vault_error)?;
            }
            return Ok((connection.clone(), report));
        }
        let updated = self
            .connections
            .update(
                &tenant,
                &connection.id,
                ConnectionUpdate {
                    credential: Some(Some(CredentialRef {
                        name: stored.reference.name.clone(),
                        version: stored.reference.version,
                        fingerprint: stored.fingerprint.to_string(),
                        mode: mode.kind().to_owned(),
                        expires_at: token_expiry(&mode, fields),
                        refreshed_at: token_expiry(&mode, fields)
                            .map(|_| time::OffsetDateTime::now_utc()),
                    })),
                    // A new credential that passed its check repairs a connection whose
                    // refresh token was refused.
                    credential_status: Some(CredentialStatus::Valid),
                    ..ConnectionUpdate::default()
                },
            )
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::not_found(format_args!("connection `{}`", connection.id)))?;
        if stored.replaces.is_some() {
            // The row points at the new version: the old one may go.
            self.vault
                .confirm(context, &stored.reference)
                .await
                .map_err(vault_error)?;
        }
        Ok((updated, report))
    }
}

/// When an OAuth access token among `fields` expires (`None` for other modes).
fn token_expiry(mode: &AuthMode, fields: &Map<String, Value>) -> Option<time::OffsetDateTime> {
    match mode {
        AuthMode::OAuth2(_) => {
            switchyard_connectors::credentials::oauth::TokenSet::from_fields(fields)
                .ok()?
                .expires_at
        }
        _ => None,
    }
}

/// The store's errors as the API's.
pub fn store_error(error: StoreError) -> ApiError {
    match &error {
        StoreError::NameTaken { .. } => ApiError::new(ErrorCode::Conflict)
            .with_detail("a connection of this tenant has that name"),
        StoreError::ProviderTaken { provider } => ApiError::new(ErrorCode::Conflict).with_detail(
            format!("the tenant already registered an OAuth client for `{provider}`"),
        ),
        StoreError::VersionMismatch { expected, current } => ApiError::new(ErrorCode::Conflict)
            .with_detail(format!(
                "the connection is at version {current}, not {expected}"
            )),
        StoreError::ConnectionNotFound => ApiError::not_found("the connection"),
        StoreError::Invalid { .. } => {
            ApiError::new(ErrorCode::ValidationFailed).with_detail(error.to_string())
        }
        _ => ApiError::internal(error),
    }
}

/// The connector's errors as the API's. Provider answers are excerpts of what the provider
/// said (never what was sent, which carried the credential).
pub fn connector_error(error: ConnectorError) -> ApiError {
    use switchyard_http::ProviderError;
    let detail = error.to_string();
    let code = match &error {
        ConnectorError::Unsupported { .. } => ErrorCode::UnsupportedOperation,
        ConnectorError::InvalidConfig(_) | ConnectorError::InvalidInput(_) => {
            ErrorCode::ValidationFailed
        }
        ConnectorError::UnknownStream(_) | ConnectorError::UnknownAction(_) => ErrorCode::NotFound,
        ConnectorError::Provider(ProviderError::RateLimited(_)) => ErrorCode::RateLimited,
        ConnectorError::Provider(ProviderError::Unavailable(_)) => ErrorCode::ProviderUnavailable,
        ConnectorError::Provider(_)
        | ConnectorError::ProviderStatus { .. }
        | ConnectorError::Refused { .. }
        | ConnectorError::InvalidResponse(_)
        | ConnectorError::ForeignUrl(_) => ErrorCode::ProviderError,
        ConnectorError::Template(_) => ErrorCode::ValidationFailed,
        ConnectorError::Checkpoint(_) => ErrorCode::Internal,
    };
    if code == ErrorCode::Internal {
        return ApiError::internal(error);
    }
    if let ConnectorError::Refused { kind, .. } = &error {
        // A manifest error rule typed the refusal: its kind is the problem's `reason`.
        let code = match kind {
            ErrorKind::RateLimited => ErrorCode::RateLimited,
            _ => ErrorCode::ProviderError,
        };
        return ApiError::new(code)
            .with_reason(kind.code())
            .with_detail(detail);
    }
    ApiError::new(code).with_detail(detail)
}

fn vault_error(error: VaultError) -> ApiError {
    match error {
        VaultError::SecretNotFound { .. } => ApiError::not_found("the connection's credential"),
        VaultError::RotationPending { .. } => ApiError::new(ErrorCode::Conflict)
            .with_detail("another rotation of this credential is being checked"),
        other => ApiError::internal(other),
    }
}
