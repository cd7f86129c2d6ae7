//! The ingest writer: makes accepted deliveries durable in shared commits.
//!
//! Each verified delivery is handed to a writer task, and the request waits for its answer.
//! A writer takes every delivery waiting at that moment (up to a batch size) and, in one
//! transaction:
//! 1. claims the batch's dedup keys (`inbound_dedup`, primary key on source and key, an
//!    upsert that only replaces an expired claim) in one statement, in key order so
//!    concurrent writers never deadlock; a key already claimed makes that delivery a
//!    duplicate, and so does a second copy of a key within the batch;
//! 2. meanwhile (the two overlap) writes the batch's encrypted requests to the blob store, one
//!    segment per tenant (so one durable write per tenant per batch, not per request, and a
//!    tenant's segments can be shredded with it); a segment left holding only duplicates is
//!    removed;
//! 3. inserts the `inbound_events` rows (one statement) and their `inbound.process` jobs;
//! 4. commits, then answers every waiting request.
//!
//! A request is answered 2xx only after step 4, so everything acknowledged survives a crash.
//! A client that disconnects does not cancel its delivery: the writer task owns it once
//! handed over (a dropped request future only stops waiting for the answer), so nothing is
//! stored without also being queued, and no claim is committed without its event. A batch
//! that fails before its commit removes the segments it wrote; only a commit whose outcome is
//! unknown leaves them, and retention removes them with their day.
//!
//! The statements themselves are in [`statements`].

mod statements;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use serde_json::json;
use switchyard_blob::{BlobKey, BlobStore};
use switchyard_core::{InboundEventId, SourceId, TenantId};
use switchyard_jobs::queue::{self, NewJob};
use switchyard_store::{Database, Transaction};
use time::OffsetDateTime;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::InboundError;

