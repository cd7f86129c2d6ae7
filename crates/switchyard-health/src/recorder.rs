//! [`HealthRecorder`]: the provider stack's observer. [`CallObserver::attempt`] only counts in
//! memory; [`HealthRecorder::flush`] (every few seconds from [`HealthRecorder::start`], and on
//! shutdown) adds the counts to the database and announces status changes.
//!
//! Every process runs its own recorder against the shared database. Counts are added, never
//! overwritten, so processes sum up; a status change is claimed with a compare-and-set on the
//! connection's row, so exactly one process publishes each change.

use std::sync::Arc;
use std::time::Duration;

use switchyard_core::TenantId;
use switchyard_http::{AttemptRecord, CallObserver};
use switchyard_outbound::{Published, publish_in};
use switchyard_store::Database;
use switchyard_vault::AuditedVault;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::accumulator::{Accumulator, ConnectionKey};
use crate::db;
use crate::error::{HealthError, Result};
use crate::events;
use crate::report;
use crate::status::HealthStatus;

/// A connection's data is dropped after this many failed flushes (a database down for long,
/// a row that cannot be written): health is a signal, not a ledger.
const MAX_FAILED_FLUSHES: u32 = 5;

/// How the recorder runs.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// How often the background task flushes.
    pub flush_interval: Duration,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_secs(5),
        }
    }
}

/// A status change this process announced.
#[derive(Debug, Clone)]
pub struct Transition {
    pub tenant: TenantId,
    pub connection_id: String,
    pub previous: HealthStatus,
    pub status: HealthStatus,
    /// The `switchyard.connection.*` event and its deliveries.
    pub published: Published,
}

/// What one flush did.
#[derive(Debug, Clone, Default)]
pub struct FlushReport {
    /// Connections whose counts were written.
    pub connections: usize,
    /// Status changes this process won and published.
    pub transitions: Vec<Transition>,
}

/// Records provider call attempts as connection health. Cheap to clone.
#[derive(Clone)]
pub struct HealthRecorder {
    inner: Arc<Inner>,
}

struct Inner {
    database: Database,
    /// Seals the bodies of the status-change events.
    vault: AuditedVault,
    options: HealthOptions,
    pending: Accumulator,
    /// One flush at a time per process; an explicit flush waits for a running one.
    flushing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for HealthRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthRecorder")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl CallObserver for HealthRecorder {
    fn attempt(&self, record: &AttemptRecord) {
        self.inner.pending.record(record);
    }
}

impl HealthRecorder {
    pub fn new(database: Database, vault: AuditedVault, options: HealthOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                database,
                vault,
                options,
                pending: Accumulator::default(),
                flushing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The recorder as the provider stack takes observers.
    pub fn observer(&self) -> Arc<dyn CallObserver> {
        Arc::new(self.clone())
    }

    /// Flushes every [`HealthOptions::flush_interval`] until `stop` is cancelled, then once
    /// more so nothing counted before the stop is lost.
    pub fn start(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let recorder = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(recorder.inner.options.flush_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = stop.cancelled() => break,
                }
                recorder.flush_logged().await;
            }
            recorder.flush_logged().await;
        })
    }

    async fn flush_logged(&self) {
        if let Err(error) = self.flush().await {
            tracing::warn!(%error, code = error.code(), "connection health flush failed");
        }
    }

    /// Writes what was counted since the last flush, then re-assesses the connections that
    /// had attempts and publishes the status changes this process wins.
    ///
    /// # Errors
    /// The first failure; the other connections are still flushed, and data that could not
    /// be written is kept for the next flush.
    pub async fn flush(&self) -> Result<FlushReport> {
        let _one_at_a_time = self.inner.flushing.lock().await;
        let pending = self.inner.pending.take();
        let mut report = FlushReport::default();
        let mut first_error: Option<HealthError> = None;
        let now = OffsetDateTime::now_utc();
        let mut written = Vec::with_capacity(pending.len());
        for (key, mut data) in pending {
            match db::write_pending(&self.inner.database, &key, &data, now).await {
                Ok(()) => {
                    report.connections += 1;
                    written.push(key);
                }
                Err(error) => {
                    data.failed_flushes += 1;
                    if data.failed_flushes < MAX_FAILED_FLUSHES {
                        self.inner.pending.restore(key, data);
                    } else {
                        tracing::error!(
                            %error,
                            tenant = %key.tenant,
                            "dropping connection health counts after repeated failures"
                        );
                    }
                    first_error.get_or_insert(error);
                }
            }
        }
        // After every write, so the status sees this whole flush.
        let now = OffsetDateTime::now_utc();
        for key in written {
            match self.reassess(&key, now).await {
                Ok(Some(transition)) => report.transitions.push(transition),
                Ok(None) => {}
                // The stored status is unchanged, so the next flush of this connection
                // sees the same change and tries again.
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    /// Compares the connection's status now with the one last announced and, if this process
    /// wins the compare-and-set, publishes the change in the same transaction.
    async fn reassess(
        &self,
        key: &ConnectionKey,
        now: OffsetDateTime,
    ) -> Result<Option<Transition>> {
        let database = &self.inner.database;
        let Some((health, announced)) =
            report::read(database, key.tenant, &key.connection, now).await?
        else {
            return Ok(None);
        };
        if health.status == announced {
            return Ok(None);
        }
        // Load the tenant's data key before the transaction: publishing seals the event with
        // it, and creating it inside the transaction would, on SQLite, wait on this very
        // transaction's write lock from another connection.
        self.inner
            .vault
            .encrypt_blob(key.tenant, b"connection_health", b"")
            .await?;
        let mut tx = database.begin().await?;
        if !db::compare_and_set_status(
            &mut tx,
            key.tenant,
            &key.connection,
            announced,
            health.status,
            now,
        )
        .await?
        {
            // Another process announced a change first.
            tx.rollback().await?;
            return Ok(None);
        }
        let event = events::status_changed(&health, announced);
        let published = publish_in(&mut tx, &self.inner.vault, key.tenant, event).await?;
        tx.commit().await?;
        tracing::info!(
            tenant = %key.tenant,
            connection = %key.connection,
            previous = %announced,
            status = %health.status,
            "connection health changed"
        );
        Ok(Some(Transition {
            tenant: key.tenant,
            connection_id: key.connection.clone(),
            previous: announced,
            status: health.status,
            published,
        }))
    }
}
