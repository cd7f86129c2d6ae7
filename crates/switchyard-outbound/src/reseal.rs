//! Moving a tenant's sealed outbound data onto its active data key, so that completing a
//! data-key rotation can retire the old key without making it unreadable: event bodies
//! (`webhook_events.body`) and attempts' response bodies (the blob store).
//!
//! Both passes walk rows in key order, a batch at a time, and skip whatever the target key
//! already sealed by its header (the sealed format starts with the data key version; for event
//! bodies only the column's first characters are read), so running a pass again resumes where
//! a failed one stopped. Plaintexts exist only in memory, one body at a time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use switchyard_core::TenantId;
use switchyard_store::Database;
use switchyard_vault::{AuditedVault, Vault};

use crate::db::with_conn;
use crate::dispatch::ResponseBodies;
use crate::error::{OutboundError, Result};
use crate::publish::body_aad;

/// Rows per batch read.
const BATCH: i64 = 500;

/// What a pass moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResealReport {
    pub event_bodies: u64,
    pub response_bodies: u64,
}

/// Re-seals every event body and stored response body of `tenant` that data key `target` (the
/// active one) did not seal.
///
/// # Errors
/// On a database, blob store or vault failure; what moved stays moved, and running again
/// resumes.
pub async fn reseal_tenant(
    database: &Database,
    vault: &AuditedVault,
    bodies: &ResponseBodies,
    tenant: TenantId,
    target: u32,
) -> Result<ResealReport> {
    Ok(ResealReport {
        event_bodies: reseal_event_bodies(database, vault, tenant, target).await?,
        response_bodies: reseal_response_bodies(database, bodies, tenant, target).await?,
    })
}

async fn reseal_event_bodies(
    database: &Database,
    vault: &AuditedVault,
    tenant: TenantId,
    target: u32,
) -> Result<u64> {
    let tenant_text = tenant.to_string();
    let mut cursor = String::new();
    let mut moved = 0;
    loop {
        // Only the header of each body: a body may be up to 1 MiB.
        let heads: Vec<(String, String)> = with_conn!(database, |conn| {
            // 8 base64 characters are 6 bytes: the 5-byte header (format, key version).
            sqlx::query_as(
                "SELECT id, substr(body, 1, 8) FROM webhook_events \
                 WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(&tenant_text)
            .bind(&cursor)
            .bind(BATCH)
            .fetch_all(&mut *conn)
            .await?
        });
        let Some((last, _)) = heads.last() else {
            return Ok(moved);
        };
        cursor = last.clone();
        for (id, head) in heads {
            if header_version(&head)? == target {
                continue;
            }
            if reseal_event_body(database, vault, tenant, &id).await? {
                moved += 1;
            }
        }
    }
}

/// The data key version of a `body` value, from its first characters.
fn header_version(head: &str) -> Result<u32> {
    let bytes = STANDARD
        .decode(head)
        .map_err(|_| OutboundError::corrupt("webhook_events", "the body is not base64"))?;
    Ok(Vault::blob_data_key_version(&bytes)?)
}

/// Re-seals one event's body in place; `false` when the row is gone or changed meanwhile (the
/// update is guarded by the value it replaces, so nothing newer is overwritten).
async fn reseal_event_body(
    database: &Database,
    vault: &AuditedVault,
    tenant: TenantId,
    id: &str,
) -> Result<bool> {
    let tenant_text = tenant.to_string();
    let stored: Option<String> = with_conn!(database, |conn| {
        sqlx::query_scalar("SELECT body FROM webhook_events WHERE tenant_id = $1 AND id = $2")
            .bind(&tenant_text)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
    });
    let Some(stored) = stored else {
        return Ok(false);
    };
    let sealed = STANDARD
        .decode(&stored)
        .map_err(|_| OutboundError::corrupt("webhook_events", "the body is not base64"))?;
    let resealed = STANDARD.encode(vault.reencrypt_blob(tenant, &body_aad(id), &sealed).await?);
    let updated = with_conn!(database, |conn| {
        sqlx::query(
            "UPDATE webhook_events SET body = $3 WHERE tenant_id = $1 AND id = $2 AND body = $4",
        )
        .bind(&tenant_text)
        .bind(id)
        .bind(&resealed)
        .bind(&stored)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}

async fn reseal_response_bodies(
    database: &Database,
    bodies: &ResponseBodies,
    tenant: TenantId,
    target: u32,
) -> Result<u64> {
    let tenant_text = tenant.to_string();
    let (mut delivery, mut attempt) = (String::new(), 0_i32);
    let mut moved = 0;
    loop {
        // In primary key order: the table has no index by tenant, and this order lets each
        // batch continue the scan where the last one stopped.
        let rows: Vec<(String, i32, String)> = with_conn!(database, |conn| {
            sqlx::query_as(
                "SELECT delivery_id, attempt, response_body_key FROM webhook_delivery_attempts \
                 WHERE tenant_id = $1 AND response_body_key IS NOT NULL \
                    AND (delivery_id > $2 OR (delivery_id = $2 AND attempt > $3)) \
                 ORDER BY delivery_id, attempt LIMIT $4",
            )
            .bind(&tenant_text)
            .bind(&delivery)
            .bind(attempt)
            .bind(BATCH)
            .fetch_all(&mut *conn)
            .await?
        });
        let Some((last_delivery, last_attempt, _)) = rows.last() else {
            return Ok(moved);
        };
        (delivery, attempt) = (last_delivery.clone(), *last_attempt);
        for (_, _, key) in rows {
            if bodies.reseal(tenant, &key, target).await? {
                moved += 1;
            }
        }
    }
}
