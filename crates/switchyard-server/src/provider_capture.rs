//! Where provider call captures go: sealed with the tenant's data key and stored as blobs
//! of kind [`BLOB_KIND`] (`{tenant}/provider-capture/{yyyy}/{mm}/{dd}/cap_{ulid}`), kept for
//! `retention.provider_captures` and purged by day like the other blob kinds. Each is listed
//! in [`CaptureIndex`] (table `provider_captures`: what was called, when, with what status),
//! so a connection's captures can be listed without opening them.
//!
//! The stack hands a capture over on the call's task; [`BlobCaptureSink`] only queues it and a
//! task of its own encrypts and writes. A full queue drops the capture (counted in
//! `switchyard_provider_captures_dropped_total`): captures are diagnostics and must never slow
//! or fail a provider call.
//!
//! Captures are not re-sealed when a tenant's data key is rotated: once the old key is retired
//! (after the rotation's grace period), older captures can no longer be read. They are
//! short-lived diagnostics, and the rotation must not wait on them.

use bytes::Bytes;
use serde::Serialize;
use switchyard_blob::{BlobError, BlobKey, BlobStore};
use switchyard_core::{ConnectionId, TenantId};
use switchyard_http::{Capture, CaptureSink};
use switchyard_store::{Database, DbTime, Page, StoreError, with_conn};
use switchyard_vault::{AuditedVault, VaultError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const BLOB_KIND: &str = "provider-capture";

const DROPPED_TOTAL: &str = "switchyard_provider_captures_dropped_total";

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("capture for an invalid tenant id")]
    Tenant,
    #[error("capture not found")]
    NotFound,
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("capture could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Index(#[from] StoreError),
}

impl From<sqlx::Error> for CaptureError {
    fn from(error: sqlx::Error) -> Self {
        Self::Index(error.into())
    }
}

/// One capture as the index lists it; the capture itself is read with [`read`].
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CaptureSummary {
    /// `cap_…`.
    pub id: String,
    #[schema(value_type = Option<String>)]
    pub connection_id: Option<ConnectionId>,
    pub provider: String,
    pub method: String,
    /// The route template (`/api/v1/users/{id}`).
    pub route: String,
    /// The attempt of the call (1 for the first; retries are captured too).
    pub attempt: u32,
    /// The provider's answer; `null` when none came (a timeout, a connection error).
    pub status: Option<u16>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub captured_at: time::OffsetDateTime,
}

const COLUMNS: &str =
    "id, connection_id, provider, method, route, attempt, status, captured_at, blob_key";

/// A row as [`COLUMNS`] lists it.
type Row = (
    String,
    Option<String>,
    String,
    String,
    String,
    i32,
    Option<i32>,
    DbTime,
    String,
);

/// The row's summary and blob key.
fn summary(row: Row) -> (CaptureSummary, String) {
    let (id, connection, provider, method, route, attempt, status, at, key) = row;
    let summary = CaptureSummary {
        id,
        connection_id: connection.and_then(|c| c.parse().ok()),
        provider,
        method,
        route,
        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
        status: status.and_then(|s| u16::try_from(s).ok()),
        captured_at: at.get(),
    };
    (summary, key)
}

/// The `provider_captures` table: one row per stored capture, scoped by tenant.
#[derive(Debug, Clone)]
pub struct CaptureIndex {
    database: Database,
}

impl CaptureIndex {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    async fn insert(&self, key: &BlobKey, capture: &Capture) -> Result<(), CaptureError> {
        let sql = format!(
            "INSERT INTO provider_captures (tenant_id, {COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        // INTEGER is 32 bits on PostgreSQL.
        let status = capture.response.as_ref().map(|r| i32::from(r.status));
        let attempt = i32::try_from(capture.attempt).unwrap_or(i32::MAX);
        with_conn!(&self.database, |conn| {
            sqlx::query(&sql)
                .bind(key.tenant())
                .bind(key.id())
                .bind(capture.connection.as_deref())
                .bind(&capture.provider)
                .bind(&capture.request.method)
                .bind(&capture.route)
                .bind(attempt)
                .bind(status)
                .bind(DbTime::new(capture.at))
                .bind(key.to_string())
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// The captures of `connection`, newest first, after the cursor `before` (an id).
    pub async fn list(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Page<CaptureSummary, String>, CaptureError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM provider_captures \
             WHERE tenant_id = $1 AND connection_id = $2 AND ($3 IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        );
        let rows: Vec<Row> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(connection.to_string())
                .bind(before)
                .bind(i64::from(limit) + 1)
                .fetch_all(&mut *conn)
                .await?
        });
        let captures = rows.into_iter().map(|row| summary(row).0).collect();
        Ok(Page::from_overfetch(
            captures,
            limit,
            |c: &CaptureSummary| c.id.clone(),
        ))
    }

    /// The capture `id` of `connection` and its blob key.
    pub async fn get(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        id: &str,
    ) -> Result<Option<(CaptureSummary, String)>, CaptureError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM provider_captures \
             WHERE tenant_id = $1 AND connection_id = $2 AND id = $3"
        );
        let row: Option<Row> = with_conn!(&self.database, |conn| {
            sqlx::query_as(&sql)
                .bind(tenant.to_string())
                .bind(connection.to_string())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        });
        Ok(row.map(summary))
    }
}

