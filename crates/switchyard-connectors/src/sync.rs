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

/// Reads `target` to the end from its saved checkpoint, holding the stream's sync lease as
/// `holder` (the run's id) meanwhile. `on_page` hears the counts so far after every stored
/// page (progress bars, heartbeats).
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
    if !records
        .acquire_sync_lease(
            target.tenant,
            target.connection,
            target.stream,
            holder,
            LEASE,
        )
        .await?
    {
        return Err(SyncError::Busy);
    }
    let result = read_to_end(connector, cx, records, &target, holder, on_page).await;
    // A failed release leaves the lease to expire; the result stands either way.
    if let Err(error) = records
        .release_sync_lease(target.tenant, target.connection, target.stream, holder)
        .await
    {
        tracing::warn!(%error, "could not release a sync lease");
    }
    result
}

async fn read_to_end(
    connector: &dyn Connector,
    cx: CallContext<'_>,
    records: &RecordStore,
    target: &SyncTarget<'_>,
    holder: &str,
    mut on_page: impl FnMut(&SyncCounts) + Send,
) -> Result<SyncCounts, SyncError> {
    let mut counts = SyncCounts::default();
    // The holder is the run's id when the caller runs syncs as runs (the server does): the
    // changes are then that run's.
    let run = holder.parse::<RunId>().ok();
    let mut checkpoint = records
        .checkpoint(target.tenant, target.connection, target.stream)
        .await?
        .map(|c| c.value);
    loop {
        let page = connector
            .collect(cx, target.stream, checkpoint.as_ref())
            .await?;
        // The read's id marks what it saw; it spans the runs that resume one read.
        let read = read_id(&page.checkpoint)
            .or_else(|| page.full_read.as_deref().and_then(|r| r.parse().ok()));
        let written = records
            .write_page(PageWrite {
                tenant: target.tenant,
                connection: target.connection,
                stream: target.stream,
                run: run.as_ref().or(read.as_ref()),
                seen_by: read.as_ref(),
                upserts: page
                    .records
                    .into_iter()
                    .map(|r| RecordUpsert {
                        primary_key: r.primary_key,
                        data: r.data,
                    })
                    .collect(),
                deletions: page.deletions,
                seen: page.unchanged,
                checkpoint: Some(page.checkpoint.clone()),
            })
            .await?;
        counts += SyncCounts {
            pages: 1,
            added: written.added,
            updated: written.updated,
            deleted: written.deleted,
            unchanged: written.unchanged,
            not_modified: u64::from(page.not_modified),
        };
        if page.done {
            if let Some(read) = page
                .full_read
                .as_deref()
                .and_then(|r| r.parse::<RunId>().ok())
            {
                let recorded_as = run.unwrap_or(read);
                counts.deleted += records
                    .sweep_unseen_by(
                        target.tenant,
                        target.connection,
                        target.stream,
                        &read,
                        &recorded_as,
                    )
                    .await?;
            }
            on_page(&counts);
            return Ok(counts);
        }
        on_page(&counts);
        // Renewed per page; lost only if this sync stalled past the lease.
        if !records
            .acquire_sync_lease(
                target.tenant,
                target.connection,
                target.stream,
                holder,
                LEASE,
            )
            .await?
        {
            return Err(SyncError::Busy);
        }
        checkpoint = Some(page.checkpoint);
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
