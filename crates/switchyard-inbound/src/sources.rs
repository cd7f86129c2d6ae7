//! Webhook sources: a URL a provider pushes to, with its verification scheme.
//!
//! The verification secret lives in the vault under `webhook-source/{id}`; the row keeps its
//! version and fingerprint. A rotation makes the new secret current at once and keeps the
//! previous version accepted until the grace period ends, so a provider can switch over
//! without a window of rejected deliveries.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use switchyard_core::{SourceId, TenantId};
use switchyard_store::{Database, DbTime};
use switchyard_vault::{AuditContext, AuditedVault, SecretRef};
use switchyard_webhooks::{Scheme, Secret, SourceConfig};
use time::OffsetDateTime;

use crate::{InboundError, sql::on_pool};

/// A source as stored (no secret material).
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: SourceId,
    pub tenant_id: TenantId,
    pub name: String,
    pub scheme: Scheme,
    pub options: Value,
    pub allow_unverified: bool,
    pub connection_id: Option<String>,
    pub secret: Option<SecretInfo>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Where a source's secret is and how to recognise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub vault_name: String,
    pub version: u32,
    pub fingerprint: String,
    /// The version replaced by the last rotation, accepted until the time given.
    pub previous: Option<(u32, OffsetDateTime)>,
}

/// Options of the gateway itself, kept in `options` beside the scheme's: the largest body
/// accepted and how long a delivery id is remembered for dedup.
const BODY_LIMIT_OPTION: &str = "body_limit_bytes";
const DEDUP_WINDOW_OPTION: &str = "dedup_window_seconds";
/// The largest per-source body limit an operator's tenant may set.
pub const MAX_BODY_LIMIT: u64 = 16 * 1024 * 1024;

impl Source {
    /// The validated verification configuration (the scheme's options, without the
    /// gateway's own).
    pub fn config(&self) -> Result<SourceConfig, InboundError> {
        let mut options = self.options.clone();
        if let Some(map) = options.as_object_mut() {
            for gateway_option in [BODY_LIMIT_OPTION, DEDUP_WINDOW_OPTION] {
                if let Some(value) = map.remove(gateway_option) {
                    validate_gateway_option(gateway_option, &value)?;
                }
            }
        }
        Ok(SourceConfig::from_json(
            self.scheme,
            &options,
            self.allow_unverified,
        )?)
    }

    /// The body limit of this source, else `default`.
    pub fn body_limit(&self, default: usize) -> usize {
        self.options
            .get(BODY_LIMIT_OPTION)
            .and_then(Value::as_u64)
            .and_then(|limit| usize::try_from(limit).ok())
            .unwrap_or(default)
    }

    /// How long this source's delivery ids are remembered, else `default`.
    pub fn dedup_window(&self, default: Duration) -> Duration {
        self.options
            .get(DEDUP_WINDOW_OPTION)
            .and_then(Value::as_u64)
            .map_or(default, Duration::from_secs)
    }
}

fn validate_gateway_option(name: &str, value: &Value) -> Result<(), InboundError> {
    let number = value.as_u64();
    let valid = match name {
        BODY_LIMIT_OPTION => number.is_some_and(|n| (1..=MAX_BODY_LIMIT).contains(&n)),
        _ => number.is_some_and(|n| (60..=366 * 86_400).contains(&n)),
    };
    if valid {
        Ok(())
    } else if name == BODY_LIMIT_OPTION {
        Err(InboundError::Invalid(format!(
            "options.{name}: must be an integer from 1 to {MAX_BODY_LIMIT}"
        )))
    } else {
        Err(InboundError::Invalid(format!(
            "options.{name}: must be an integer from 60 (a minute) to 31622400 (366 days)"
        )))
    }
}

