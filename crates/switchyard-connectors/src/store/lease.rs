//! The sync lease of a stream: one sync at a time per (connection, stream), in every
//! process. A worker that dies leaves its lease to expire; a live one renews it per page.

use std::time::Duration;

use switchyard_core::{ConnectionId, TenantId};
use switchyard_store::{Database, DbTime, with_tx};
use time::OffsetDateTime;

use super::error::{Result, StoreError, is_foreign_key_violation};

/// Takes (or renews) the lease for `holder` until `ttl` from now. `false`: another holder's
/// lease has not expired.
pub(super) async fn acquire(
    database: &Database,
    tenant: &TenantId,
    connection: &ConnectionId,
    stream: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool> {
    let now = OffsetDateTime::now_utc();
    let until = DbTime::new(now + ttl);
    let now = DbTime::new(now);
    let mut tx = database.begin().await?;
    let taken: std::result::Result<Option<String>, sqlx::Error> = with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO sync_streams \
                (tenant_id, connection_id, stream, last_seq, lease_holder, lease_until, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $5, $6, $6) \
             ON CONFLICT (tenant_id, connection_id, stream) DO UPDATE \
                SET lease_holder = excluded.lease_holder, lease_until = excluded.lease_until \
                WHERE sync_streams.lease_holder IS NULL \
                   OR sync_streams.lease_holder = excluded.lease_holder \
                   OR sync_streams.lease_until < $6 \
             RETURNING lease_holder",
        )
        .bind(tenant.to_string())
        .bind(connection.to_string())
        .bind(stream)
        .bind(holder)
        .bind(until)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await
    });
    let taken = match taken {
        Ok(taken) => taken,
        Err(error) if is_foreign_key_violation(&error) => {
            return Err(StoreError::ConnectionNotFound);
        }
        Err(error) => return Err(error.into()),
    };
    tx.commit().await?;
    Ok(taken.is_some())
}

/// Gives the lease back, if `holder` still has it.
pub(super) async fn release(
    database: &Database,
    tenant: &TenantId,
    connection: &ConnectionId,
    stream: &str,
    holder: &str,
) -> Result<()> {
    let mut tx = database.begin().await?;
    with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE sync_streams SET lease_holder = NULL, lease_until = NULL \
             WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3 AND lease_holder = $4",
        )
        .bind(tenant.to_string())
        .bind(connection.to_string())
        .bind(stream)
        .bind(holder)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await?;
    Ok(())
}
