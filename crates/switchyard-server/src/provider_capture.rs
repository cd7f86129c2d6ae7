//! Where provider call captures go: sealed with the tenant's data key and stored as blobs
//! of kind [`BLOB_KIND`] (`{tenant}/provider-capture/{yyyy}/{mm}/{dd}/cap_{ulid}`), kept for
//! `retention.provider_captures` and purged by day like the other blob kinds.
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
use switchyard_blob::{BlobError, BlobKey, BlobStore};
use switchyard_core::TenantId;
use switchyard_http::{Capture, CaptureSink};
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
}

/// Queues captures for the writer task.
#[derive(Debug, Clone)]
pub struct BlobCaptureSink {
    queue: mpsc::Sender<Capture>,
}

impl BlobCaptureSink {
    /// Starts the writer; it ends when every sink clone is dropped and the queue is drained.
    pub fn spawn(blobs: BlobStore, vault: AuditedVault, capacity: usize) -> (Self, JoinHandle<()>) {
        let (queue, mut pending) = mpsc::channel::<Capture>(capacity.max(1));
        let writer = tokio::spawn(async move {
            while let Some(capture) = pending.recv().await {
                if let Err(error) = store(&blobs, &vault, &capture).await {
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
