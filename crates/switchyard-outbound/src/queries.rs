//! What the API reads (deliveries of an endpoint, a delivery with its attempts, an event with
//! its deliveries) and the two ways to send again: retrying one delivery and replaying a range.
//! Every statement is scoped by tenant; another tenant's row is `NotFound`.
//!
//! Retry and replay re-queue the existing delivery rows: the `webhook-id` stays, and since the
//! dispatcher signs at send time, the request carries the current secret and a fresh
//! timestamp. The retry schedule restarts (`retry_base`).

use std::collections::BTreeMap;

use switchyard_core::{DeliveryId, EndpointId, MessageId, TenantId};
use switchyard_store::{Database, DbTime, Page};
use switchyard_vault::AuditedVault;
use time::OffsetDateTime;

use crate::db::{db_time, parse_id, parse_json, to_u32, with_conn};
use crate::error::{OutboundError, Result};
use crate::model::{
    Attempt, Delivery, DeliveryDetail, DeliveryStatus, EventDetail, EventMetadata,
    EventMetadataDetail, ReplayFilter,
};
use crate::publish::{EVENT_COLUMNS, EventRow, wake};

const TABLE: &str = "webhook_deliveries";
const MAX_PAGE: u32 = 500;

pub(crate) const DELIVERY_COLUMNS: &str = "id, tenant_id, endpoint_id, event_id, status, \
    attempts, next_attempt_at, last_status_code, last_error, created_at, updated_at, finished_at";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: String,
    tenant_id: String,
    endpoint_id: String,
    event_id: String,
    status: String,
    attempts: i32,
    next_attempt_at: DbTime,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    created_at: DbTime,
    updated_at: DbTime,
    finished_at: Option<DbTime>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = OutboundError;

    fn try_from(row: DeliveryRow) -> Result<Self> {
        Ok(Delivery {
            id: parse_id(TABLE, &row.id)?,
            tenant: parse_id(TABLE, &row.tenant_id)?,
            endpoint_id: parse_id(TABLE, &row.endpoint_id)?,
            event_id: parse_id(TABLE, &row.event_id)?,
            status: row
                .status
                .parse()
                .map_err(|e| OutboundError::corrupt(TABLE, e))?,
            attempts: to_u32(row.attempts),
            next_attempt_at: row.next_attempt_at.get(),
            last_status_code: row.last_status_code.and_then(|c| u16::try_from(c).ok()),
            last_error: row.last_error,
            created_at: row.created_at.get(),
            updated_at: row.updated_at.get(),
            finished_at: row.finished_at.map(DbTime::get),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct AttemptRow {
    delivery_id: String,
    attempt: i32,
    started_at: DbTime,
    duration_ms: i32,
    status_code: Option<i32>,
    response_headers: String,
    response_body_key: Option<String>,
    response_body_len: i32,
    error_class: Option<String>,
    error: Option<String>,
    succeeded: bool,
}

impl TryFrom<AttemptRow> for Attempt {
    type Error = OutboundError;

    fn try_from(row: AttemptRow) -> Result<Self> {
        let headers: BTreeMap<String, String> =
            parse_json("webhook_delivery_attempts", &row.response_headers)?;
        Ok(Attempt {
            delivery_id: parse_id("webhook_delivery_attempts", &row.delivery_id)?,
            attempt: to_u32(row.attempt),
            started_at: row.started_at.get(),
            duration_ms: to_u32(row.duration_ms),
            status_code: row.status_code.and_then(|c| u16::try_from(c).ok()),
            response_headers: headers,
            response_body_key: row.response_body_key,
            response_body_len: to_u32(row.response_body_len),
            error_class: row.error_class,
            error: row.error,
            succeeded: row.succeeded,
        })
    }
}

fn deliveries(rows: Vec<DeliveryRow>) -> Result<Vec<Delivery>> {
    rows.into_iter().map(Delivery::try_from).collect()
}

async fn endpoint_exists(database: &Database, tenant: &str, endpoint: &str) -> Result<()> {
    let found: Option<(String,)> = with_conn!(database, |conn| {
        sqlx::query_as("SELECT id FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(endpoint)
            .fetch_optional(&mut *conn)
            .await?
    });
    found
        .map(|_| ())
        .ok_or(OutboundError::NotFound { what: "endpoint" })
}

/// Up to `limit` (1–500) deliveries of an endpoint after `after`, oldest first, optionally of
/// one status.
///
/// # Errors
/// [`OutboundError::NotFound`] when the endpoint is not the tenant's.
pub async fn list_deliveries(
    database: &Database,
    tenant: TenantId,
    endpoint: EndpointId,
    status: Option<DeliveryStatus>,
    after: Option<DeliveryId>,
    limit: u32,
) -> Result<Page<Delivery, DeliveryId>> {
    let (tenant, endpoint) = (tenant.to_string(), endpoint.to_string());
    endpoint_exists(database, &tenant, &endpoint).await?;
    let limit = i64::from(limit.clamp(1, MAX_PAGE));
    let rows: Vec<DeliveryRow> = with_conn!(database, |conn| {
        sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
             WHERE tenant_id = $1 AND endpoint_id = $2 AND ($3 IS NULL OR status = $3) \
               AND ($4 IS NULL OR id > $4) ORDER BY id LIMIT $5"
        ))
        .bind(&tenant)
        .bind(&endpoint)
        .bind(status.map(DeliveryStatus::as_str))
        .bind(after.map(|a| a.to_string()))
        .bind(limit + 1)
        .fetch_all(&mut *conn)
        .await?
    });
    let mut items = deliveries(rows)?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = items.len() > limit;
    items.truncate(limit);
    let next_after = if more {
        items.last().map(|d| d.id)
    } else {
        None
    };
    Ok(Page { items, next_after })
}

async fn delivery_row(database: &Database, tenant: &str, id: &str) -> Result<Delivery> {
    let row: Option<DeliveryRow> = with_conn!(database, |conn| {
        sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    });
    row.ok_or(OutboundError::NotFound { what: "delivery" })?
        .try_into()
}

/// A delivery with its attempts.
///
/// # Errors
/// [`OutboundError::NotFound`].
pub async fn get_delivery(
    database: &Database,
    tenant: TenantId,
    id: DeliveryId,
) -> Result<DeliveryDetail> {
    let (tenant, id) = (tenant.to_string(), id.to_string());
    let delivery = delivery_row(database, &tenant, &id).await?;
    let rows: Vec<AttemptRow> = with_conn!(database, |conn| {
        sqlx::query_as(
            "SELECT delivery_id, attempt, started_at, duration_ms, status_code, \
                response_headers, response_body_key, response_body_len, error_class, error, \
                succeeded \
             FROM webhook_delivery_attempts WHERE tenant_id = $1 AND delivery_id = $2 \
             ORDER BY attempt",
        )
        .bind(&tenant)
        .bind(&id)
        .fetch_all(&mut *conn)
        .await?
    });
    let attempts = rows
        .into_iter()
        .map(Attempt::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(DeliveryDetail { delivery, attempts })
}

/// An event with its deliveries, the body decrypted with `vault`.
///
/// # Errors
/// [`OutboundError::NotFound`]; the vault's error or [`OutboundError::Corrupt`] for a body
/// that does not decrypt.
pub async fn get_event(
    database: &Database,
    vault: &AuditedVault,
    tenant: TenantId,
    id: MessageId,
) -> Result<EventDetail> {
    let (tenant, id) = (tenant.to_string(), id.to_string());
    let row: Option<EventRow> = with_conn!(database, |conn| {
        sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(&tenant)
        .bind(&id)
        .fetch_optional(&mut *conn)
        .await?
    });
    let event = row
        .ok_or(OutboundError::NotFound { what: "event" })?
        .open(vault)
        .await?;
    Ok(EventDetail {
        event,
        deliveries: event_deliveries(database, &tenant, &id).await?,
    })
}

#[derive(Debug, sqlx::FromRow)]
struct EventMetadataRow {
    id: String,
    tenant_id: String,
    webhook_id: String,
    event_type: String,
    ordering_key: Option<String>,
    created_at: DbTime,
}

/// An event's metadata with its deliveries; its body is not even read, let alone decrypted.
///
/// # Errors
/// [`OutboundError::NotFound`].
pub async fn get_event_metadata(
    database: &Database,
    tenant: TenantId,
    id: MessageId,
) -> Result<EventMetadataDetail> {
    let (tenant, id) = (tenant.to_string(), id.to_string());
    let row: Option<EventMetadataRow> = with_conn!(database, |conn| {
        sqlx::query_as(
            "SELECT id, tenant_id, webhook_id, event_type, ordering_key, created_at \
             FROM webhook_events WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&tenant)
        .bind(&id)
        .fetch_optional(&mut *conn)
        .await?
    });
    let row = row.ok_or(OutboundError::NotFound { what: "event" })?;
    let event = EventMetadata {
        id: parse_id("webhook_events", &row.id)?,
        tenant: parse_id("webhook_events", &row.tenant_id)?,
        webhook_id: row.webhook_id,
        event_type: row.event_type,
        ordering_key: row.ordering_key,
        created_at: row.created_at.get(),
    };
    Ok(EventMetadataDetail {
        event,
        deliveries: event_deliveries(database, &tenant, &id).await?,
    })
}

async fn event_deliveries(database: &Database, tenant: &str, event: &str) -> Result<Vec<Delivery>> {
    let rows: Vec<DeliveryRow> = with_conn!(database, |conn| {
        sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
             WHERE tenant_id = $1 AND event_id = $2 ORDER BY id"
        ))
        .bind(tenant)
        .bind(event)
        .fetch_all(&mut *conn)
        .await?
    });
    deliveries(rows)
}

/// Sends a delivery again now, with a fresh retry schedule: a finished one is re-queued, a
/// pending one is moved to now.
///
/// # Errors
/// [`OutboundError::NotFound`]; [`OutboundError::Conflict`] while it is being sent.
pub async fn retry_delivery(
    database: &Database,
    tenant: TenantId,
    id: DeliveryId,
) -> Result<Delivery> {
    let (tenant, id) = (tenant.to_string(), id.to_string());
    let now = db_time(OffsetDateTime::now_utc());
    let updated = with_conn!(database, |conn| {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $3, \
                retry_base = attempts, finished_at = NULL, updated_at = $3 \
             WHERE tenant_id = $1 AND id = $2 AND status <> 'sending'",
        )
        .bind(&tenant)
        .bind(&id)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if updated == 0 {
        // Either it is not the tenant's, or it is on the wire right now.
        delivery_row(database, &tenant, &id).await?;
        return Err(OutboundError::Conflict(
            "the delivery is being sent; retry when it has finished".into(),
        ));
    }
    // Read before waking, so the caller usually sees the state its retry made (pending); a
    // dispatcher's own poll may still claim it first, and then the read shows `sending`.
    let delivery = delivery_row(database, &tenant, &id).await?;
    wake(database).await?;
    Ok(delivery)
}

/// Re-queues an endpoint's deliveries created in `[since, until)` with one of the filter's
/// statuses (default: finished ones). Returns how many.
///
/// # Errors
/// [`OutboundError::NotFound`] when the endpoint is not the tenant's;
/// [`OutboundError::Invalid`] for a filter naming `pending` or `sending`.
pub async fn replay(
    database: &Database,
    tenant: TenantId,
    endpoint: EndpointId,
    filter: ReplayFilter,
) -> Result<u64> {
    let (tenant, endpoint) = (tenant.to_string(), endpoint.to_string());
    endpoint_exists(database, &tenant, &endpoint).await?;
    let statuses: Vec<DeliveryStatus> = if filter.statuses.is_empty() {
        vec![DeliveryStatus::Succeeded, DeliveryStatus::Failed]
    } else {
        filter.statuses
    };
    if statuses
        .iter()
        .any(|s| matches!(s, DeliveryStatus::Pending | DeliveryStatus::Sending))
    {
        return Err(OutboundError::invalid(
            "status",
            "only succeeded and failed deliveries can be replayed",
        ));
    }
    let statuses: Vec<String> = statuses.iter().map(|s| s.as_str().to_owned()).collect();
    let now = OffsetDateTime::now_utc();
    let until = filter.until.unwrap_or(now);
    let replayed = with_conn!(database, |conn| {
        let sql = format!(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $5, \
                retry_base = attempts, finished_at = NULL, updated_at = $5 \
             WHERE tenant_id = $1 AND endpoint_id = $2 AND created_at >= $3 AND created_at < $4 \
               AND {}",
            crate::db::member(&*conn, "status", 6)
        );
        let statuses = crate::db::list(&*conn, &statuses);
        sqlx::query(&sql)
            .bind(&tenant)
            .bind(&endpoint)
            .bind(db_time(filter.since))
            .bind(db_time(until))
            .bind(db_time(now))
            .bind(statuses)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    if replayed > 0 {
        wake(database).await?;
    }
    Ok(replayed)
}

/// The JSON text of a header map, as `response_headers` stores it.
pub(crate) fn headers_json(headers: &BTreeMap<String, String>) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "{}".to_owned())
}