/// The job that processes a stored delivery.
pub const PROCESS_JOB: &str = "inbound.process";
/// The blob kind of inbound request segments.
pub const BLOB_KIND: &str = "inbound";
/// Deliveries handed to a writer whose commit has not finished (committed or failed). Those
/// of disconnected clients count too: they are stored all the same.
const PENDING_GAUGE: &str = "switchyard_inbound_writer_pending";

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
        // Reserve first, then count and hand over without an await in between: a request
        // dropped while it waits for room hands nothing over and counts nothing.
        let permit = self
            .sender
            .reserve()
            .await
            .map_err(|_| Arc::new(InboundError::WriterStopped))?;
        metrics::gauge!(PENDING_GAUGE).increment(1.0);
        permit.send((delivery, reply));
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
        metrics::gauge!(PENDING_GAUGE).decrement(size as f64);
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
        let claiming = async {
            let mut tx = self.database.begin().await?;
            let claimed = claim_keys(&mut tx, &deliveries, now).await?;
            Ok::<_, InboundError>((tx, claimed))
        };
        // The segment write (a file and a directory fsync) runs while the keys are claimed,
        // so it holds every delivery of the batch rather than wait to learn which are new; a
        // duplicate's bytes stay in it unreferenced and go with its day.
        let (claimed, written) = tokio::join!(claiming, self.write_segments(&deliveries, now));
        // A failed write removed what it wrote; dropping the transaction rolls the claims back.
        let (locations, segments) = written?;
        let (mut tx, (results, fresh)) = match claimed {
            Ok(claimed) => claimed,
            Err(error) => {
                discard(&self.blobs, &segments).await;
                return Err(error);
            }
        };
        let fresh_locations: Vec<(String, u64, u64)> = fresh
            .iter()
            .map(|&index| locations[index].clone())
            .collect();
        // A segment whose deliveries all turned out duplicates belongs to nothing.
        let referenced: HashSet<&str> = fresh_locations
            .iter()
            .map(|(key, ..)| key.as_str())
            .collect();
        let (used, unused): (Vec<BlobKey>, Vec<BlobKey>) = segments
            .into_iter()
            .partition(|key| referenced.contains(key.to_string().as_str()));
        discard(&self.blobs, &unused).await;
        // Until the commit is attempted a failure certainly rolls back, so the segments just
        // written belong to nothing and go. A failed commit itself is ambiguous (the
        // connection may drop after the server committed): its segments stay, and retention
        // removes them with their day if nothing points at them.
        if let Err(error) = self
            .stage_rows(&mut tx, &deliveries, &fresh, &fresh_locations)
            .await
        {
            discard(&self.blobs, &used).await;
            return Err(error);
        }
        tx.commit().await?;
        Ok(results)
    }

    /// Inserts the fresh deliveries' event rows and their processing jobs.
    async fn stage_rows(
        &self,
        tx: &mut Transaction,
        deliveries: &[Delivery],
        fresh: &[usize],
        locations: &[(String, u64, u64)],
    ) -> Result<(), InboundError> {
        let as_i64 = |n: u64| i64::try_from(n).map_err(InboundError::corrupt);
        let mut rows = Vec::with_capacity(fresh.len());
        let mut jobs = Vec::with_capacity(fresh.len());
        for (&index, (blob_key, offset, length)) in fresh.iter().zip(locations) {
            let delivery = &deliveries[index];
            rows.push(statements::EventRow {
                id: delivery.id.to_string(),
                tenant: delivery.tenant.to_string(),
                source: delivery.source.to_string(),
                dedup_key: &delivery.dedup_key,
                event_type: delivery.event_type.as_deref(),
                blob_key,
                blob_offset: as_i64(*offset)?,
                blob_length: as_i64(*length)?,
                body_bytes: as_i64(delivery.body_bytes as u64)?,
                received_at: delivery.received_at,
            });
            jobs.push(
                NewJob::new(
                    PROCESS_JOB,
                    json!({ "event_id": delivery.id.to_string(), "tenant": delivery.tenant.to_string() }),
                )
                .tenant(delivery.tenant),
            );
        }
        statements::insert_events(tx, &rows).await?;
        queue::enqueue_many_in(tx, jobs).await?;
        Ok(())
    }

    /// Writes the deliveries' sealed requests, one segment per tenant; returns each one's
    /// (segment key, offset, length), in order, and the segments written.
    async fn write_segments(
        &self,
        deliveries: &[Delivery],
        now: OffsetDateTime,
    ) -> Result<(Vec<(String, u64, u64)>, Vec<BlobKey>), InboundError> {
        let mut segments: Vec<(TenantId, Vec<u8>)> = Vec::new();
        let mut locations = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
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
        let mut keys = Vec::with_capacity(segments.len());
        let mut puts = Vec::with_capacity(segments.len());
        for (tenant, bytes) in segments {
            let key = segment_key(tenant, now.to_offset(time::UtcOffset::UTC).date())?;
            let blobs = self.blobs.clone();
            let put_key = key.clone();
            puts.push(async move { blobs.put(&put_key, Bytes::from(bytes)).await });
            keys.push(key);
        }
        // Segments of different tenants are written at once. If one fails, the others were
        // written for nothing.
        let written = futures::future::join_all(puts).await;
        if let Some(position) = written.iter().position(Result::is_err) {
            let stored: Vec<BlobKey> = keys
                .iter()
                .zip(&written)
                .filter(|(_, put)| put.is_ok())
                .map(|(key, _)| key.clone())
                .collect();
            discard(&self.blobs, &stored).await;
            let mut written = written;
            return Err(written.swap_remove(position).err().map_or_else(
                || InboundError::corrupt("segment write failed without an error"),
                InboundError::from,
            ));
        }
        let locations = locations
            .into_iter()
            .map(|(segment, offset, length)| (keys[segment].to_string(), offset, length))
            .collect();
        Ok((locations, keys))
    }
}

/// A new segment's key in `tenant`'s inbound folder for `day`.
pub(crate) fn segment_key(
    tenant: TenantId,
    day: time::Date,
) -> Result<BlobKey, switchyard_blob::BlobError> {
    BlobKey::for_date(
        tenant.to_string(),
        BLOB_KIND,
        day,
        format!("seg_{}", InboundEventId::generate()),
    )
}

