//! Moving a tenant's stored requests onto its active data key, so that completing a data-key
//! rotation can retire the old key without making payloads unreadable.
//!
//! Events are walked in id order, a batch at a time, so a pass that stops half-way resumes by
//! running again: what it already moved is skipped after reading five header bytes per event.
//! A batch's requests still sealed with another key are sealed again and written as new
//! segments, one per day of the segments they came from (retention removes payloads by day, so
//! a moved payload still goes when its original day does). The rows then point at the new
//! segments in one transaction, each update guarded by the row's old location, so a concurrent
//! pass that moved the same event first is not overwritten.
//!
//! The old segments are left to retention rather than deleted here: finding out whether any row
//! still points at a segment means a scan of the tenant's events per segment (`blob_key` has
//! no index), a processing job may still be reading one through a location it read before the
//! move, and once the old key is retired their ciphertext is unreadable anyway.

use std::collections::BTreeMap;

use bytes::Bytes;
use switchyard_blob::{BlobError, BlobKey};
use switchyard_core::{InboundEventId, TenantId};
use switchyard_vault::Vault;
use time::Date;

use super::{InboundEvents, aad};
use crate::{
    InboundError,
    sql::{on_pool, on_tx},
    writer::{discard, segment_key},
};

/// Events per batch: one read of their locations, one transaction of updates.
const RESEAL_BATCH: u32 = 500;

/// Re-sealed bytes held before they are written out: payloads may be up to a MiB each.
const FLUSH_BYTES: usize = 64 * 1024 * 1024;

/// The sealed format's header: format byte and data key version.
const HEADER_LEN: u64 = 5;

/// One event's location, as stored.
struct Located {
    id: String,
    offset: u64,
    length: u64,
}

/// A re-sealed request, ready for its new segment.
struct Moved {
    id: String,
    old_key: String,
    old_offset: u64,
    sealed: Vec<u8>,
}

impl InboundEvents {
    /// Re-seals every stored request of `tenant` that is not sealed with data key `target`
    /// (the active one) and returns how many moved. Idempotent; safe to run while deliveries
    /// arrive (new ones are sealed with the active key already).
    ///
    /// # Errors
    /// On a database, blob store or vault failure; nothing of the failed batch is committed,
    /// and running again resumes.
    pub async fn reseal_tenant(&self, tenant: TenantId, target: u32) -> Result<u64, InboundError> {
        let mut cursor = String::new();
        let mut moved = 0;
        loop {
            let rows = self.locations_after(tenant, &cursor).await?;
            let Some((last, ..)) = rows.last() else {
                return Ok(moved);
            };
            cursor = last.clone();
            let mut by_segment: BTreeMap<String, Vec<Located>> = BTreeMap::new();
            for (id, key, offset, length) in rows {
                let unsigned = |n: i64| u64::try_from(n).map_err(InboundError::corrupt);
                by_segment.entry(key).or_default().push(Located {
                    id,
                    offset: unsigned(offset)?,
                    length: unsigned(length)?,
                });
            }
            let (mut pending, mut pending_bytes) = (Vec::new(), 0);
            for (key, events) in by_segment {
                for item in self.reseal_segment(tenant, target, key, events).await? {
                    pending_bytes += item.sealed.len();
                    pending.push(item);
                }
                if pending_bytes >= FLUSH_BYTES {
                    moved += self.relocate(tenant, std::mem::take(&mut pending)).await?;
                    pending_bytes = 0;
                }
            }
            moved += self.relocate(tenant, pending).await?;
        }
    }

    /// The next batch of the tenant's events after `cursor`: (id, key, offset, length).
    async fn locations_after(
        &self,
        tenant: TenantId,
        cursor: &str,
    ) -> Result<Vec<(String, String, i64, i64)>, InboundError> {
        let statement = "SELECT id, blob_key, blob_offset, blob_length FROM inbound_events \
             WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3";
        let rows: Vec<(String, String, i64, i64)> = on_pool!(&self.database, |pool| {
            sqlx::query_as(statement)
                .bind(tenant.to_string())
                .bind(cursor)
                .bind(i64::from(RESEAL_BATCH))
                .fetch_all(pool)
                .await?
        });
        Ok(rows)
    }

