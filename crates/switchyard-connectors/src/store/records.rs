//! [`RecordStore`]: what syncs wrote, per connection and stream: the records' current state,
//! their change stream and the stream's checkpoint.
//!
//! Writes go through [`RecordStore::write_page`] and [`RecordStore::sweep_unseen`] (in
//! `page`), which keep the three consistent in one transaction; this module reads.

use std::ops::{Add, AddAssign};

use serde_json::Value;
use switchyard_core::{ConnectionId, RunId, TenantId};
use switchyard_store::{Database, DbTime, Page, with_conn};
use time::OffsetDateTime;

use super::error::{Result, StoreError};
use super::page;

/// A record to insert or update, as the connector returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordUpsert {
    pub primary_key: String,
    pub data: Value,
}

/// One page of a sync (or one webhook's records), written atomically by
/// [`RecordStore::write_page`].
#[derive(Debug, Clone)]
pub struct PageWrite<'a> {
    pub tenant: &'a TenantId,
    pub connection: &'a ConnectionId,
    pub stream: &'a str,
    /// The sync run writing; `None` outside a run (webhook upserts). Its id goes on the
    /// page's changes and checkpoint.
    pub run: Option<&'a RunId>,
    /// The read that saw these records, for full-read deletion detection
    /// ([`RecordStore::sweep_unseen`]); one read may span runs that resume it. `None`: `run`.
    ///
    /// A write outside a run (a webhook's records) passes a run id generated at the write:
    /// ids sort by creation time, so a full read already under way, whose id is older, does
    /// not sweep what the webhook wrote while it ran; the next read judges it as any other.
    pub seen_by: Option<&'a RunId>,
    /// Within a page, the last copy of a primary key wins.
    pub upserts: Vec<RecordUpsert>,
    /// Primary keys the provider reported deleted; applied after the upserts.
    pub deletions: Vec<String>,
    /// Primary keys `run` saw without their content (a page answered `304 Not Modified`):
    /// noted as seen so the sweep keeps them, nothing else touched. Ignored outside a run.
    pub seen: Vec<String>,
    /// The checkpoint to resume from after this page; `None` keeps the stored one.
    pub checkpoint: Option<Value>,
}

/// What a page (or several, summed) did to the stream's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCounts {
    pub added: u64,
    pub updated: u64,
    /// Upserted with the content hash already stored: nothing rewritten, no change.
    pub unchanged: u64,
    pub deleted: u64,
}

impl PageCounts {
    /// The number of changes appended to the change stream.
    pub fn changes(&self) -> u64 {
        self.added + self.updated + self.deleted
    }
}

impl AddAssign for PageCounts {
    fn add_assign(&mut self, other: Self) {
        self.added += other.added;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.deleted += other.deleted;
    }
}

impl Add for PageCounts {
    type Output = Self;

    fn add(mut self, other: Self) -> Self {
        self += other;
        self
    }
}

/// Where a sync of a stream resumes.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub value: Value,
    /// The run that saved it; `None` when saved outside a run.
    pub run: Option<RunId>,
    pub updated_at: OffsetDateTime,
}

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// New, or back after a deletion.
    Added,
    /// Its content hash changed.
    Updated,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "added" => Some(Self::Added),
            "updated" => Some(Self::Updated),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// One entry of a stream's change stream.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordChange {
    /// 1, 2, 3… within the stream, in commit order: the consumer's cursor.
    pub seq: u64,
    pub kind: ChangeKind,
    pub primary_key: String,
    /// The record as of this change; for a deletion, its last known data.
    pub data: Value,
    pub run: Option<RunId>,
    pub at: OffsetDateTime,
}

/// A live record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub primary_key: String,
    pub data: Value,
    /// SHA-256 (hex) of the canonical JSON of `data`.
    pub content_hash: String,
    pub last_seen_run: Option<RunId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

fn parse_json(table: &'static str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(table, e))
}