/// Best-effort removal of segments no committed row can point at.
pub(crate) async fn discard(blobs: &BlobStore, segments: &[BlobKey]) {
    for key in segments {
        if let Err(error) = blobs.delete(key).await {
            tracing::warn!(%error, blob = %key, "could not remove an unused ingest segment");
        }
    }
}

/// Claims the batch's dedup keys; returns every delivery's outcome and the new deliveries
/// (those whose claim was taken), in claim order.
async fn claim_keys(
    tx: &mut Transaction,
    deliveries: &[Delivery],
    now: OffsetDateTime,
) -> Result<(Vec<Stored>, Vec<usize>), InboundError> {
    let plan = ClaimPlan::new(deliveries);
    let claims: Vec<statements::Claim<'_>> = plan
        .claimants
        .iter()
        .map(|&index| {
            let delivery = &deliveries[index];
            statements::Claim {
                source: delivery.source.to_string(),
                key: &delivery.dedup_key,
                event: delivery.id.to_string(),
                expires: now
                    + time::Duration::try_from(delivery.dedup_for).unwrap_or(time::Duration::WEEK),
            }
        })
        .collect();
    let taken = statements::claim(tx, &claims, now).await?;
    let (mut fresh, mut held) = (Vec::new(), Vec::new());
    for (&index, claim) in plan.claimants.iter().zip(&claims) {
        if taken.contains(&claim.event) {
            fresh.push(index);
        } else {
            held.push((index, (claim.source.clone(), claim.key)));
        }
    }

    let mut results: Vec<Option<Stored>> = vec![None; deliveries.len()];
    for &index in &fresh {
        results[index] = Some(Stored::Accepted(deliveries[index].id));
    }
    // Held by a live claim of an earlier batch: a duplicate of that claim's event.
    let held_keys: Vec<(String, &str)> = held.iter().map(|(_, key)| key.clone()).collect();
    let holders: HashMap<(String, String), String> = statements::claimed_by(tx, &held_keys)
        .await?
        .into_iter()
        .map(|(source, key, event)| ((source, key), event))
        .collect();
    for (index, (source, key)) in held {
        let holder = holders.get(&(source, key.to_owned()));
        results[index] = Some(Stored::Duplicate(holder.and_then(|id| id.parse().ok())));
    }
    // Later copies of a key within the batch share the fate of its first copy.
    for &(copy, first) in &plan.copies {
        results[copy] = match results[first] {
            Some(Stored::Accepted(id)) => Some(Stored::Duplicate(Some(id))),
            duplicate => duplicate,
        };
    }
    let results = results
        .into_iter()
        .map(|result| result.ok_or_else(|| InboundError::corrupt("delivery without outcome")))
        .collect::<Result<_, _>>()?;
    Ok((results, fresh))
}

/// How a batch claims its dedup keys: which deliveries claim, in lock order, and which are
/// later copies of a key already claimed by an earlier delivery of the same batch.
struct ClaimPlan {
    /// One delivery per distinct (source, key), sorted by it: two writers claiming
    /// overlapping keys then lock them in the same order and cannot deadlock.
    claimants: Vec<usize>,
    /// (copy, claimant): the copy is a duplicate of whatever the claimant turns out to be.
    copies: Vec<(usize, usize)>,
}

impl ClaimPlan {
    fn new(deliveries: &[Delivery]) -> Self {
        let key = |index: usize| (deliveries[index].source, &deliveries[index].dedup_key);
        let mut order: Vec<usize> = (0..deliveries.len()).collect();
        // Stable, so of several copies the one that arrived first claims.
        order.sort_by(|&a, &b| key(a).cmp(&key(b)));
        let mut claimants: Vec<usize> = Vec::with_capacity(order.len());
        let mut copies = Vec::new();
        for index in order {
            match claimants.last() {
                Some(&first) if key(first) == key(index) => copies.push((index, first)),
                _ => claimants.push(index),
            }
        }
        Self { claimants, copies }
    }
}