/// What it takes to create a source.
#[derive(Debug)]
pub struct NewSource {
    pub name: String,
    pub scheme: Scheme,
    pub secret: Option<SecretString>,
    pub options: Value,
    pub allow_unverified: bool,
    pub connection_id: Option<String>,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct SourceUpdate {
    pub name: Option<String>,
    pub options: Option<Value>,
    pub allow_unverified: Option<bool>,
    /// `Some(None)` unlinks the connection.
    pub connection_id: Option<Option<String>>,
}

const COLUMNS: &str = "id, tenant_id, name, scheme, options, allow_unverified, connection_id, \
    secret_name, secret_version, secret_fingerprint, previous_secret_version, \
    previous_secret_until, created_at, updated_at";

type Row = (
    String,
    String,
    String,
    String,
    sqlx::types::Json<Value>,
    bool,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<DbTime>,
    DbTime,
    DbTime,
);

fn from_row(row: Row) -> Result<Source, InboundError> {
    let (id, tenant, name, scheme, options, allow_unverified, connection_id) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6);
    let (secret_name, secret_version, fingerprint, previous_version, previous_until) =
        (row.7, row.8, row.9, row.10, row.11);
    let version = |v: i64| u32::try_from(v).map_err(InboundError::corrupt);
    let secret = match (secret_name, secret_version, fingerprint) {
        (Some(vault_name), Some(v), Some(fingerprint)) => Some(SecretInfo {
            vault_name,
            version: version(v)?,
            fingerprint,
            previous: match (previous_version, previous_until) {
                (Some(v), Some(until)) => Some((version(v)?, until.get())),
                _ => None,
            },
        }),
        _ => None,
    };
    Ok(Source {
        id: id.parse().map_err(InboundError::corrupt)?,
        tenant_id: tenant.parse().map_err(InboundError::corrupt)?,
        name,
        scheme: serde_json::from_value(Value::String(scheme)).map_err(InboundError::corrupt)?,
        options: options.0,
        allow_unverified,
        connection_id,
        secret,
        created_at: row.12.get(),
        updated_at: row.13.get(),
    })
}

fn vault_name(id: SourceId) -> String {
    format!("webhook-source/{id}")
}

fn validate_name(name: &str) -> Result<(), InboundError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(InboundError::Invalid(
            "name: must be 1 to 200 characters".to_owned(),
        ));
    }
    Ok(())
}

/// Sources of every tenant, each query scoped by tenant (ingest reads by id alone: the
/// unguessable id in the URL is what the provider was given).
#[derive(Clone)]
pub struct SourceStore {
    database: Database,
    vault: AuditedVault,
}

impl SourceStore {
    pub fn new(database: Database, vault: AuditedVault) -> Self {
        Self { database, vault }
    }

    /// Creates a source; its secret goes to the vault.
    ///
    /// # Errors
    /// [`InboundError::Config`] or [`InboundError::Invalid`] for a bad request.
    pub async fn create(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        new: NewSource,
    ) -> Result<Source, InboundError> {
        validate_name(&new.name)?;
        let options = if new.options.is_null() {
            Value::Object(serde_json::Map::new())
        } else {
            new.options.clone()
        };
        if !options.is_object() {
            return Err(InboundError::Invalid(
                "options: must be an object".to_owned(),
            ));
        }
        let new = NewSource { options, ..new };
        // Validate as the stored source will be read.
        Source {
            id: SourceId::generate(),
            tenant_id: tenant,
            name: new.name.clone(),
            scheme: new.scheme,
            options: new.options.clone(),
            allow_unverified: new.allow_unverified,
            connection_id: None,
            secret: None,
            created_at: OffsetDateTime::now_utc(),
            updated_at: OffsetDateTime::now_utc(),
        }
        .config()?;
        let needs_secret = new.scheme.needs_secret();
        match (&new.secret, needs_secret) {
            (None, true) => {
                return Err(InboundError::Invalid(format!(
                    "secret: scheme `{}` verifies with a secret; give one",
                    new.scheme.as_str()
                )));
            }
            (Some(_), false) => {
                return Err(InboundError::Invalid(format!(
                    "secret: scheme `{}` takes no secret",
                    new.scheme.as_str()
                )));
            }
            (Some(secret), true) if secret.expose_secret().is_empty() => {
                return Err(InboundError::Invalid(
                    "secret: must not be empty".to_owned(),
                ));
            }
            _ => {}
        }
        let id = SourceId::generate();
        let stored = match &new.secret {
            Some(secret) => Some(
                self.vault
                    .put(
                        context,
                        tenant,
                        &vault_name(id),
                        secret.expose_secret().as_bytes(),
                    )
                    .await?,
            ),
            None => None,
        };
        let now = DbTime::now();
        let statement = format!(
            "INSERT INTO webhook_sources ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $11) \
             RETURNING {COLUMNS}"
        );
        let (secret_name, secret_version, fingerprint) = match &stored {
            Some(stored) => (
                Some(stored.reference.name.clone()),
                Some(i64::from(stored.reference.version)),
                Some(stored.fingerprint.as_str().to_owned()),
            ),
            None => (None, None, None),
        };
        let row: Row = on_pool!(&self.database, |pool| {
            sqlx::query_as(&statement)
                .bind(id.to_string())
                .bind(tenant.to_string())
                .bind(&new.name)
                .bind(new.scheme.as_str())
                .bind(sqlx::types::Json(&new.options))
                .bind(new.allow_unverified)
                .bind(&new.connection_id)
                .bind(&secret_name)
                .bind(secret_version)
                .bind(&fingerprint)
                .bind(now)
                .fetch_one(pool)
                .await?
        });
        from_row(row)
    }

