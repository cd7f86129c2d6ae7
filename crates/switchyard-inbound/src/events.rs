//! Inbound events as the API shows them, and their stored requests; moving those onto a
//! tenant's new data key ([`InboundEvents::reseal_tenant`]) is in the `reseal` submodule.

mod reseal;

use switchyard_blob::{BlobKey, BlobStore};
use switchyard_core::{InboundEventId, SourceId, TenantId};
use switchyard_store::{Database, DbTime};
use switchyard_vault::AuditedVault;
use time::OffsetDateTime;

use crate::{InboundError, envelope::StoredRequest, sql::on_pool};

/// Where an event is in its processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundStatus {
    /// Stored and queued for processing.
    Received,
    Processed,
    Failed,
}

impl InboundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Processed => "processed",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self, InboundError> {
        match text {
            "received" => Ok(Self::Received),
            "processed" => Ok(Self::Processed),
            "failed" => Ok(Self::Failed),
            other => Err(InboundError::corrupt(format!("inbound status `{other}`"))),
        }
    }
}

impl std::str::FromStr for InboundStatus {
    type Err = InboundError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text).map_err(|_| InboundError::Invalid(format!("unknown status `{text}`")))
    }
}

/// An inbound event's metadata (the payload is read separately, and audited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEvent {
    pub id: InboundEventId,
    pub tenant_id: TenantId,
    pub source_id: SourceId,
    /// The dedup key: the provider's delivery id, else the body's SHA-256.
    pub delivery_id: String,
    pub event_type: Option<String>,
    pub subject: Option<String>,
    pub status: InboundStatus,
    pub error: Option<String>,
    pub body_bytes: u64,
    pub received_at: OffsetDateTime,
    pub processed_at: Option<OffsetDateTime>,
    location: (String, u64, u64),
}

/// Filters of `GET /v1/inbound-events`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub source: Option<SourceId>,
    pub event_type: Option<String>,
    pub status: Option<InboundStatus>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, tenant_id, source_id, dedup_key, event_type, subject, status, error, \
    body_bytes, received_at, processed_at, blob_key, blob_offset, blob_length";

type Row = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i64,
    DbTime,
    Option<DbTime>,
    String,
    i64,
    i64,
);

fn from_row(row: Row) -> Result<InboundEvent, InboundError> {
    let unsigned = |n: i64| u64::try_from(n).map_err(InboundError::corrupt);
    Ok(InboundEvent {
        id: row.0.parse().map_err(InboundError::corrupt)?,
        tenant_id: row.1.parse().map_err(InboundError::corrupt)?,
        source_id: row.2.parse().map_err(InboundError::corrupt)?,
        delivery_id: row.3,
        event_type: row.4,
        subject: row.5,
        status: InboundStatus::parse(&row.6)?,
        error: row.7,
        body_bytes: unsigned(row.8)?,
        received_at: row.9.get(),
        processed_at: row.10.map(DbTime::get),
        location: (row.11, unsigned(row.12)?, unsigned(row.13)?),
    })
}

/// Reads and updates inbound events, always within one tenant.
#[derive(Clone)]
pub struct InboundEvents {
    database: Database,
    blobs: BlobStore,
    vault: AuditedVault,
}

impl InboundEvents {
    pub fn new(database: Database, blobs: BlobStore, vault: AuditedVault) -> Self {
        Self {
            database,
            blobs,
            vault,
        }
    }

