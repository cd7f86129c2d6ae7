//! Endpoints: a tenant's subscribers, their filters and settings, and their signing secrets.
//!
//! The `whsec_` secret (and the optional `whsk_` ed25519 key) live only in the vault, under
//! `outbound/{endpoint}/secret` and `outbound/{endpoint}/signing-key`; the row holds their
//! names, versions and the secret's fingerprint. A rotation makes a new vault version current
//! and keeps the previous one readable until the grace period ends
//! ([`Endpoints::expire_rotations`] then confirms the rotation, destroying the old version);
//! meanwhile deliveries carry both signatures.
//!
//! Custom header values are credentials too and live in the vault as well ([`headers`]).

mod headers;

pub(crate) use headers::{decode as decode_headers, secret_name as headers_secret_name};

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use switchyard_core::{EndpointId, TenantId};
use switchyard_store::{Database, DbTime, Page};
use switchyard_vault::{AuditContext, AuditedVault, SecretRef};
use switchyard_webhooks::standard_webhooks::{SigningKey, SigningSecret};
use time::OffsetDateTime;

use crate::db::{db_time, parse_id, parse_json, to_i32, to_u32, with_conn};
use crate::error::{OutboundError, Result};
use crate::filter::validate_patterns;
use crate::model::{CreatedEndpoint, Endpoint, EndpointSecret, EndpointUpdate, NewEndpoint};

const TABLE: &str = "webhook_endpoints";
const MAX_URL_LEN: usize = 2048;
const MAX_SCHEDULE_STEPS: usize = 30;
const MAX_STEP: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const MAX_RATE: u32 = 100_000;
const MAX_PAGE: u32 = 500;

/// Endpoint settings that are the operator's, not the tenant's.
#[derive(Debug, Clone)]
pub struct EndpointsConfig {
    /// Accept `http://` URLs (tests, or an operator who accepts clear-text bodies).
    pub allow_http: bool,
    /// How long deliveries are signed with the old secret too after a rotation.
    pub rotation_grace: Duration,
}