    /// Re-seals the requests of `events` in segment `key` that another key sealed. A segment
    /// already gone (retention) has nothing left to move.
    async fn reseal_segment(
        &self,
        tenant: TenantId,
        target: u32,
        key: String,
        events: Vec<Located>,
    ) -> Result<Vec<Moved>, InboundError> {
        let parsed: BlobKey = key.parse()?;
        let headers: Vec<_> = events
            .iter()
            .map(|e| e.offset..e.offset + e.length.min(HEADER_LEN))
            .collect();
        let headers = match self.blobs.get_ranges(&parsed, &headers).await {
            Ok(headers) => headers,
            Err(BlobError::NotFound { .. }) => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        };
        let mut stale = Vec::new();
        for (event, header) in events.into_iter().zip(&headers) {
            if Vault::blob_data_key_version(header)? != target {
                stale.push(event);
            }
        }
        if stale.is_empty() {
            return Ok(Vec::new());
        }
        let ranges: Vec<_> = stale
            .iter()
            .map(|e| e.offset..e.offset + e.length)
            .collect();
        let sealed: Vec<Bytes> = self.blobs.get_ranges(&parsed, &ranges).await?;
        let mut moved = Vec::with_capacity(stale.len());
        for (event, old) in stale.into_iter().zip(sealed) {
            let id: InboundEventId = event.id.parse().map_err(InboundError::corrupt)?;
            let resealed = self.vault.reencrypt_blob(tenant, &aad(id), &old).await?;
            moved.push(Moved {
                id: event.id,
                old_key: key.clone(),
                old_offset: event.offset,
                sealed: resealed,
            });
        }
        Ok(moved)
    }

    /// Writes the moved requests as new segments (one per original day) and points their
    /// rows there in one transaction; returns how many rows moved.
    async fn relocate(&self, tenant: TenantId, batch: Vec<Moved>) -> Result<u64, InboundError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut days: BTreeMap<Date, Vec<Moved>> = BTreeMap::new();
        for moved in batch {
            let day = moved.old_key.parse::<BlobKey>()?.date();
            days.entry(day).or_default().push(moved);
        }
        let mut written = Vec::new();
        let mut updates = Vec::new();
        for (day, moved) in days {
            let key = segment_key(tenant, day)?;
            let mut segment = Vec::new();
            for item in moved {
                let offset = segment.len() as u64;
                segment.extend_from_slice(&item.sealed);
                updates.push((item, key.to_string(), offset));
            }
            if let Err(error) = self.blobs.put(&key, Bytes::from(segment)).await {
                // No row can point at them yet.
                discard(&self.blobs, &written).await;
                return Err(error.into());
            }
            written.push(key);
        }
        match self.point_rows(tenant, &updates).await {
            Ok(moved) => Ok(moved),
            Err(error) => {
                // A failed commit may still have committed, and then rows point at these
                // segments: rather than tell the cases apart, leave them to retention.
                tracing::warn!(%error, segments = written.len(), "re-sealed segments left to retention");
                Err(error)
            }
        }
    }

    async fn point_rows(
        &self,
        tenant: TenantId,
        updates: &[(Moved, String, u64)],
    ) -> Result<u64, InboundError> {
        let as_i64 = |n: u64| i64::try_from(n).map_err(InboundError::corrupt);
        let statement = "UPDATE inbound_events SET blob_key = $3, blob_offset = $4, \
             blob_length = $5 WHERE tenant_id = $1 AND id = $2 AND blob_key = $6 \
             AND blob_offset = $7";
        let tenant = tenant.to_string();
        let mut tx = self.database.begin().await?;
        let mut moved = 0;
        for (item, key, offset) in updates {
            let length = as_i64(item.sealed.len() as u64)?;
            let (offset, old_offset) = (as_i64(*offset)?, as_i64(item.old_offset)?);
            moved += on_tx!(&mut tx, |conn| {
                sqlx::query(statement)
                    .bind(&tenant)
                    .bind(&item.id)
                    .bind(key)
                    .bind(offset)
                    .bind(length)
                    .bind(&item.old_key)
                    .bind(old_offset)
                    .execute(conn)
                    .await?
                    .rows_affected()
            });
        }
        tx.commit().await?;
        Ok(moved)
    }
}
