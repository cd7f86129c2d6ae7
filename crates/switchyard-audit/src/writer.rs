//! The [`AuditLog`] handle and the background task that writes its entries in batches.
//!
//! `record` validates and stamps an entry (id, time) and puts it on a bounded channel; one
//! task per process drains the channel, waits up to [`AuditOptions::linger`] for more entries
//! (or until [`AuditOptions::max_batch`]), and appends the batch in one transaction. A full
//! channel makes `record` wait: an audit log must not drop entries, so a database that cannot
//! keep up slows callers down instead. A failed batch is retried with backoff, in memory,
//! until it commits; only shutdown gives up, after [`AuditOptions::shutdown_attempts`], and
//! says how many entries it could not write.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    AuditEntry, AuditError, AuditEvent, AuditEventId, AuditReader,
    storage::{AuditStorage, PendingEvent, storage_for},
};

/// Tuning of the writer task.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Entries queued before `record` waits.
    pub queue_capacity: usize,
    /// Most entries per transaction.
    pub max_batch: usize,
    /// How long the writer waits for more entries after the first of a batch. A flush or
    /// shutdown request cuts it short.
    pub linger: Duration,
    /// First delay before retrying a failed batch; doubles up to `max_retry_backoff`.
    pub retry_backoff: Duration,
    pub max_retry_backoff: Duration,
    /// Attempts per batch once shutdown has begun, before giving up on what is left.
    pub shutdown_attempts: u32,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            max_batch: 256,
            linger: Duration::from_millis(5),
            retry_backoff: Duration::from_millis(50),
            max_retry_backoff: Duration::from_secs(5),
            shutdown_attempts: 3,
        }
    }
}

/// What this process's writer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    pub events_written: u64,
    /// Committed transactions; fewer than `events_written` when batching works.
    pub batches_committed: u64,
    pub failed_attempts: u64,
}

#[derive(Debug, Default)]
struct Counters {
    events: AtomicU64,
    batches: AtomicU64,
    failures: AtomicU64,
}

type Ack<T> = oneshot::Sender<Result<T, AuditError>>;

// Nearly every command is a Record, so boxing it would add an allocation and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Command {
    Record {
        event: PendingEvent,
        ack: Option<Ack<AuditEvent>>,
    },
    Flush(Ack<()>),
    Shutdown,
}

impl Command {
    /// Someone is waiting for everything before this command: do not linger.
    fn is_urgent(&self) -> bool {
        matches!(self, Command::Flush(_) | Command::Shutdown)
    }
}

/// Records audit entries. Cheap to clone; every clone feeds the same writer task.
#[derive(Debug, Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Command>,
    reader: AuditReader,
    counters: Arc<Counters>,
}

/// Owns the writer task. [`AuditWriter::shutdown`] writes what is queued and stops it.
///
/// Dropping this handle detaches the task: it keeps writing, and ends on its own (after
/// writing everything queued) once every [`AuditLog`] clone is dropped. A runtime that shuts
/// down first cancels it, losing what is still queued, so the server should call `shutdown`.
#[derive(Debug)]
pub struct AuditWriter {
    sender: mpsc::Sender<Command>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), AuditError>>,
}

impl AuditLog {
    /// Starts the writer task on the current Tokio runtime for a connected, migrated
    /// database. Call once per process and share the `AuditLog` (clones are cheap).
    ///
    /// # Panics
    /// Outside a Tokio runtime (it spawns the writer task).
    pub fn start(
        database: &switchyard_store::Database,
        options: AuditOptions,
    ) -> (AuditLog, AuditWriter) {
        Self::start_with(storage_for(database), options)
    }

    fn start_with(
        storage: Arc<dyn AuditStorage>,
        options: AuditOptions,
    ) -> (AuditLog, AuditWriter) {
        let options = AuditOptions {
            queue_capacity: options.queue_capacity.max(1),
            max_batch: options.max_batch.max(1),
            shutdown_attempts: options.shutdown_attempts.max(1),
            ..options
        };
        let (sender, receiver) = mpsc::channel(options.queue_capacity);
        let (stop, stop_receiver) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let task = Writer {
            receiver,
            storage: Arc::clone(&storage),
            options,
            counters: Arc::clone(&counters),
            stop: stop_receiver,
        };
        let task = tokio::spawn(task.run());
        let log = AuditLog {
            sender: sender.clone(),
            reader: AuditReader::from_storage(storage),
            counters,
        };
        (log, AuditWriter { sender, stop, task })
    }