impl Default for EndpointsConfig {
    fn default() -> Self {
        Self {
            allow_http: false,
            rotation_grace: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// A secret rotation.
#[derive(Debug, Default)]
pub struct RotateSecret {
    /// The new `whsec_`; generated when absent.
    pub secret: Option<SecretString>,
    /// Overrides the configured grace period (zero: the old secret stops at once).
    pub grace: Option<Duration>,
}

/// The vault names and versions behind an endpoint's signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyVersions {
    pub secret_name: String,
    pub secret_version: u32,
    pub signing_key_name: Option<String>,
    pub signing_key_version: Option<u32>,
    pub previous_secret_version: Option<u32>,
    pub previous_signing_key_version: Option<u32>,
    pub previous_expires_at: Option<OffsetDateTime>,
    /// The vault version of the custom headers (`outbound/{endpoint}/headers`); `None`: none.
    pub headers_version: Option<u32>,
}

/// An endpoint with its key versions, as the dispatcher needs it.
#[derive(Debug, Clone)]
pub(crate) struct EndpointRecord {
    pub endpoint: Endpoint,
    pub keys: KeyVersions,
}

pub(crate) const COLUMNS: &str = "id, tenant_id, url, description, event_types, header_names, \
    headers_version, rate_limit, ordering, retry_schedule, enabled, disabled_reason, secret_name, \
    secret_version, secret_fingerprint, signing_key_name, signing_key_version, public_key, \
    previous_secret_version, previous_signing_key_version, previous_expires_at, failing_since, \
    created_at, updated_at";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EndpointRow {
    id: String,
    tenant_id: String,
    url: String,
    description: String,
    event_types: String,
    header_names: String,
    headers_version: Option<i32>,
    rate_limit: Option<i32>,
    ordering: String,
    retry_schedule: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    secret_name: String,
    secret_version: i32,
    secret_fingerprint: String,
    signing_key_name: Option<String>,
    signing_key_version: Option<i32>,
    public_key: Option<String>,
    previous_secret_version: Option<i32>,
    previous_signing_key_version: Option<i32>,
    previous_expires_at: Option<DbTime>,
    failing_since: Option<DbTime>,
    created_at: DbTime,
    updated_at: DbTime,
}

impl TryFrom<EndpointRow> for EndpointRecord {
    type Error = OutboundError;

    fn try_from(row: EndpointRow) -> Result<Self> {
        let schedule: Option<Vec<u64>> = row
            .retry_schedule
            .as_deref()
            .map(|text| parse_json(TABLE, text))
            .transpose()?;
        let endpoint = Endpoint {
            id: parse_id(TABLE, &row.id)?,
            tenant: parse_id(TABLE, &row.tenant_id)?,
            url: row.url,
            description: row.description,
            event_types: parse_json(TABLE, &row.event_types)?,
            header_names: parse_json(TABLE, &row.header_names)?,
            rate_limit: row.rate_limit.map(to_u32),
            ordering: row
                .ordering
                .parse()
                .map_err(|e| OutboundError::corrupt(TABLE, e))?,
            retry_schedule: schedule
                .map(|steps| steps.into_iter().map(Duration::from_millis).collect()),
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            secret_fingerprint: row.secret_fingerprint,
            public_key: row.public_key,
            rotation_expires_at: row.previous_expires_at.map(DbTime::get),
            failing_since: row.failing_since.map(DbTime::get),
            created_at: row.created_at.get(),
            updated_at: row.updated_at.get(),
        };
        let keys = KeyVersions {
            secret_name: row.secret_name,
            secret_version: to_u32(row.secret_version),
            signing_key_name: row.signing_key_name,
            signing_key_version: row.signing_key_version.map(to_u32),
            previous_secret_version: row.previous_secret_version.map(to_u32),
            previous_signing_key_version: row.previous_signing_key_version.map(to_u32),
            previous_expires_at: row.previous_expires_at.map(DbTime::get),
            headers_version: row.headers_version.map(to_u32),
        };
        Ok(Self { endpoint, keys })
    }
}

fn secret_name(id: EndpointId) -> String {
    format!("outbound/{id}/secret")
}

fn signing_key_name(id: EndpointId) -> String {
    format!("outbound/{id}/signing-key")
}

/// Checks a destination URL: absolute, `https` (or `http` when allowed), a host, no
/// credentials. Where it resolves to is checked at connect time by the SSRF guard.
pub fn validate_url(url: &str, allow_http: bool) -> Result<()> {
    if url.len() > MAX_URL_LEN {
        return Err(OutboundError::invalid("url", "at most 2048 characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| OutboundError::invalid("url", e.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => {
            return Err(OutboundError::invalid(
                "url",
                if allow_http {
                    "must be an http or https URL"
                } else {
                    "must be an https URL"
                },
            ));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(OutboundError::invalid("url", "must have a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(OutboundError::invalid(
            "url",
            "must not contain credentials; use custom headers",
        ));
    }
    Ok(())
}

fn validate_rate(rate: Option<u32>) -> Result<()> {
    match rate {
        Some(0) => Err(OutboundError::invalid("rate_limit", "must be at least 1")),
        Some(n) if n > MAX_RATE => Err(OutboundError::invalid("rate_limit", "at most 100000")),
        _ => Ok(()),
    }
}

fn validate_schedule(schedule: Option<&[Duration]>) -> Result<()> {
    let Some(steps) = schedule else {
        return Ok(());
    };
    if steps.is_empty() || steps.len() > MAX_SCHEDULE_STEPS {
        return Err(OutboundError::invalid("retry_schedule", "1 to 30 steps"));
    }
    if steps.iter().any(|s| *s > MAX_STEP) {
        return Err(OutboundError::invalid(
            "retry_schedule",
            "steps of at most 7 days",
        ));
    }
    Ok(())
}

fn schedule_json(schedule: Option<&[Duration]>) -> Option<String> {
    schedule.map(|steps| {
        let millis: Vec<u64> = steps
            .iter()
            .map(|s| u64::try_from(s.as_millis()).unwrap_or(u64::MAX))
            .collect();
        serde_json::Value::from(millis).to_string()
    })
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    // Vectors of strings and string maps always serialise.
    serde_json::to_string(value).unwrap_or_default()
}

fn clamp_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE))
}

/// The endpoint store. Every method is scoped by tenant: another tenant's endpoint is
/// [`OutboundError::NotFound`], exactly like a missing one.
#[derive(Debug, Clone)]
pub struct Endpoints {
    database: Database,
    vault: AuditedVault,
    config: EndpointsConfig,
}

impl Endpoints {
    pub fn new(database: Database, vault: AuditedVault, config: EndpointsConfig) -> Self {
        Self {
            database,
            vault,
            config,
        }
    }

