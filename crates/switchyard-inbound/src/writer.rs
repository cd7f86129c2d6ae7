//! The ingest writer: makes accepted deliveries durable in shared commits.
//!
//! Each verified delivery is handed to a writer task, and the request waits for its answer.
//! A writer takes every delivery waiting at that moment (up to a batch size) and, in one
//! transaction:
//! 1. claims each delivery's dedup key (`inbound_dedup`, primary key on source and key, an
//!    upsert that only replaces an expired claim), in key order so concurrent writers never
//!    deadlock; a key already claimed makes that delivery a duplicate, also within the batch;
//! 2. writes the new deliveries' encrypted requests to the blob store, one segment per tenant
//!    (so one durable write per tenant per batch, not per request, and a tenant's segments can
//!    be shredded with it);
//! 3. inserts the `inbound_events` rows and their `inbound.process` jobs;
//! 4. commits, then answers every waiting request.
//!
//! A request is answered 2xx only after step 4, so everything acknowledged survives a crash.
//! A client that disconnects does not cancel its delivery: the writer owns it once handed
//! over, so nothing is stored without also being queued. A commit that fails leaves at worst
//! an unreferenced segment, which retention removes with its day.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use serde_json::json;
use switchyard_blob::{BlobKey, BlobStore};
use switchyard_core::{InboundEventId, SourceId, TenantId};
use switchyard_jobs::queue::{self, NewJob};
use switchyard_store::{Database, DbTime, Transaction};
use time::OffsetDateTime;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{InboundError, sql::on_tx};

/// The job that processes a stored delivery.
pub const PROCESS_JOB: &str = "inbound.process";
/// The blob kind of inbound request segments.
pub const BLOB_KIND: &str = "inbound";

/// A verified delivery, ready to store.
#[derive(Debug)]
pub struct Delivery {
    /// The event id this delivery gets if it is new; the payload is sealed to it
    /// ([`crate::events::aad`]).
    pub id: InboundEventId,
    pub tenant: TenantId,
    pub source: SourceId,
    /// The provider's delivery id, else the body hash.
    pub dedup_key: String,
    /// How long the dedup claim lasts.
    pub dedup_for: Duration,
    pub event_type: Option<String>,
    /// The encrypted [`crate::envelope::StoredRequest`].
    pub sealed: Vec<u8>,
    pub body_bytes: usize,
    pub received_at: OffsetDateTime,
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// New: stored and queued for processing.
    Accepted(InboundEventId),
    /// Seen before within its dedup horizon: the first delivery's event.
    Duplicate(Option<InboundEventId>),
}

/// Tuning of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Writer tasks. One on SQLite (it has one writer anyway); a few on PostgreSQL so one
    /// commit's flush overlaps the next batch's work.
    pub writers: usize,
    /// Most deliveries per commit.
    pub max_batch: usize,
    /// Deliveries waiting for a writer before new ones are pushed back (503).
    pub queue_capacity: usize,
}

impl WriterOptions {
    pub fn for_database(database: &Database) -> Self {
        Self {
            writers: match database {
                Database::Sqlite(_) => 1,
                Database::Postgres(_) => 4,
            },
            max_batch: 256,
            queue_capacity: 8192,
        }
    }
}

type Reply = oneshot::Sender<Result<Stored, Arc<InboundError>>>;

/// Hands deliveries to the writer tasks. Cheap to clone.
#[derive(Clone)]
pub struct IngestWriter {
    sender: mpsc::Sender<(Delivery, Reply)>,
}

impl IngestWriter {
    /// Starts the writer tasks; they stop when `shutdown` fires and the queue has drained.
    pub fn start(
        database: Database,
        blobs: BlobStore,
        options: WriterOptions,
        shutdown: CancellationToken,
    ) -> (Self, Vec<tokio::task::JoinHandle<()>>) {
        let (sender, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let tasks = (0..options.writers.max(1))
            .map(|_| {
                let task = WriterTask {
                    database: database.clone(),
                    blobs: blobs.clone(),
                    receiver: Arc::clone(&receiver),
                    max_batch: options.max_batch.max(1),
                };
                tokio::spawn(task.run(shutdown.clone()))
            })
            .collect();
        (Self { sender }, tasks)
    }

    /// Stores `delivery` durably (or finds it a duplicate) and waits for the commit.
    ///
    /// # Errors
    /// [`InboundError::WriterStopped`] when shutting down; the batch's error when its commit
    /// failed (nothing of it was acknowledged).
    pub async fn store(&self, delivery: Delivery) -> Result<Stored, Arc<InboundError>> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((delivery, reply))
            .await
            .map_err(|_| Arc::new(InboundError::WriterStopped))?;
        answer
            .await
            .map_err(|_| Arc::new(InboundError::WriterStopped))?
    }
}