    /// Queues an entry and returns; it is written within a few milliseconds. Waits only when
    /// the queue is full (backpressure: entries are never dropped).
    ///
    /// # Errors
    /// [`AuditError::Invalid`] for an entry that fails validation, [`AuditError::Closed`]
    /// after shutdown.
    pub async fn record(&self, entry: AuditEntry) -> Result<(), AuditError> {
        let event = stamp(entry)?;
        self.sender
            .send(Command::Record { event, ack: None })
            .await
            .map_err(|_| AuditError::Closed)
    }

    /// Queues an entry and waits until its batch has committed; returns the stored event.
    ///
    /// # Errors
    /// As for [`AuditLog::record`], and [`AuditError::Unflushed`] when shutdown gave up on it.
    pub async fn record_and_wait(&self, entry: AuditEntry) -> Result<AuditEvent, AuditError> {
        let event = stamp(entry)?;
        let (ack, done) = oneshot::channel();
        self.sender
            .send(Command::Record {
                event,
                ack: Some(ack),
            })
            .await
            .map_err(|_| AuditError::Closed)?;
        done.await.map_err(|_| AuditError::Closed)?
    }

    /// Waits until every entry queued before this call (by any clone) has committed.
    ///
    /// # Errors
    /// [`AuditError::Closed`] after shutdown, [`AuditError::Unflushed`] when shutdown gave up.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        self.sender
            .send(Command::Flush(ack))
            .await
            .map_err(|_| AuditError::Closed)?;
        done.await.map_err(|_| AuditError::Closed)?
    }

    /// Read access to the same database.
    pub fn reader(&self) -> &AuditReader {
        &self.reader
    }

    pub fn stats(&self) -> AuditStats {
        AuditStats {
            events_written: self.counters.events.load(Ordering::Relaxed),
            batches_committed: self.counters.batches.load(Ordering::Relaxed),
            failed_attempts: self.counters.failures.load(Ordering::Relaxed),
        }
    }
}

impl AuditWriter {
    /// Stops accepting entries, writes everything already queued, and waits for the task.
    /// `record` calls after this fail with [`AuditError::Closed`].
    ///
    /// # Errors
    /// [`AuditError::Unflushed`] when the database refused the remaining entries
    /// [`AuditOptions::shutdown_attempts`] times (they are counted in the error and the log).
    pub async fn shutdown(self) -> Result<(), AuditError> {
        // The flag first: a writer stuck retrying a batch must learn it may give up, or it
        // would never read the Shutdown command behind that batch.
        self.stop.send_replace(true);
        // Fails only when the task has already ended; its result is below.
        let _ = self.sender.send(Command::Shutdown).await;
        drop(self.sender);
        match self.task.await {
            Ok(result) => result,
            Err(join_error) => {
                tracing::error!(error = %join_error, "the audit writer task failed");
                Err(AuditError::Closed)
            }
        }
    }
}

fn stamp(entry: AuditEntry) -> Result<PendingEvent, AuditError> {
    entry.validate()?;
    Ok(PendingEvent {
        id: AuditEventId::generate(),
        occurred_at: switchyard_store::model::now_for_storage(),
        entry,
    })
}

struct Writer {
    receiver: mpsc::Receiver<Command>,
    storage: Arc<dyn AuditStorage>,
    options: AuditOptions,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
}

/// The batch could not be written and shutdown has begun: stop retrying.
struct GaveUp;

impl Writer {
    async fn run(mut self) -> Result<(), AuditError> {
        let mut commands = Vec::with_capacity(self.options.max_batch);
        loop {
            // Zero means closed and empty: every sender is gone, or shutdown drained it all.
            if self
                .receiver
                .recv_many(&mut commands, self.options.max_batch)
                .await
                == 0
            {
                return Ok(());
            }
            self.linger(&mut commands).await;
            if commands.iter().any(|c| matches!(c, Command::Shutdown)) {
                // Refuse new entries; the ones already queued are still received below.
                self.receiver.close();
            }
            self.process(std::mem::take(&mut commands)).await?;
        }
    }