fn parse_run(table: &'static str, text: Option<String>) -> Result<Option<RunId>> {
    text.map(|run| run.parse().map_err(|e| StoreError::corrupt(table, e)))
        .transpose()
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

type ChangeRow = (i64, String, String, String, Option<String>, DbTime);
type RecordRow = (String, String, String, Option<String>, DbTime, DbTime);

fn change_from_row((seq, kind, primary_key, data, run, at): ChangeRow) -> Result<RecordChange> {
    Ok(RecordChange {
        seq: to_u64(seq),
        kind: ChangeKind::parse(&kind)
            .ok_or_else(|| StoreError::corrupt("record_changes", "unknown kind"))?,
        primary_key,
        data: parse_json("record_changes", &data)?,
        run: parse_run("record_changes", run)?,
        at: at.get(),
    })
}

fn record_from_row(
    (primary_key, data, hash, run, created, updated): RecordRow,
) -> Result<StoredRecord> {
    Ok(StoredRecord {
        primary_key,
        data: parse_json("records", &data)?,
        content_hash: hash,
        last_seen_run: parse_run("records", run)?,
        created_at: created.get(),
        updated_at: updated.get(),
    })
}

/// The tables of streams, records and changes, every statement scoped by tenant.
#[derive(Debug, Clone)]
pub struct RecordStore {
    database: Database,
}

impl RecordStore {
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    pub(super) fn database(&self) -> &Database {
        &self.database
    }

    /// The stream's saved checkpoint; `None` before its first checkpoint or after a reset.
    pub async fn checkpoint(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<Option<Checkpoint>> {
        let row: Option<(String, Option<String>, Option<DbTime>)> =
            with_conn!(&self.database, |conn| {
                sqlx::query_as(
                    "SELECT checkpoint, checkpoint_run, checkpoint_at FROM sync_streams \
                     WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3 \
                       AND checkpoint IS NOT NULL",
                )
                .bind(tenant.to_string())
                .bind(connection.to_string())
                .bind(stream)
                .fetch_optional(&mut *conn)
                .await?
            });
        let Some((value, run, at)) = row else {
            return Ok(None);
        };
        let updated_at =
            at.ok_or_else(|| StoreError::corrupt("sync_streams", "checkpoint without a time"))?;
        Ok(Some(Checkpoint {
            value: parse_json("sync_streams", &value)?,
            run: parse_run("sync_streams", run)?,
            updated_at: updated_at.get(),
        }))
    }

    /// Upserts a page's records, applies its deletions, appends one change per record added,
    /// updated or deleted, and saves its checkpoint: all in one transaction, or nothing.
    ///
    /// An upsert whose content hash is stored already is not rewritten and appends no change
    /// (only the run that saw it is noted, for [`RecordStore::sweep_unseen`]). A deletion of a
    /// key that is not live is ignored.
    ///
    /// # Errors
    /// [`StoreError::ConnectionNotFound`] when the tenant has no such connection;
    /// [`StoreError::Invalid`] for an empty stream name or primary key.
    pub async fn write_page(&self, page: PageWrite<'_>) -> Result<PageCounts> {
        let mut counts = page::write_pages(&self.database, vec![page]).await?;
        counts
            .pop()
            .ok_or_else(|| StoreError::corrupt("write_pages", "no counts for the page"))
    }

    /// Several pages, in order, in one transaction (each as [`Self::write_page`] does it):
    /// one commit for all, which is what a sync's throughput on PostgreSQL hangs on. All of
    /// them are stored or none.
    ///
    /// # Errors
    /// As for [`Self::write_page`].
    pub async fn write_pages(&self, pages: Vec<PageWrite<'_>>) -> Result<Vec<PageCounts>> {
        page::write_pages(&self.database, pages).await
    }

    /// [`Self::write_pages`] in the caller's transaction, so what else it writes (a
    /// webhook's announcements) commits with the records or not at all.
    ///
    /// # Errors
    /// As for [`Self::write_page`].
    pub async fn write_pages_in(
        &self,
        tx: &mut switchyard_store::Transaction,
        pages: Vec<PageWrite<'_>>,
    ) -> Result<Vec<PageCounts>> {
        page::write_pages_in(tx, pages).await
    }

    /// Full-refresh deletion detection, once `run` has read the whole stream: every live record
    /// of the stream last seen by an older read than `run` (or by none) is marked deleted, with
    /// a change each; records stamped by a newer id (a webhook's write during the read) stay.
    /// Returns how many.
    pub async fn sweep_unseen(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
        run: &RunId,
    ) -> Result<u64> {
        page::sweep_unseen(&self.database, tenant, connection, stream, run, run).await
    }

    /// [`Self::sweep_unseen`] for a read that spans runs: records not seen by read `seen_by`
    /// are deleted, the changes recorded as `run`'s.
    pub async fn sweep_unseen_by(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
        seen_by: &RunId,
        run: &RunId,
    ) -> Result<u64> {
        page::sweep_unseen(&self.database, tenant, connection, stream, seen_by, run).await
    }

    /// The `seq` of the stream's newest change (0 before any): a change-stream cursor that
    /// continues after everything written so far.
    pub async fn last_seq(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<u64> {
        let seq: Option<i64> = with_conn!(&self.database, |conn| {
            sqlx::query_scalar(
                "SELECT last_seq FROM sync_streams \
                 WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3",
            )
            .bind(tenant.to_string())
            .bind(connection.to_string())
            .bind(stream)
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    /// [`Self::last_seq`] in the caller's transaction (after its own writes).
    pub async fn last_seq_in(
        &self,
        tx: &mut switchyard_store::Transaction,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<u64> {
        let seq: Option<i64> = switchyard_store::with_tx!(tx, |conn| {
            sqlx::query_scalar(
                "SELECT last_seq FROM sync_streams \
                 WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3",
            )
            .bind(tenant.to_string())
            .bind(connection.to_string())
            .bind(stream)
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    /// Takes or renews the stream's sync lease for `holder` (a run id) for `ttl`. `false`:
    /// another holder's lease is still valid, so another sync of the stream is running.
    ///
    /// # Errors
    /// [`StoreError::ConnectionNotFound`] when the tenant has no such connection.
    pub async fn acquire_sync_lease(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        super::lease::acquire(&self.database, tenant, connection, stream, holder, ttl).await
    }

    /// Gives the stream's sync lease back, if `holder` still has it.
    pub async fn release_sync_lease(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
        holder: &str,
    ) -> Result<()> {
        super::lease::release(&self.database, tenant, connection, stream, holder).await
    }

    /// The stream's changes after `after` (exclusive; `None`: from the start), oldest first.
    /// The page continues after the last change's `seq`.
    pub async fn changes(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Page<RecordChange, u64>> {
        let rows: Vec<ChangeRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(
                "SELECT seq, kind, primary_key, data, run_id, at FROM record_changes \
                 WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3 AND seq > $4 \
                 ORDER BY seq LIMIT $5",
            )
            .bind(tenant.to_string())
            .bind(connection.to_string())
            .bind(stream)
            .bind(to_i64(after.unwrap_or(0)))
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut *conn)
            .await?
        });
        let changes = rows
            .into_iter()
            .map(change_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(changes, limit, |c| c.seq))
    }

    /// The stream's live (not deleted) records in primary-key (byte) order, after `after`.
    pub async fn records(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page<StoredRecord, String>> {
        let rows: Vec<RecordRow> = with_conn!(&self.database, |conn| {
            sqlx::query_as(
                "SELECT primary_key, data, content_hash, last_seen_run, created_at, updated_at \
                 FROM records \
                 WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3 \
                   AND deleted = FALSE AND ($4 IS NULL OR primary_key > $4) \
                 ORDER BY primary_key LIMIT $5",
            )
            .bind(tenant.to_string())
            .bind(connection.to_string())
            .bind(stream)
            .bind(after)
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut *conn)
            .await?
        });
        let records = rows
            .into_iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(records, limit, |r| {
            r.primary_key.clone()
        }))
    }

    /// Forgets the stream's checkpoint so that the next sync reads everything again. Records
    /// and the change counter stay: consumers' cursors remain valid.
    pub async fn reset_checkpoint(
        &self,
        tenant: &TenantId,
        connection: &ConnectionId,
        stream: &str,
    ) -> Result<()> {
        with_conn!(&self.database, |conn| {
            sqlx::query(
                "UPDATE sync_streams \
                 SET checkpoint = NULL, checkpoint_run = NULL, checkpoint_at = NULL, updated_at = $4 \
                 WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3",
            )
            .bind(tenant.to_string())
            .bind(connection.to_string())
            .bind(stream)
            .bind(DbTime::now())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }
}
