//! Publishing: an event row and, in the same transaction, one delivery per enabled endpoint
//! whose filter matches. The body is serialised here, once; every attempt sends these bytes.
//!
//! At rest the body is sealed with the tenant's data key (base64 in the `body` column), as the
//! inbound gateway seals raw payloads: an event is often a provider's payload passed on, and
//! crypto-shredding a tenant must make it unreadable here too.
//!
//! Wake-ups: on PostgreSQL publish sends `NOTIFY switchyard_outbound` (delivered at commit, so a
//! rolled-back publish wakes nobody); on SQLite, where one process owns the file, an in-process
//! channel is signalled after commit.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;
use switchyard_core::{DeliveryId, MessageId, TenantId};
use switchyard_store::{Database, DbTime, Transaction};
use switchyard_vault::AuditedVault;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use crate::db::{db_time, parse_id, parse_json, with_tx};
use crate::error::{OutboundError, Result};
use crate::filter::{subscribes, validate_event_type};
use crate::model::{Event, NewEvent, Ordering, Published};

/// The PostgreSQL channel publish notifies and dispatchers listen on.
pub const NOTIFY_CHANNEL: &str = "switchyard_outbound";

const MAX_ID_LEN: usize = 255;
/// Bodies are sent on every attempt and kept for 90 days; 1 MiB is far above what receivers
/// usually accept.
const MAX_BODY_BYTES: usize = 1024 * 1024;

const TABLE: &str = "webhook_events";

pub(crate) const EVENT_COLUMNS: &str =
    "id, tenant_id, webhook_id, event_type, ordering_key, body, created_at";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    id: String,
    tenant_id: String,
    webhook_id: String,
    event_type: String,
    ordering_key: Option<String>,
    body: String,
    created_at: DbTime,
}

impl EventRow {
    /// The event, with its body decrypted.
    pub(crate) async fn open(self, vault: &AuditedVault) -> Result<Event> {
        let tenant = parse_id(TABLE, &self.tenant_id)?;
        let body = open_body(vault, tenant, &self.id, &self.body).await?;
        Ok(Event {
            id: parse_id(TABLE, &self.id)?,
            tenant,
            webhook_id: self.webhook_id,
            event_type: self.event_type,
            ordering_key: self.ordering_key,
            body,
            created_at: self.created_at.get(),
        })
    }
}

/// Binds a sealed body to its row (the tenant is bound by the data key): a body copied onto
/// another event does not decrypt.
pub(crate) fn body_aad(event_id: &str) -> Vec<u8> {
    format!("webhook_event:{event_id}").into_bytes()
}

/// The `body` column's value for `body`: sealed with the tenant's data key, base64.
async fn seal_body(
    vault: &AuditedVault,
    tenant: TenantId,
    event_id: &str,
    body: &str,
) -> Result<String> {
    let sealed = vault
        .encrypt_blob(tenant, &body_aad(event_id), body.as_bytes())
        .await?;
    Ok(STANDARD.encode(sealed))
}

/// The plaintext of a `body` column value from [`seal_body`].
///
/// # Errors
/// [`OutboundError::Corrupt`] for a value that is not base64 or not UTF-8 once opened; the
/// vault's error when it does not decrypt (another row's body, another tenant's, a shredded
/// key).
pub(crate) async fn open_body(
    vault: &AuditedVault,
    tenant: TenantId,
    event_id: &str,
    stored: &str,
) -> Result<String> {
    let sealed = STANDARD
        .decode(stored)
        .map_err(|_| OutboundError::corrupt(TABLE, "the body is not base64"))?;
    let plain = vault
        .decrypt_blob(tenant, &body_aad(event_id), &sealed)
        .await?;
    String::from_utf8(plain.to_vec())
        .map_err(|_| OutboundError::corrupt(TABLE, "the body is not UTF-8"))
}

/// The Standard Webhooks payload shape, in this field order.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: &'a Value,
}

// SQLite's wake-up: a counter bumped after commit. A watch channel (not a `Notify`) so a
// dispatcher that was busy claiming when it changed still sees the change.
static SQLITE_WAKE: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

fn wake_sqlite() {
    SQLITE_WAKE.send_modify(|n| *n = n.wrapping_add(1));
}

pub(crate) fn sqlite_wake_receiver() -> watch::Receiver<u64> {
    SQLITE_WAKE.subscribe()
}

async fn notify_postgres(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

/// Wakes every dispatcher (work was re-queued outside a publish).
pub(crate) async fn wake(database: &Database) -> Result<()> {
    match database {
        Database::Sqlite(_) => wake_sqlite(),
        Database::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            notify_postgres(&mut conn).await?;
        }
    }
    Ok(())
}