    /// Gathers more commands for the same batch, briefly.
    async fn linger(&mut self, commands: &mut Vec<Command>) {
        if self.options.linger.is_zero() || commands.iter().any(Command::is_urgent) {
            return;
        }
        let deadline = Instant::now() + self.options.linger;
        while commands.len() < self.options.max_batch {
            let before = commands.len();
            let room = self.options.max_batch - before;
            match tokio::time::timeout_at(deadline, self.receiver.recv_many(commands, room)).await {
                Ok(0) | Err(_) => return,
                Ok(_) if commands[before..].iter().any(Command::is_urgent) => return,
                Ok(_) => {}
            }
        }
    }

    async fn process(&mut self, commands: Vec<Command>) -> Result<(), AuditError> {
        let mut events = Vec::with_capacity(commands.len());
        let mut acks = Vec::with_capacity(commands.len());
        let mut flushes = Vec::new();
        for command in commands {
            match command {
                Command::Record { event, ack } => {
                    events.push(event);
                    acks.push(ack);
                }
                Command::Flush(ack) => flushes.push(ack),
                Command::Shutdown => {}
            }
        }
        match self.write(&events).await {
            Ok(stored) => {
                for (ack, event) in acks.into_iter().zip(stored) {
                    if let Some(ack) = ack {
                        // The caller may have stopped waiting; the entry is stored either way.
                        let _ = ack.send(Ok(event));
                    }
                }
                for flush in flushes {
                    let _ = flush.send(Ok(()));
                }
                Ok(())
            }
            Err(GaveUp) => Err(self.abandon(events.len(), acks, flushes)),
        }
    }

    /// Writes one batch, retrying until it commits or shutdown gives up.
    async fn write(&mut self, events: &[PendingEvent]) -> Result<Vec<AuditEvent>, GaveUp> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut delay = self.options.retry_backoff;
        let mut attempt = 0_u32;
        loop {
            match self.storage.append(events, attempt > 0).await {
                Ok(stored) => {
                    let count = stored.len() as u64;
                    self.counters.events.fetch_add(count, Ordering::Relaxed);
                    self.counters.batches.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("switchyard_audit_events_written_total").increment(count);
                    metrics::counter!("switchyard_audit_batches_total").increment(1);
                    return Ok(stored);
                }
                Err(error) => {
                    attempt += 1;
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("switchyard_audit_write_failures_total").increment(1);
                    tracing::error!(
                        error = %error_chain(&error),
                        attempt,
                        entries = events.len(),
                        "writing an audit batch failed; it will be retried"
                    );
                    if *self.stop.borrow() && attempt >= self.options.shutdown_attempts {
                        return Err(GaveUp);
                    }
                    let stop = &mut self.stop;
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        // Shutdown wakes the backoff so the attempt limit applies at once.
                        () = async {
                            if stop.changed().await.is_err() {
                                std::future::pending::<()>().await;
                            }
                        } => {}
                    }
                    delay = (delay * 2).min(self.options.max_retry_backoff);
                }
            }
        }
    }

    /// Fails every waiter of the abandoned batch and of whatever is still queued.
    fn abandon(
        &mut self,
        batch_len: usize,
        mut acks: Vec<Option<Ack<AuditEvent>>>,
        mut flushes: Vec<Ack<()>>,
    ) -> AuditError {
        self.receiver.close();
        let mut lost = batch_len;
        while let Ok(command) = self.receiver.try_recv() {
            match command {
                Command::Record { ack, .. } => {
                    lost += 1;
                    acks.push(ack);
                }
                Command::Flush(ack) => flushes.push(ack),
                Command::Shutdown => {}
            }
        }
        tracing::error!(
            lost,
            "the audit writer is shutting down with entries the database did not accept; \
             they are lost"
        );
        for ack in acks.into_iter().flatten() {
            let _ = ack.send(Err(AuditError::Unflushed { count: lost }));
        }
        for flush in flushes {
            let _ = flush.send(Err(AuditError::Unflushed { count: lost }));
        }
        AuditError::Unflushed { count: lost }
    }
}

/// The error and its causes, for one log line.
fn error_chain(error: &AuditError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