    /// # Errors
    /// On a database failure.
    pub async fn get(
        &self,
        tenant: TenantId,
        id: InboundEventId,
    ) -> Result<Option<InboundEvent>, InboundError> {
        let statement =
            format!("SELECT {COLUMNS} FROM inbound_events WHERE tenant_id = $1 AND id = $2");
        let row: Option<Row> = on_pool!(&self.database, |pool| {
            sqlx::query_as(&statement)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// Newest first, before `before` (the cursor), at most `limit`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn list(
        &self,
        tenant: TenantId,
        filter: &EventFilter,
        before: Option<InboundEventId>,
        limit: u32,
    ) -> Result<Vec<InboundEvent>, InboundError> {
        let statement = format!(
            "SELECT {COLUMNS} FROM inbound_events WHERE tenant_id = $1 \
             AND ($2 IS NULL OR source_id = $2) AND ($3 IS NULL OR event_type = $3) \
             AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR received_at >= $5) \
             AND ($6 IS NULL OR received_at < $6) AND ($7 IS NULL OR id < $7) \
             ORDER BY id DESC LIMIT $8"
        );
        let rows: Vec<Row> = on_pool!(&self.database, |pool| {
            sqlx::query_as(&statement)
                .bind(tenant.to_string())
                .bind(filter.source.map(|id| id.to_string()))
                .bind(&filter.event_type)
                .bind(filter.status.map(InboundStatus::as_str))
                .bind(filter.since.map(DbTime::new))
                .bind(filter.until.map(DbTime::new))
                .bind(before.map(|id| id.to_string()))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// The stored request of `event`, decrypted.
    ///
    /// # Errors
    /// When the blob or its key is gone (retention, shredding) or the bytes are corrupt.
    pub async fn request(&self, event: &InboundEvent) -> Result<StoredRequest, InboundError> {
        let (key, offset, length) = &event.location;
        let key: BlobKey = key.parse()?;
        let segment = self.blobs.get(&key).await?;
        let start = usize::try_from(*offset).map_err(InboundError::corrupt)?;
        let end = start
            .checked_add(usize::try_from(*length).map_err(InboundError::corrupt)?)
            .filter(|end| *end <= segment.len())
            .ok_or_else(|| InboundError::corrupt("inbound payload outside its segment"))?;
        let plain = self
            .vault
            .decrypt_blob(event.tenant_id, &aad(event.id), &segment[start..end])
            .await?;
        StoredRequest::decode(&plain)
    }

    /// Records the outcome of processing.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn finish(
        &self,
        event: &InboundEvent,
        status: InboundStatus,
        event_type: Option<&str>,
        subject: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), InboundError> {
        let statement = "UPDATE inbound_events SET status = $3, \
             event_type = COALESCE($4, event_type), subject = $5, error = $6, processed_at = $7 \
             WHERE tenant_id = $1 AND id = $2";
        on_pool!(&self.database, |pool| {
            sqlx::query(statement)
                .bind(event.tenant_id.to_string())
                .bind(event.id.to_string())
                .bind(status.as_str())
                .bind(event_type)
                .bind(subject)
                .bind(error)
                .bind(DbTime::now())
                .execute(pool)
                .await
                .map(drop)?
        });
        Ok(())
    }
}

impl InboundEvents {
    /// Processes an event again: back to `received`, with a new processing job, in one
    /// transaction. `false` when there is no such event.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn replay(&self, tenant: TenantId, id: InboundEventId) -> Result<bool, InboundError> {
        let mut tx = self.database.begin().await?;
        let statement = "UPDATE inbound_events SET status = 'received', processed_at = NULL,              error = NULL WHERE tenant_id = $1 AND id = $2";
        let updated = crate::sql::on_tx!(&mut tx, |conn| {
            sqlx::query(statement)
                .bind(tenant.to_string())
                .bind(id.to_string())
                .execute(conn)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Ok(false);
        }
        switchyard_jobs::queue::enqueue_in(
            &mut tx,
            switchyard_jobs::queue::NewJob::new(
                crate::writer::PROCESS_JOB,
                serde_json::json!({ "event_id": id.to_string(), "tenant": tenant.to_string() }),
            )
            .tenant(tenant),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// The authenticated context binding an encrypted request to its event: a segment slice
/// moved under another event's row does not decrypt.
pub fn aad(id: InboundEventId) -> Vec<u8> {
    format!("inbound-event:{id}").into_bytes()
}