struct WriterTask {
    database: Database,
    blobs: BlobStore,
    receiver: Arc<Mutex<mpsc::Receiver<(Delivery, Reply)>>>,
    max_batch: usize,
}

impl WriterTask {
    async fn run(self, shutdown: CancellationToken) {
        loop {
            let batch = {
                let mut receiver = self.receiver.lock().await;
                let first = tokio::select! {
                    biased;
                    next = receiver.recv() => next,
                    () = shutdown.cancelled() => {
                        // Stop taking new work, but finish what already waits.
                        receiver.close();
                        receiver.recv().await
                    }
                };
                let Some(first) = first else { break };
                let mut batch = vec![first];
                while batch.len() < self.max_batch {
                    match receiver.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                batch
            };
            self.write(batch).await;
        }
    }

    async fn write(&self, batch: Vec<(Delivery, Reply)>) {
        let started = std::time::Instant::now();
        let size = batch.len();
        let (deliveries, replies): (Vec<Delivery>, Vec<Reply>) = batch.into_iter().unzip();
        let outcome = self.commit(deliveries).await;
        metrics::histogram!("switchyard_inbound_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("switchyard_inbound_commit_batch_size").record(size as f64);
        match outcome {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // The request may have gone (client disconnected): its delivery is
                    // stored and queued all the same.
                    let _ = reply.send(Ok(result));
                }
            }
            Err(error) => {
                tracing::error!(error = %error, deliveries = size, "ingest commit failed");
                let error = Arc::new(error);
                for reply in replies {
                    let _ = reply.send(Err(Arc::clone(&error)));
                }
            }
        }
    }

    async fn commit(&self, deliveries: Vec<Delivery>) -> Result<Vec<Stored>, InboundError> {
        let now = OffsetDateTime::now_utc();
        let mut tx = self.database.begin().await?;
        // Claim in a fixed order: two writers claiming overlapping keys then lock them in
        // the same order and cannot deadlock.
        let mut order: Vec<usize> = (0..deliveries.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&deliveries[a], &deliveries[b]);
            (a.source, &a.dedup_key).cmp(&(b.source, &b.dedup_key))
        });
        let mut results: Vec<Option<Stored>> = vec![None; deliveries.len()];
        let mut fresh: Vec<(usize, InboundEventId)> = Vec::new();
        for index in order {
            let delivery = &deliveries[index];
            let id = delivery.id;
            if claim(&mut tx, delivery, id, now).await? {
                fresh.push((index, id));
            } else {
                results[index] = Some(Stored::Duplicate(
                    claimed_by(&mut tx, delivery.source, &delivery.dedup_key).await?,
                ));
            }
        }
        let locations = self.write_segments(&deliveries, &fresh, now).await?;
        let mut jobs = Vec::with_capacity(fresh.len());
        for ((index, id), (blob_key, offset, length)) in fresh.iter().zip(locations) {
            let delivery = &deliveries[*index];
            insert_event(&mut tx, delivery, *id, &blob_key, offset, length).await?;
            jobs.push(
                NewJob::new(
                    PROCESS_JOB,
                    json!({ "event_id": id.to_string(), "tenant": delivery.tenant.to_string() }),
                )
                .tenant(delivery.tenant),
            );
            results[*index] = Some(Stored::Accepted(*id));
        }
        queue::enqueue_many_in(&mut tx, jobs).await?;
        tx.commit().await?;
        results
            .into_iter()
            .map(|result| result.ok_or_else(|| InboundError::corrupt("delivery without outcome")))
            .collect()
    }

    /// Writes the fresh deliveries' sealed requests, one segment per tenant; returns each
    /// one's (segment key, offset, length), in `fresh` order.
    async fn write_segments(
        &self,
        deliveries: &[Delivery],
        fresh: &[(usize, InboundEventId)],
        now: OffsetDateTime,
    ) -> Result<Vec<(String, u64, u64)>, InboundError> {
        let mut segments: Vec<(TenantId, Vec<u8>)> = Vec::new();
        let mut locations = Vec::with_capacity(fresh.len());
        for (index, _) in fresh {
            let delivery = &deliveries[*index];
            let position = match segments.iter().position(|(t, _)| *t == delivery.tenant) {
                Some(position) => position,
                None => {
                    segments.push((delivery.tenant, Vec::new()));
                    segments.len() - 1
                }
            };
            let bytes = &mut segments[position].1;
            let offset = bytes.len() as u64;
            bytes.extend_from_slice(&delivery.sealed);
            locations.push((position, offset, delivery.sealed.len() as u64));
        }
        let puts = segments.into_iter().map(|(tenant, bytes)| {
            let key = BlobKey::new(
                tenant.to_string(),
                BLOB_KIND,
                now,
                format!("seg_{}", InboundEventId::generate()),
            );
            let blobs = self.blobs.clone();
            async move {
                let key = key?;
                blobs.put(&key, Bytes::from(bytes)).await?;
                Ok::<_, switchyard_blob::BlobError>(key.to_string())
            }
        });
        // Segments of different tenants are written at once.
        let keys = futures::future::try_join_all(puts).await?;
        Ok(locations
            .into_iter()
            .map(|(segment, offset, length)| (keys[segment].clone(), offset, length))
            .collect())
    }
}

