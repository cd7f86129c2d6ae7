//! Running a stream's sync: read page after page from the connector, and store each page's
//! records together with the checkpoint that follows it, in one transaction. A run killed
//! at any point leaves the last stored page's checkpoint, and the next run resumes there,
//! neither losing nor duplicating a record.

use std::ops::AddAssign;
use std::time::Duration;

use serde::Serialize;
use switchyard_core::{ConnectionId, RunId, TenantId};

use crate::connector::{CallContext, Connector, ConnectorError};
use crate::store::{PageWrite, RecordStore, RecordUpsert, StoreError};

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncCounts {
    pub pages: u64,
    pub added: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    /// Pages the provider answered `304 Not Modified`.
    pub not_modified: u64,
}

impl AddAssign for SyncCounts {
    fn add_assign(&mut self, other: Self) {
        self.pages += other.pages;
        self.added += other.added;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.not_modified += other.not_modified;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another sync of the stream holds its lease.
    #[error("another sync of this stream is running")]
    Busy,
}

impl SyncError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Connector(error) => error.code(),
            Self::Store(error) => error.code(),
            Self::Busy => "sync_in_progress",
        }
    }
}

/// How long a sync's lease lasts without a page; each stored page renews it. Longer than a
/// page may take (the call stack's deadline is two minutes), so a live sync never loses it.
pub const LEASE: Duration = Duration::from_secs(300);

/// One stream of one connection.
pub struct SyncTarget<'a> {
    pub tenant: &'a TenantId,
    pub connection: &'a ConnectionId,
    pub stream: &'a str,
}

/// When a sync commits what it read. Pages are stored together with the checkpoint after the
/// last of them, in one transaction, so a sync killed at any point resumes after the last
/// stored page and never loses or duplicates a record; batching only decides how much reading
/// a crash can cost (PostgreSQL's synchronous commit per transaction is most of a page's cost
/// when each page is its own commit).
#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// Store once this many pages wait.
    pub flush_pages: usize,
    /// Or once this many records wait.
    pub flush_records: usize,
    /// Or once the oldest waiting page has waited this long.
    pub flush_after: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            flush_pages: 10,
            flush_records: 1_000,
            flush_after: Duration::from_millis(500),
        }
    }
}

/// Reads `target` to the end from its saved checkpoint, holding the stream's sync lease as
/// `holder` (the run's id) meanwhile, storing pages as [`SyncOptions::default`] says.
/// `on_page` hears the counts so far after every store (progress bars, heartbeats).
///
/// # Errors
/// [`SyncError::Busy`] when another sync of the stream holds the lease; the connector's or
/// the store's error otherwise (the pages stored before it stay, with their checkpoint).
pub async fn run(
    connector: &dyn Connector,
    cx: CallContext<'_>,
    records: &RecordStore,
    target: SyncTarget<'_>,
    holder: &str,
    on_page: impl FnMut(&SyncCounts) + Send,
) -> Result<SyncCounts, SyncError> {
    run_with(
        connector,
        cx,
        records,
        target,
        holder,
        SyncOptions::default(),
        on_page,
    )
    .await
}

/// [`run`] with explicit [`SyncOptions`].
///
/// # Errors
/// As for [`run`].
pub async fn run_with(
    connector: &dyn Connector,
    cx: CallContext<'_>,
    records: &RecordStore,
    target: SyncTarget<'_>,
    holder: &str,
    options: SyncOptions,
    on_page: impl FnMut(&SyncCounts) + Send,
) -> Result<SyncCounts, SyncError> {
    let lease = || {
        records.acquire_sync_lease(
            target.tenant,
            target.connection,
            target.stream,
            holder,
            LEASE,
        )
    };
    if !lease().await? {
        return Err(SyncError::Busy);
    }
    let sync = Sync {
        connector,
        cx,
        records,
        target: &target,
        holder,
        options,
    };
    let result = sync.read_to_end(on_page).await;
    // A failed release leaves the lease to expire; the result stands either way.
    if let Err(error) = records
        .release_sync_lease(target.tenant, target.connection, target.stream, holder)
        .await
    {
        tracing::warn!(%error, "could not release a sync lease");
    }
    result
}

struct Sync<'a> {
    connector: &'a dyn Connector,
    cx: CallContext<'a>,
    records: &'a RecordStore,
    target: &'a SyncTarget<'a>,
    holder: &'a str,
    options: SyncOptions,
}

/// A page read and not stored yet.
struct Unstored {
    page: crate::connector::Page,
    read: Option<RunId>,
}