/// Wakes dispatchers when `tx` commits.
pub(crate) async fn wake_in(tx: &mut Transaction) -> Result<()> {
    if let Some(inner) = tx.as_postgres() {
        // NOTIFY is transactional: delivered at commit, dropped on rollback.
        notify_postgres(inner).await?;
    } else {
        tx.after_commit(wake_sqlite);
    }
    Ok(())
}

fn validate_id(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(OutboundError::invalid(field, "must be 1 to 255 characters"));
    }
    // It becomes a header value (`webhook-id`) and part of the signed content.
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(OutboundError::invalid(
            field,
            "must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// Publishes `event` in its own transaction. `vault` seals the body with the tenant's data key.
///
/// # Errors
/// [`OutboundError::Invalid`] for a bad type, id, key or an oversized body; vault and
/// database failures.
pub async fn publish(
    database: &Database,
    vault: &AuditedVault,
    tenant: TenantId,
    event: NewEvent,
) -> Result<Published> {
    let mut tx = database.begin().await?;
    let published = publish_in(&mut tx, vault, tenant, event).await?;
    tx.commit().await?;
    Ok(published)
}

/// Publishes `event` in the caller's transaction: the event and its deliveries exist (and
/// dispatchers wake) only if the transaction commits. Publishing an `id` that exists returns
/// that event and fans out nothing.
///
/// # Errors
/// As [`publish`].
pub async fn publish_in(
    tx: &mut Transaction,
    vault: &AuditedVault,
    tenant: TenantId,
    event: NewEvent,
) -> Result<Published> {
    validate_event_type(&event.event_type)?;
    if let Some(id) = &event.id {
        validate_id("id", id)?;
    }
    if let Some(key) = &event.ordering_key {
        validate_id("ordering_key", key)?;
    }
    let now = DbTime::now();
    let id = MessageId::generate();
    let webhook_id = event.id.clone().unwrap_or_else(|| id.to_string());
    let body = serde_json::to_string(&Payload {
        event_type: &event.event_type,
        timestamp: now.get().format(&Rfc3339).unwrap_or_default(),
        data: &event.data,
    })
    .map_err(|e| OutboundError::invalid("data", e.to_string()))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(OutboundError::invalid(
            "data",
            "the event body exceeds 1 MiB",
        ));
    }
    let sealed = seal_body(vault, tenant, &id.to_string(), &body).await?;
    let tenant_text = tenant.to_string();
    let inserted = with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO webhook_events (id, tenant_id, webhook_id, event_type, ordering_key, \
                body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, webhook_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(&tenant_text)
        .bind(&webhook_id)
        .bind(&event.event_type)
        .bind(event.ordering_key.as_deref())
        .bind(&sealed)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if inserted == 0 {
        let row: Option<EventRow> = with_tx!(tx, |conn| {
            sqlx::query_as(&format!(
                "SELECT {EVENT_COLUMNS} FROM webhook_events \
                 WHERE tenant_id = $1 AND webhook_id = $2"
            ))
            .bind(&tenant_text)
            .bind(&webhook_id)
            .fetch_optional(&mut *conn)
            .await?
        });
        let existing = row.ok_or_else(|| {
            OutboundError::corrupt(TABLE, "the id conflicted but no event has it")
        })?;
        return Ok(Published {
            event: existing.open(vault).await?,
            created: false,
            deliveries: Vec::new(),
        });
    }
    let endpoints: Vec<(String, String, String)> = with_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, event_types, ordering FROM webhook_endpoints \
             WHERE tenant_id = $1 AND enabled ORDER BY id",
        )
        .bind(&tenant_text)
        .fetch_all(&mut *conn)
        .await?
    });
    let mut deliveries = Vec::new();
    for (endpoint_id, patterns, ordering) in endpoints {
        let patterns: Vec<String> = parse_json("webhook_endpoints", &patterns)?;
        if !subscribes(&patterns, &event.event_type) {
            continue;
        }
        let ordering: Ordering = ordering
            .parse()
            .map_err(|e| OutboundError::corrupt("webhook_endpoints", e))?;
        let ordering_key = match ordering {
            Ordering::Key => event.ordering_key.as_deref(),
            Ordering::None => None,
        };
        let delivery = DeliveryId::generate();
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, \
                    ordering_key, status, attempts, retry_base, next_attempt_at, created_at, \
                    updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, 0, $6, $6, $6)",
            )
            .bind(delivery.to_string())
            .bind(&tenant_text)
            .bind(&endpoint_id)
            .bind(id.to_string())
            .bind(ordering_key)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        deliveries.push(delivery);
    }
    if !deliveries.is_empty() {
        wake_in(tx).await?;
    }
    Ok(Published {
        event: Event {
            id,
            tenant,
            webhook_id,
            event_type: event.event_type,
            ordering_key: event.ordering_key,
            body,
            created_at: now.get(),
        },
        created: true,
        deliveries,
    })
}

pub(crate) fn now_db() -> DbTime {
    db_time(OffsetDateTime::now_utc())
}