    pub fn config(&self) -> &EndpointsConfig {
        &self.config
    }

    /// Creates an endpoint with a new (or the given) signing secret, returned this once.
    ///
    /// # Errors
    /// [`OutboundError::Invalid`] for a bad field; vault and database failures.
    pub async fn create(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        new: NewEndpoint,
    ) -> Result<CreatedEndpoint> {
        validate_url(&new.url, self.config.allow_http)?;
        validate_patterns(&new.event_types)?;
        headers::validate(&new.headers)?;
        validate_rate(new.rate_limit)?;
        validate_schedule(new.retry_schedule.as_deref())?;
        let secret = match &new.secret {
            Some(text) => SigningSecret::parse(text.expose_secret())?,
            None => SigningSecret::generate()?,
        };
        let whsec = secret.to_whsec();
        let id = EndpointId::generate();
        let stored = self
            .vault
            .put(
                context,
                tenant,
                &secret_name(id),
                whsec.expose_secret().as_bytes(),
            )
            .await?;
        let mut key_version = None;
        let mut public_key = None;
        if new.v1a {
            let key = SigningKey::generate()?;
            let stored_key = self
                .vault
                .put(
                    context,
                    tenant,
                    &signing_key_name(id),
                    key.to_whsk().expose_secret().as_bytes(),
                )
                .await?;
            key_version = Some(stored_key.reference.version);
            public_key = Some(key.public_key().to_whpk());
        }
        let mut headers_version = None;
        if !new.headers.is_empty() {
            let stored_headers = self
                .vault
                .put(
                    context,
                    tenant,
                    &headers::secret_name(id),
                    headers::encode(&new.headers).expose_secret().as_bytes(),
                )
                .await?;
            headers_version = Some(stored_headers.reference.version);
        }
        let now = db_time(OffsetDateTime::now_utc());
        let inserted = with_conn!(&self.database, |conn| {
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, \
                    headers, header_names, headers_version, rate_limit, ordering, \
                    retry_schedule, enabled, secret_name, secret_version, secret_fingerprint, \
                    signing_key_name, signing_key_version, public_key, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, '{}', $6, $7, $8, $9, $10, TRUE, $11, $12, $13, \
                    $14, $15, $16, $17, $17)",
            )
            .bind(id.to_string())
            .bind(tenant.to_string())
            .bind(&new.url)
            .bind(&new.description)
            .bind(json_text(&new.event_types))
            .bind(json_text(&headers::names(&new.headers)))
            .bind(headers_version.map(to_i32))
            .bind(new.rate_limit.map(to_i32))
            .bind(new.ordering.as_str())
            .bind(schedule_json(new.retry_schedule.as_deref()))
            .bind(secret_name(id))
            .bind(to_i32(stored.reference.version))
            .bind(stored.fingerprint.as_str())
            .bind(new.v1a.then(|| signing_key_name(id)))
            .bind(key_version.map(to_i32))
            .bind(public_key.as_deref())
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|done| done.rows_affected())
        });
        if let Err(error) = inserted {
            // Leave no orphaned secret behind; the insert error is the one to report.
            let _ = self.vault.delete(context, tenant, &secret_name(id)).await;
            if new.v1a {
                let _ = self
                    .vault
                    .delete(context, tenant, &signing_key_name(id))
                    .await;
            }
            if headers_version.is_some() {
                let _ = self
                    .vault
                    .delete(context, tenant, &headers::secret_name(id))
                    .await;
            }
            return Err(error.into());
        }
        let endpoint = self.get(tenant, id).await?;
        Ok(CreatedEndpoint {
            endpoint,
            secret: whsec,
        })
    }

    pub(crate) async fn record(&self, tenant: TenantId, id: EndpointId) -> Result<EndpointRecord> {
        let row: Option<EndpointRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?
        });
        row.ok_or(OutboundError::NotFound { what: "endpoint" })?
            .try_into()
    }

    /// One endpoint of the tenant.
    ///
    /// # Errors
    /// [`OutboundError::NotFound`].
    pub async fn get(&self, tenant: TenantId, id: EndpointId) -> Result<Endpoint> {
        Ok(self.record(tenant, id).await?.endpoint)
    }

    /// Up to `limit` (1–500) endpoints of the tenant after `after`, in creation order.
    pub async fn list(
        &self,
        tenant: TenantId,
        after: Option<EndpointId>,
        limit: u32,
    ) -> Result<Page<Endpoint, EndpointId>> {
        let limit = clamp_limit(limit);
        let rows: Vec<EndpointRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 \
                 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
            ))
            .bind(tenant.to_string())
            .bind(after.map(|a| a.to_string()))
            .bind(limit + 1)
            .fetch_all(&mut *conn)
            .await?
        });
        let mut items = rows
            .into_iter()
            .map(|row| EndpointRecord::try_from(row).map(|r| r.endpoint))
            .collect::<Result<Vec<_>>>()?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_after = if more {
            items.last().map(|e| e.id)
        } else {
            None
        };
        Ok(Page { items, next_after })
    }

    /// Applies `update`; the dispatcher sees it from its next claim on. New header values go
    /// to the vault (audited with `context`).
    ///
    /// # Errors
    /// [`OutboundError::NotFound`], [`OutboundError::Invalid`]; [`OutboundError::Conflict`]
    /// when the headers were changed concurrently.
    pub async fn update(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        id: EndpointId,
        update: EndpointUpdate,
    ) -> Result<Endpoint> {
        let record = self.record(tenant, id).await?;
        if let Some(url) = &update.url {
            validate_url(url, self.config.allow_http)?;
        }
        if let Some(patterns) = &update.event_types {
            validate_patterns(patterns)?;
        }
        if let Some(Some(headers)) = &update.headers {
            headers::validate(headers)?;
        }
        if let Some(rate) = update.rate_limit {
            validate_rate(rate)?;
        }
        if let Some(schedule) = &update.retry_schedule {
            validate_schedule(schedule.as_deref())?;
        }
        if let Some(headers) = &update.headers {
            let changed = self
                .set_headers(context, &record, headers.as_ref(), headers::Change::Update)
                .await?;
            if !changed {
                return Err(OutboundError::Conflict(
                    "the endpoint's headers were changed meanwhile; try again".into(),
                ));
            }
        }
        let current = record.endpoint;
        let url = update.url.unwrap_or(current.url);
        let description = update.description.unwrap_or(current.description);
        let event_types = update.event_types.unwrap_or(current.event_types);
        let rate_limit = update.rate_limit.unwrap_or(current.rate_limit);
        let ordering = update.ordering.unwrap_or(current.ordering);
        let schedule = update.retry_schedule.unwrap_or(current.retry_schedule);
        let now = db_time(OffsetDateTime::now_utc());
        let updated = with_conn!(&self.database, |conn| {
            sqlx::query(
                "UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5, \
                    rate_limit = $6, ordering = $7, retry_schedule = $8, updated_at = $9 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(&url)
            .bind(&description)
            .bind(json_text(&event_types))
            .bind(rate_limit.map(to_i32))
            .bind(ordering.as_str())
            .bind(schedule_json(schedule.as_deref()))
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(OutboundError::NotFound { what: "endpoint" });
        }
        self.get(tenant, id).await
    }

    /// Deletes the endpoint, its queue (deliveries and attempts) and its secrets.
    ///
    /// # Errors
    /// [`OutboundError::NotFound`].
    pub async fn delete(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        id: EndpointId,
    ) -> Result<()> {
        let record = self.record(tenant, id).await?;
        let deleted = with_conn!(&self.database, |conn| {
            sqlx::query("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.to_string())
                .bind(id.to_string())
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if deleted == 0 {
            return Err(OutboundError::NotFound { what: "endpoint" });
        }
        self.vault
            .delete(context, tenant, &record.keys.secret_name)
            .await?;
        if let Some(name) = &record.keys.signing_key_name {
            self.vault.delete(context, tenant, name).await?;
        }
        if record.keys.headers_version.is_some() {
            self.vault
                .delete(context, tenant, &headers::secret_name(id))
                .await?;
        }
        Ok(())
    }

    /// Enables the endpoint and forgets its failure streak; its pending deliveries resume.
    pub async fn enable(&self, tenant: TenantId, id: EndpointId) -> Result<Endpoint> {
        self.set_enabled(tenant, id, true, None).await
    }

    /// Disables the endpoint: nothing new is fanned out to it and its pending deliveries wait.
    pub async fn disable(
        &self,
        tenant: TenantId,
        id: EndpointId,
        reason: &str,
    ) -> Result<Endpoint> {
        self.set_enabled(tenant, id, false, Some(reason)).await
    }

    async fn set_enabled(
        &self,
        tenant: TenantId,
        id: EndpointId,
        enabled: bool,
        reason: Option<&str>,
    ) -> Result<Endpoint> {
        let now = db_time(OffsetDateTime::now_utc());
        let updated = with_conn!(&self.database, |conn| {
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = $3, disabled_reason = $4, \
                    failing_since = NULL, updated_at = $5 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(enabled)
            .bind(reason)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(OutboundError::NotFound { what: "endpoint" });
        }
        if enabled {
            crate::publish::wake(&self.database).await?;
        }
        self.get(tenant, id).await
    }

    /// The endpoint's current secret (and, during a rotation's grace period, the previous one).
    ///
    /// # Errors
    /// [`OutboundError::NotFound`]; vault failures.
    pub async fn get_secret(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        id: EndpointId,
    ) -> Result<EndpointSecret> {
        let record = self.record(tenant, id).await?;
        self.secret_of(context, &record, OffsetDateTime::now_utc())
            .await
    }

    async fn secret_of(
        &self,
        context: &AuditContext,
        record: &EndpointRecord,
        now: OffsetDateTime,
    ) -> Result<EndpointSecret> {
        let tenant = record.endpoint.tenant.to_string();
        let keys = &record.keys;
        let resolve = |version: u32| {
            let reference = SecretRef::new(tenant.clone(), keys.secret_name.clone(), version);
            async move {
                let secret = self.vault.resolve(context, &reference).await?;
                let text = secret
                    .expose_str()
                    .ok_or_else(|| OutboundError::corrupt(TABLE, "secret is not text"))?;
                Ok::<_, OutboundError>(SecretString::from(text.to_owned()))
            }
        };
        let secret = resolve(keys.secret_version).await?;
        let previous = match (keys.previous_secret_version, keys.previous_expires_at) {
            (Some(version), Some(until)) if until > now => Some(resolve(version).await?),
            _ => None,
        };
        Ok(EndpointSecret {
            secret,
            previous,
            public_key: record.endpoint.public_key.clone(),
        })
    }

    /// Rotates the endpoint's secret (and its `v1a` key, if any). Until the grace period ends,
    /// deliveries carry signatures with the old and the new secret. A rotation still in its
    /// grace period is completed first (its old secret stops at once).
    ///
    /// # Errors
    /// [`OutboundError::NotFound`]; [`OutboundError::Key`] for a malformed secret.
    pub async fn rotate_secret(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        id: EndpointId,
        rotate: RotateSecret,
    ) -> Result<EndpointSecret> {
        let record = self.record(tenant, id).await?;
        let secret = match &rotate.secret {
            Some(text) => SigningSecret::parse(text.expose_secret())?,
            None => SigningSecret::generate()?,
        };
        self.confirm_rotation(context, &record).await?;
        let keys = &record.keys;
        let stored = self
            .vault
            .rotate(
                context,
                tenant,
                &keys.secret_name,
                secret.to_whsec().expose_secret().as_bytes(),
            )
            .await?;
        let mut new_key_version = keys.signing_key_version;
        let mut public_key = record.endpoint.public_key.clone();
        if let Some(name) = &keys.signing_key_name {
            let key = SigningKey::generate()?;
            let stored_key = self
                .vault
                .rotate(
                    context,
                    tenant,
                    name,
                    key.to_whsk().expose_secret().as_bytes(),
                )
                .await?;
            new_key_version = Some(stored_key.reference.version);
            public_key = Some(key.public_key().to_whpk());
        }
        let grace = rotate.grace.unwrap_or(self.config.rotation_grace);
        let now = OffsetDateTime::now_utc();
        let expires = (!grace.is_zero()).then(|| {
            now.checked_add(time::Duration::try_from(grace).unwrap_or(time::Duration::MAX))
                .unwrap_or(now)
        });
        with_conn!(&self.database, |conn| {
            sqlx::query(
                "UPDATE webhook_endpoints SET secret_version = $3, secret_fingerprint = $4, \
                    signing_key_version = $5, public_key = $6, previous_secret_version = $7, \
                    previous_signing_key_version = $8, previous_expires_at = $9, updated_at = $10 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.to_string())
            .bind(id.to_string())
            .bind(to_i32(stored.reference.version))
            .bind(stored.fingerprint.as_str())
            .bind(new_key_version.map(to_i32))
            .bind(public_key.as_deref())
            .bind(expires.map(|_| to_i32(keys.secret_version)))
            .bind(expires.and(keys.signing_key_version).map(to_i32))
            .bind(expires.map(db_time))
            .bind(db_time(now))
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        let record = self.record(tenant, id).await?;
        if expires.is_none() {
            self.confirm_rotation(context, &record).await?;
        }
        self.secret_of(context, &record, now).await
    }

    /// Destroys the previous versions of `record`'s secrets (if a rotation left any).
    async fn confirm_rotation(
        &self,
        context: &AuditContext,
        record: &EndpointRecord,
    ) -> Result<()> {
        let tenant = record.endpoint.tenant.to_string();
        let keys = &record.keys;
        self.vault
            .confirm(
                context,
                &SecretRef::new(
                    tenant.clone(),
                    keys.secret_name.clone(),
                    keys.secret_version,
                ),
            )
            .await?;
        if let (Some(name), Some(version)) = (&keys.signing_key_name, keys.signing_key_version) {
            self.vault
                .confirm(context, &SecretRef::new(tenant, name.clone(), version))
                .await?;
        }
        if keys.previous_expires_at.is_some() {
            with_conn!(&self.database, |conn| {
                sqlx::query(
                    "UPDATE webhook_endpoints SET previous_secret_version = NULL, \
                        previous_signing_key_version = NULL, previous_expires_at = NULL \
                     WHERE id = $1 AND secret_version = $2",
                )
                .bind(record.endpoint.id.to_string())
                .bind(to_i32(keys.secret_version))
                .execute(&mut *conn)
                .await?
                .rows_affected()
            });
        }
        Ok(())
    }

    /// Ends every rotation whose grace period is over (all tenants): the old secret versions are
    /// destroyed. Returns how many. The dispatcher's housekeeping calls this periodically.
    pub async fn expire_rotations(&self, context: &AuditContext) -> Result<u64> {
        let now = db_time(OffsetDateTime::now_utc());
        let rows: Vec<EndpointRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM webhook_endpoints \
                 WHERE previous_expires_at IS NOT NULL AND previous_expires_at <= $1 LIMIT 500"
            ))
            .bind(now)
            .fetch_all(&mut *conn)
            .await?
        });
        let mut done = 0;
        for row in rows {
            let record = EndpointRecord::try_from(row)?;
            self.confirm_rotation(context, &record).await?;
            done += 1;
        }
        Ok(done)
    }
}

/// Loads the given endpoints (any tenant: the dispatcher's view), keyed by id.
pub(crate) async fn load_records(
    database: &Database,
    ids: &[String],
) -> Result<Vec<EndpointRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<EndpointRow> = with_conn!(database, |conn| {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE {}",
            crate::db::member(&*conn, "id", 1)
        );
        let ids = crate::db::list(&*conn, ids);
        sqlx::query_as(&sql).bind(ids).fetch_all(&mut *conn).await?
    });
    rows.into_iter().map(EndpointRecord::try_from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(validate_url("https://example.com/hook", false).is_ok());
        assert!(validate_url("http://example.com/hook", false).is_err());
        assert!(validate_url("http://example.com/hook", true).is_ok());
        assert!(validate_url("ftp://example.com/", true).is_err());
        assert!(validate_url("https://user:pw@example.com/", false).is_err());
        assert!(validate_url("not a url", false).is_err());
    }
}