    /// A tenant's source.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn get(
        &self,
        tenant: TenantId,
        id: SourceId,
    ) -> Result<Option<Source>, InboundError> {
        let statement =
            format!("SELECT {COLUMNS} FROM webhook_sources WHERE tenant_id = $1 AND id = $2");
        let row: Option<Row> = on_pool!(&self.database, |pool| {
            sqlx::query_as(&statement)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// A source by id alone, for ingest.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn get_for_ingest(&self, id: SourceId) -> Result<Option<Source>, InboundError> {
        let statement = format!("SELECT {COLUMNS} FROM webhook_sources WHERE id = $1");
        let row: Option<Row> = on_pool!(&self.database, |pool| {
            sqlx::query_as(&statement)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// A page of a tenant's sources by id, after `after`; one extra row tells of a next page.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn list(
        &self,
        tenant: TenantId,
        after: Option<SourceId>,
        limit: u32,
    ) -> Result<Vec<Source>, InboundError> {
        let statement = format!(
            "SELECT {COLUMNS} FROM webhook_sources WHERE tenant_id = $1 \
             AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        let rows: Vec<Row> = on_pool!(&self.database, |pool| {
            sqlx::query_as(&statement)
                .bind(tenant.to_string())
                .bind(after.map(|id| id.to_string()))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// Applies `update`; the result is validated as a whole before it is stored.
    ///
    /// # Errors
    /// [`InboundError::Config`] or [`InboundError::Invalid`] for a bad update.
    pub async fn update(
        &self,
        tenant: TenantId,
        id: SourceId,
        update: SourceUpdate,
    ) -> Result<Option<Source>, InboundError> {
        let Some(mut source) = self.get(tenant, id).await? else {
            return Ok(None);
        };
        if let Some(name) = update.name {
            validate_name(&name)?;
            source.name = name;
        }
        if let Some(options) = update.options {
            source.options = options;
        }
        if let Some(allow) = update.allow_unverified {
            source.allow_unverified = allow;
        }
        if let Some(connection) = update.connection_id {
            source.connection_id = connection;
        }
        source.config()?;
        let statement = format!(
            "UPDATE webhook_sources SET name = $3, options = $4, allow_unverified = $5, \
             connection_id = $6, updated_at = $7 WHERE tenant_id = $1 AND id = $2 \
             RETURNING {COLUMNS}"
        );
        let row: Option<Row> = on_pool!(&self.database, |pool| {
            sqlx::query_as(&statement)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .bind(&source.name)
                .bind(sqlx::types::Json(&source.options))
                .bind(source.allow_unverified)
                .bind(&source.connection_id)
                .bind(DbTime::now())
                .fetch_optional(pool)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// Deletes a source and destroys its secret. Its inbound events stay until retention.
    ///
    /// # Errors
    /// On a database or vault failure.
    pub async fn delete(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        id: SourceId,
    ) -> Result<bool, InboundError> {
        let Some(source) = self.get(tenant, id).await? else {
            return Ok(false);
        };
        let deleted = on_pool!(&self.database, |pool| {
            sqlx::query("DELETE FROM webhook_sources WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.to_string())
                .bind(id.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        if let Some(secret) = source.secret {
            self.vault
                .delete(context, tenant, &secret.vault_name)
                .await?;
        }
        Ok(deleted > 0)
    }

    /// Replaces the secret; the previous one stays accepted for `grace`. A rotation still in
    /// its grace period is ended first (its older secret stops being accepted).
    ///
    /// # Errors
    /// [`InboundError::Invalid`] for a source without a secret.
    pub async fn rotate_secret(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        id: SourceId,
        secret: SecretString,
        grace: Duration,
    ) -> Result<Option<Source>, InboundError> {
        let Some(source) = self.get(tenant, id).await? else {
            return Ok(None);
        };
        let Some(current) = source.secret else {
            return Err(InboundError::Invalid(format!(
                "scheme `{}` has no secret to rotate",
                source.scheme.as_str()
            )));
        };
        if secret.expose_secret().is_empty() {
            return Err(InboundError::Invalid(
                "secret: must not be empty".to_owned(),
            ));
        }
        // The vault keeps one previous version per secret: confirming the current one
        // destroys an older previous version, if any, so the rotation below can start.
        let tenant_text = tenant.to_string();
        if current.previous.is_some() {
            let reference = SecretRef::new(&tenant_text, &current.vault_name, current.version);
            self.vault.confirm(context, &reference).await?;
        }
        let stored = self
            .vault
            .rotate(
                context,
                tenant,
                &current.vault_name,
                secret.expose_secret().as_bytes(),
            )
            .await?;
        let until = OffsetDateTime::now_utc()
            + time::Duration::try_from(grace).unwrap_or(time::Duration::DAY);
        let statement = format!(
            "UPDATE webhook_sources SET secret_version = $3, secret_fingerprint = $4, \
             previous_secret_version = $5, previous_secret_until = $6, updated_at = $7 \
             WHERE tenant_id = $1 AND id = $2 RETURNING {COLUMNS}"
        );
        let row: Option<Row> = on_pool!(&self.database, |pool| {
            sqlx::query_as(&statement)
                .bind(&tenant_text)
                .bind(id.to_string())
                .bind(i64::from(stored.reference.version))
                .bind(stored.fingerprint.as_str())
                .bind(i64::from(current.version))
                .bind(DbTime::new(until))
                .bind(DbTime::now())
                .fetch_optional(pool)
                .await?
        });
        row.map(from_row).transpose()
    }
}

/// A source ready to verify deliveries: its validated configuration and its secrets.
#[derive(Debug)]
pub struct ResolvedSource {
    pub source: Source,
    pub config: SourceConfig,
    /// The current secret first, then the previous one while its grace period lasts.
    pub secrets: Vec<Secret>,
}

/// Sources for ingest, with their secrets, kept in memory briefly: a busy source would
/// otherwise cost a database read and an audited vault resolve per delivery. An update made
/// by another process takes effect within the TTL; one made here at once ([`Self::forget`]).
pub struct IngestSources {
    store: SourceStore,
    ttl: Duration,
    cache: Mutex<HashMap<SourceId, (Instant, Arc<ResolvedSource>)>>,
}

impl IngestSources {
    pub fn new(store: SourceStore, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The source with this id, or `None`.
    ///
    /// # Errors
    /// On a database or vault failure, or a stored configuration that no longer validates.
    pub async fn get(&self, id: SourceId) -> Result<Option<Arc<ResolvedSource>>, InboundError> {
        if let Some((at, cached)) = self.lock().get(&id)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(Arc::clone(cached)));
        }
        let Some(source) = self.store.get_for_ingest(id).await? else {
            self.lock().remove(&id);
            return Ok(None);
        };
        let config = source.config()?;
        let mut secrets = Vec::new();
        if let Some(info) = &source.secret {
            let context = AuditContext::new(switchyard_audit::Actor::Internal {
                component: "ingest".to_owned(),
                run_id: None,
            });
            let tenant = source.tenant_id.to_string();
            let current = SecretRef::new(&tenant, &info.vault_name, info.version);
            secrets.push(Secret::new(
                self.store
                    .vault
                    .resolve(&context, &current)
                    .await?
                    .expose()
                    .to_vec(),
            ));
            if let Some((version, until)) = info.previous
                && until > OffsetDateTime::now_utc()
            {
                let previous = SecretRef::new(&tenant, &info.vault_name, version);
                // A previous version confirmed away meanwhile is simply no longer accepted.
                if let Ok(secret) = self.store.vault.resolve(&context, &previous).await {
                    secrets.push(Secret::new(secret.expose().to_vec()));
                }
            }
        }
        let resolved = Arc::new(ResolvedSource {
            source,
            config,
            secrets,
        });
        self.lock()
            .insert(id, (Instant::now(), Arc::clone(&resolved)));
        Ok(Some(resolved))
    }

    /// Drops a cached source after this process changed it.
    pub fn forget(&self, id: SourceId) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SourceId, (Instant, Arc<ResolvedSource>)>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