impl Sync<'_> {
    async fn read_to_end(
        &self,
        mut on_page: impl FnMut(&SyncCounts) + Send,
    ) -> Result<SyncCounts, SyncError> {
        let target = self.target;
        let mut counts = SyncCounts::default();
        // The holder is the run's id when the caller runs syncs as runs (the server does):
        // the changes are then that run's.
        let run = self.holder.parse::<RunId>().ok();
        let mut checkpoint = self
            .records
            .checkpoint(target.tenant, target.connection, target.stream)
            .await?
            .map(|c| c.value);
        let mut waiting: Vec<Unstored> = Vec::new();
        let mut waiting_records = 0;
        let mut oldest: Option<std::time::Instant> = None;
        loop {
            let page = self
                .connector
                .collect(self.cx, target.stream, checkpoint.as_ref())
                .await?;
            // The read's id marks what it saw; it spans the runs that resume one read.
            let read = read_id(&page.checkpoint)
                .or_else(|| page.full_read.as_deref().and_then(|r| r.parse().ok()));
            let done = page.done;
            let full_read = page.full_read.clone();
            // The next page is asked from this page's checkpoint, stored or not yet.
            checkpoint = Some(page.checkpoint.clone());
            waiting_records += page.records.len() + page.unchanged.len();
            oldest.get_or_insert_with(std::time::Instant::now);
            waiting.push(Unstored { page, read });
            let flush = done
                || waiting.len() >= self.options.flush_pages
                || waiting_records >= self.options.flush_records
                || oldest.is_some_and(|at| at.elapsed() >= self.options.flush_after);
            if !flush {
                continue;
            }
            counts += self
                .store(std::mem::take(&mut waiting), run.as_ref())
                .await?;
            waiting_records = 0;
            oldest = None;
            if done {
                if let Some(read) = full_read.as_deref().and_then(|r| r.parse::<RunId>().ok()) {
                    let recorded_as = run.unwrap_or(read);
                    counts.deleted += self
                        .records
                        .sweep_unseen_by(
                            target.tenant,
                            target.connection,
                            target.stream,
                            &read,
                            &recorded_as,
                        )
                        .await?;
                }
                // Only now is the stream's record list whole (unified `related` fields wait
                // for it).
                self.records
                    .mark_completed(target.tenant, target.connection, target.stream)
                    .await?;
                on_page(&counts);
                return Ok(counts);
            }
            on_page(&counts);
            // Renewed per store; lost only if this sync stalled past the lease.
            if !self
                .records
                .acquire_sync_lease(
                    target.tenant,
                    target.connection,
                    target.stream,
                    self.holder,
                    LEASE,
                )
                .await?
            {
                return Err(SyncError::Busy);
            }
        }
    }

    /// Stores waiting pages, each with its checkpoint, in one transaction.
    async fn store(
        &self,
        pages: Vec<Unstored>,
        run: Option<&RunId>,
    ) -> Result<SyncCounts, SyncError> {
        let target = self.target;
        // The reads outlive the writes that borrow them; the pages move into the writes.
        let reads: Vec<Option<RunId>> = pages.iter().map(|unstored| unstored.read).collect();
        let not_modified = pages
            .iter()
            .filter(|unstored| unstored.page.not_modified)
            .count() as u64;
        let writes: Vec<PageWrite<'_>> = pages
            .into_iter()
            .zip(&reads)
            .map(|(unstored, read)| PageWrite {
                tenant: target.tenant,
                connection: target.connection,
                stream: target.stream,
                run: run.or(read.as_ref()),
                seen_by: read.as_ref(),
                upserts: unstored
                    .page
                    .records
                    .into_iter()
                    .map(|r| RecordUpsert {
                        primary_key: r.primary_key,
                        data: r.data,
                    })
                    .collect(),
                deletions: unstored.page.deletions,
                seen: unstored.page.unchanged,
                checkpoint: Some(unstored.page.checkpoint),
            })
            .collect();
        let stored = self.records.write_pages(writes).await?;
        let mut counts = SyncCounts {
            pages: stored.len() as u64,
            not_modified,
            ..SyncCounts::default()
        };
        for written in stored {
            counts.added += written.added;
            counts.updated += written.updated;
            counts.deleted += written.deleted;
            counts.unchanged += written.unchanged;
        }
        Ok(counts)
    }
}

/// The id of the read a checkpoint is in the middle of.
fn read_id(checkpoint: &serde_json::Value) -> Option<RunId> {
    checkpoint
        .get("progress")?
        .get("read")?
        .as_str()?
        .parse()
        .ok()
}
