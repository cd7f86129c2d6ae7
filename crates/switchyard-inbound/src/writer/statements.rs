//! The ingest writer's statements: each step of a batch is one statement, whatever the batch
//! size, so a commit costs a fixed number of round trips instead of two per delivery.
//!
//! PostgreSQL gets every column as an array (`unnest`): the statement text never changes with
//! the batch size, so it stays prepared, and there is no bound-parameter limit. SQLite has no
//! arrays but prepares in process, so it gets multi-row `VALUES`, in chunks that stay under
//! its bound-parameter limit. Those statements differ with every batch size, so they are not
//! kept in the connection's statement cache: up to 256 variants of each would evict the hot
//! statements of everything else and hold on to memory (about 15 MB more peak RSS in the
//! ingest benchmark when they were cached).

use std::collections::HashSet;

use sqlx::{QueryBuilder, Sqlite};
use switchyard_store::{BackendTransaction, DbTime, Transaction};
use time::OffsetDateTime;

use crate::InboundError;

/// Rows per SQLite statement: 10 columns × 1000 rows stays far below SQLite's limit of
/// 32,766 bound parameters.
const SQLITE_ROWS_PER_STATEMENT: usize = 1000;

/// A dedup claim to take: the delivery `event` claims (`source`, `key`) until `expires`.
pub(super) struct Claim<'a> {
    pub source: String,
    pub key: &'a str,
    pub event: String,
    pub expires: OffsetDateTime,
}

/// Takes every claim that is free (no row, or a row past its expiry) and returns the event
/// ids whose claims were taken; the others are held by a live claim.
///
/// The rows are locked in the order given, so callers that sort claims the same way cannot
/// deadlock each other. The keys must be distinct: PostgreSQL refuses an upsert that would
/// touch one row twice.
pub(super) async fn claim(
    tx: &mut Transaction,
    claims: &[Claim<'_>],
    now: OffsetDateTime,
) -> Result<HashSet<String>, InboundError> {
    if claims.is_empty() {
        return Ok(HashSet::new());
    }
    let now = DbTime::new(now);
    let taken: Vec<String> = match tx.inner() {
        BackendTransaction::Postgres(tx) => {
            let sources: Vec<&str> = claims.iter().map(|c| c.source.as_str()).collect();
            let keys: Vec<&str> = claims.iter().map(|c| c.key).collect();
            let events: Vec<&str> = claims.iter().map(|c| c.event.as_str()).collect();
            let expires: Vec<OffsetDateTime> = claims.iter().map(|c| c.expires).collect();
            sqlx::query_scalar(
                "INSERT INTO inbound_dedup (source_id, dedup_key, event_id, expires_at) \
                 SELECT source_id, dedup_key, event_id, expires_at \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) \
                    WITH ORDINALITY AS n(source_id, dedup_key, event_id, expires_at, nth) \
                 ORDER BY nth \
                 ON CONFLICT (source_id, dedup_key) DO UPDATE \
                 SET event_id = excluded.event_id, expires_at = excluded.expires_at \
                 WHERE inbound_dedup.expires_at < $5 \
                 RETURNING event_id",
            )
            .bind(sources)
            .bind(keys)
            .bind(events)
            .bind(expires)
            .bind(now)
            .fetch_all(&mut **tx)
            .await?
        }
        BackendTransaction::Sqlite(tx) => {
            let mut taken = Vec::with_capacity(claims.len());
            for chunk in claims.chunks(SQLITE_ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO inbound_dedup (source_id, dedup_key, event_id, expires_at) ",
                );
                query.push_values(chunk, |mut row, claim| {
                    row.push_bind(claim.source.as_str())
                        .push_bind(claim.key)
                        .push_bind(claim.event.as_str())
                        .push_bind(DbTime::new(claim.expires));
                });
                query
                    .push(
                        " ON CONFLICT (source_id, dedup_key) DO UPDATE \
                         SET event_id = excluded.event_id, expires_at = excluded.expires_at \
                         WHERE inbound_dedup.expires_at < ",
                    )
                    .push_bind(now)
                    .push(" RETURNING event_id");
                let rows: Vec<String> = query
                    .build_query_scalar()
                    .persistent(false)
                    .fetch_all(&mut **tx)
                    .await?;
                taken.extend(rows);
            }
            taken
        }
    };
    Ok(taken.into_iter().collect())
}