/// Claims the delivery's dedup key; `false` when a live claim exists.
async fn claim(
    tx: &mut Transaction,
    delivery: &Delivery,
    id: InboundEventId,
    now: OffsetDateTime,
) -> Result<bool, InboundError> {
    let expires =
        now + time::Duration::try_from(delivery.dedup_for).unwrap_or(time::Duration::WEEK);
    let statement = "INSERT INTO inbound_dedup (source_id, dedup_key, event_id, expires_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (source_id, dedup_key) DO UPDATE \
         SET event_id = excluded.event_id, expires_at = excluded.expires_at \
         WHERE inbound_dedup.expires_at < $5 \
         RETURNING event_id";
    let claimed: Option<String> = on_tx!(tx, |conn| {
        sqlx::query_scalar(statement)
            .bind(delivery.source.to_string())
            .bind(&delivery.dedup_key)
            .bind(id.to_string())
            .bind(DbTime::new(expires))
            .bind(DbTime::new(now))
            .fetch_optional(conn)
            .await?
    });
    Ok(claimed.is_some())
}

async fn claimed_by(
    tx: &mut Transaction,
    source: SourceId,
    key: &str,
) -> Result<Option<InboundEventId>, InboundError> {
    let statement = "SELECT event_id FROM inbound_dedup WHERE source_id = $1 AND dedup_key = $2";
    let id: Option<String> = on_tx!(tx, |conn| {
        sqlx::query_scalar(statement)
            .bind(source.to_string())
            .bind(key)
            .fetch_optional(conn)
            .await?
    });
    Ok(id.and_then(|id| id.parse().ok()))
}

async fn insert_event(
    tx: &mut Transaction,
    delivery: &Delivery,
    id: InboundEventId,
    blob_key: &str,
    offset: u64,
    length: u64,
) -> Result<(), InboundError> {
    let statement = "INSERT INTO inbound_events (id, tenant_id, source_id, dedup_key, \
         event_type, status, blob_key, blob_offset, blob_length, body_bytes, received_at) \
         VALUES ($1, $2, $3, $4, $5, 'received', $6, $7, $8, $9, $10)";
    let as_i64 = |n: u64| i64::try_from(n).map_err(InboundError::corrupt);
    let (offset, length) = (as_i64(offset)?, as_i64(length)?);
    let body_bytes = as_i64(delivery.body_bytes as u64)?;
    on_tx!(tx, |conn| {
        sqlx::query(statement)
            .bind(id.to_string())
            .bind(delivery.tenant.to_string())
            .bind(delivery.source.to_string())
            .bind(&delivery.dedup_key)
            .bind(&delivery.event_type)
            .bind(blob_key)
            .bind(offset)
            .bind(length)
            .bind(body_bytes)
            .bind(DbTime::new(delivery.received_at))
            .execute(conn)
            .await
            .map(drop)?
    });
    Ok(())
}