/// What the API reads captures with: the index, and the sealed blobs it names.
#[derive(Debug, Clone)]
pub struct Captures {
    pub index: CaptureIndex,
    blobs: BlobStore,
    vault: AuditedVault,
}

impl Captures {
    pub fn new(index: CaptureIndex, blobs: BlobStore, vault: AuditedVault) -> Self {
        Self {
            index,
            blobs,
            vault,
        }
    }

    /// The capture `id` of `connection`, opened. `None` when the tenant's connection has no
    /// such capture, or its blob is gone (purged, or the tenant's key with it).
    pub async fn open(
        &self,
        tenant: TenantId,
        connection: &ConnectionId,
        id: &str,
    ) -> Result<Option<(CaptureSummary, serde_json::Value)>, CaptureError> {
        let Some((summary, key)) = self.index.get(&tenant, connection, id).await? else {
            return Ok(None);
        };
        match read(&self.blobs, &self.vault, tenant, &key).await {
            Ok(capture) => Ok(Some((summary, capture))),
            Err(CaptureError::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// Queues captures for the writer task.
#[derive(Debug, Clone)]
pub struct BlobCaptureSink {
    queue: mpsc::Sender<Capture>,
}

impl BlobCaptureSink {
    /// Starts the writer; it ends when every sink clone is dropped and the queue is drained.
    pub fn spawn(
        blobs: BlobStore,
        vault: AuditedVault,
        index: CaptureIndex,
        capacity: usize,
    ) -> (Self, JoinHandle<()>) {
        let (queue, mut pending) = mpsc::channel::<Capture>(capacity.max(1));
        let writer = tokio::spawn(async move {
            while let Some(capture) = pending.recv().await {
                // The blob first: an index row never names a capture that is not there.
                let stored = match store(&blobs, &vault, &capture).await {
                    Ok(key) => index.insert(&key, &capture).await,
                    Err(error) => Err(error),
                };
                if let Err(error) = stored {
                    tracing::warn!(%error, provider = %capture.provider, "could not store a provider call capture");
                }
            }
        });
        (Self { queue }, writer)
    }
}

impl CaptureSink for BlobCaptureSink {
    fn capture(&self, capture: Capture) {
        if self.queue.try_send(capture).is_err() {
            metrics::counter!(DROPPED_TOTAL).increment(1);
        }
    }
}

/// Seals and writes one capture; returns its key.
///
/// # Errors
/// [`CaptureError`] for a bad tenant id, or when the vault or the blob store fail.
pub async fn store(
    blobs: &BlobStore,
    vault: &AuditedVault,
    capture: &Capture,
) -> Result<BlobKey, CaptureError> {
    let tenant: TenantId = capture.tenant.parse().map_err(|_| CaptureError::Tenant)?;
    let id = format!("cap_{}", ulid::Ulid::new());
    let key = BlobKey::new(tenant.to_string(), BLOB_KIND, capture.at, id)?;
    let json = serde_json::to_vec(capture)?;
    let sealed = vault
        .encrypt_blob(tenant, key.to_string().as_bytes(), &json)
        .await?;
    blobs.put(&key, Bytes::from(sealed)).await?;
    Ok(key)
}

/// Reads one capture back (JSON), for the tenant that owns it.
///
/// # Errors
/// [`CaptureError::NotFound`] for another tenant's key, a key of another kind or a purged
/// capture; vault and blob failures.
pub async fn read(
    blobs: &BlobStore,
    vault: &AuditedVault,
    tenant: TenantId,
    key: &str,
) -> Result<serde_json::Value, CaptureError> {
    let parsed: BlobKey = key.parse().map_err(|_| CaptureError::NotFound)?;
    if parsed.tenant() != tenant.to_string() || parsed.kind() != BLOB_KIND {
        return Err(CaptureError::NotFound);
    }
    let sealed = match blobs.get(&parsed).await {
        Ok(sealed) => sealed,
        Err(BlobError::NotFound { .. }) => return Err(CaptureError::NotFound),
        Err(error) => return Err(error.into()),
    };
    let json = vault.decrypt_blob(tenant, key.as_bytes(), &sealed).await?;
    Ok(serde_json::from_slice(&json)?)
}