/// The event id holding each of these (source, key) claims, for the deliveries found to be
/// duplicates; a claim that is not there is left out.
pub(super) async fn claimed_by(
    tx: &mut Transaction,
    keys: &[(String, &str)],
) -> Result<Vec<(String, String, String)>, InboundError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows = match tx.inner() {
        BackendTransaction::Postgres(tx) => {
            let sources: Vec<&str> = keys.iter().map(|(source, _)| source.as_str()).collect();
            let dedup_keys: Vec<&str> = keys.iter().map(|(_, key)| *key).collect();
            sqlx::query_as(
                "SELECT source_id, dedup_key, event_id FROM inbound_dedup \
                 WHERE (source_id, dedup_key) IN \
                    (SELECT * FROM unnest($1::text[], $2::text[]))",
            )
            .bind(sources)
            .bind(dedup_keys)
            .fetch_all(&mut **tx)
            .await?
        }
        BackendTransaction::Sqlite(tx) => {
            let mut rows = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(SQLITE_ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::<Sqlite>::new(
                    "SELECT source_id, dedup_key, event_id FROM inbound_dedup \
                     WHERE (source_id, dedup_key) IN (",
                );
                query.push_values(chunk, |mut row, (source, key)| {
                    row.push_bind(source.as_str()).push_bind(*key);
                });
                query.push(")");
                let found: Vec<(String, String, String)> = query
                    .build_query_as()
                    .persistent(false)
                    .fetch_all(&mut **tx)
                    .await?;
                rows.extend(found);
            }
            rows
        }
    };
    Ok(rows)
}

/// One `inbound_events` row: a new delivery, its payload at `blob_key[offset..offset+length]`.
pub(super) struct EventRow<'a> {
    pub id: String,
    pub tenant: String,
    pub source: String,
    pub dedup_key: &'a str,
    pub event_type: Option<&'a str>,
    pub blob_key: &'a str,
    pub blob_offset: i64,
    pub blob_length: i64,
    pub body_bytes: i64,
    pub received_at: OffsetDateTime,
}

/// Inserts the new deliveries' rows, status `received`.
pub(super) async fn insert_events(
    tx: &mut Transaction,
    rows: &[EventRow<'_>],
) -> Result<(), InboundError> {
    if rows.is_empty() {
        return Ok(());
    }
    match tx.inner() {
        BackendTransaction::Postgres(tx) => {
            let column = |f: fn(&EventRow<'_>) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
            sqlx::query(
                "INSERT INTO inbound_events (id, tenant_id, source_id, dedup_key, event_type, \
                    status, blob_key, blob_offset, blob_length, body_bytes, received_at) \
                 SELECT id, tenant_id, source_id, dedup_key, event_type, 'received', blob_key, \
                    blob_offset, blob_length, body_bytes, received_at \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                    $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::timestamptz[]) \
                    AS n(id, tenant_id, source_id, dedup_key, event_type, blob_key, \
                        blob_offset, blob_length, body_bytes, received_at)",
            )
            .bind(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.tenant.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.source.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.dedup_key).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event_type).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.blob_key).collect::<Vec<_>>())
            .bind(column(|r| r.blob_offset))
            .bind(column(|r| r.blob_length))
            .bind(column(|r| r.body_bytes))
            .bind(rows.iter().map(|r| r.received_at).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        }
        BackendTransaction::Sqlite(tx) => {
            for chunk in rows.chunks(SQLITE_ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO inbound_events (id, tenant_id, source_id, dedup_key, \
                     event_type, status, blob_key, blob_offset, blob_length, body_bytes, \
                     received_at) ",
                );
                query.push_values(chunk, |mut row, event| {
                    row.push_bind(event.id.as_str())
                        .push_bind(event.tenant.as_str())
                        .push_bind(event.source.as_str())
                        .push_bind(event.dedup_key)
                        .push_bind(event.event_type)
                        .push("'received'")
                        .push_bind(event.blob_key)
                        .push_bind(event.blob_offset)
                        .push_bind(event.blob_length)
                        .push_bind(event.body_bytes)
                        .push_bind(DbTime::new(event.received_at));
                });
                query.build().persistent(false).execute(&mut **tx).await?;
            }
        }
    }
    Ok(())
}
