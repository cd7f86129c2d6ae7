//! Persistence of entries and chain heads over SQLite and PostgreSQL.
//!
//! The statements are written once in the dialect both engines accept and expanded per pool
//! type by [`impl_audit_storage!`]. One thing differs and is a macro argument: how a batch
//! transaction starts and locks its chain heads. PostgreSQL runs at READ COMMITTED and takes
//! `SELECT … FOR UPDATE` on each head row, so a second process appending to the same chain
//! waits and then reads the new head; SQLite has no row locks, so the transaction starts with
//! `BEGIN IMMEDIATE`, which takes the database's single write lock up front and serialises
//! writers (including other processes on the same file).
//!
//! Times are bound as [`DbTime`], so `since`/`until` compare correctly as text on SQLite.
//!
//! Tables (`switchyard-store/migrations/*/0003_audit.sql`): `audit_events`, append-only, and
//! `audit_chain_heads`, the last sequence number and hash of each chain.

use std::fmt;

use async_trait::async_trait;
use switchyard_store::DbTime;
use time::OffsetDateTime;

use crate::{
    Actor, AuditEntry, AuditError, AuditEvent, AuditEventId, AuditFilter, Outcome,
    hash::{GENESIS, HashInput},
};

/// An entry stamped with its id and time, waiting for its place in the chain.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub id: AuditEventId,
    pub occurred_at: OffsetDateTime,
    pub entry: AuditEntry,
}

/// One row of `audit_events`, as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub chain_id: String,
    pub seq: u64,
    pub id: String,
    pub occurred_at: OffsetDateTime,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_run_id: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

type Row = (
    String,
    i64,
    String,
    DbTime,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
);

const COLUMNS: &str = "chain_id, seq, id, occurred_at, actor_kind, actor_id, actor_run_id, \
                       action, target, outcome, reason, request_id, prev_hash, hash";

/// Rows per INSERT statement: 14 binds each stays far below both engines' parameter limits.
const INSERT_CHUNK: usize = 500;

impl StoredRow {
    fn from_row(row: Row) -> Result<Self, AuditError> {
        let (chain_id, seq, id, occurred_at, actor_kind, actor_id, actor_run_id) =
            (row.0, row.1, row.2, row.3, row.4, row.5, row.6);
        let (action, target, outcome, reason, request_id, prev_hash, hash) =
            (row.7, row.8, row.9, row.10, row.11, row.12, row.13);
        Ok(Self {
            seq: seq_from_db(seq)?,
            chain_id,
            id,
            occurred_at: occurred_at.get(),
            actor_kind,
            actor_id,
            actor_run_id,
            action,
            target,
            outcome,
            reason,
            request_id,
            prev_hash,
            hash,
        })
    }

    /// The row `pending` becomes at `seq` after `prev_hash`, with its hash computed.
    pub(crate) fn chained(
        chain_id: &str,
        seq: u64,
        pending: &PendingEvent,
        prev_hash: String,
    ) -> Self {
        let entry = &pending.entry;
        let (actor_kind, actor_id, actor_run_id) = entry.actor.columns();
        let (outcome, reason) = entry.outcome.columns();
        let mut row = Self {
            chain_id: chain_id.to_owned(),
            seq,
            id: pending.id.to_string(),
            occurred_at: pending.occurred_at,
            actor_kind: actor_kind.to_owned(),
            actor_id,
            actor_run_id,
            action: entry.action.as_str().to_owned(),
            target: entry.target.clone(),
            outcome: outcome.to_owned(),
            reason: reason.map(str::to_owned),
            request_id: entry.request_id.clone(),
            prev_hash,
            hash: String::new(),
        };
        row.hash = row.hash_input().hash();
        row
    }

    pub(crate) fn hash_input(&self) -> HashInput<'_> {
        HashInput {
            chain_id: &self.chain_id,
            seq: self.seq,
            id: &self.id,
            occurred_at: self.occurred_at,
            actor_kind: &self.actor_kind,
            actor_id: self.actor_id.as_deref(),
            actor_run_id: self.actor_run_id.as_deref(),
            action: &self.action,
            target: &self.target,
            outcome: &self.outcome,
            reason: self.reason.as_deref(),
            request_id: self.request_id.as_deref(),
            prev_hash: &self.prev_hash,
        }
    }

    pub(crate) fn into_event(self) -> Result<AuditEvent, AuditError> {
        Ok(AuditEvent {
            id: self.id.parse()?,
            chain: self.chain_id.parse()?,
            seq: self.seq,
            occurred_at: self.occurred_at,
            actor: Actor::from_columns(&self.actor_kind, self.actor_id, self.actor_run_id)?,
            action: self.action.parse()?,
            target: self.target,
            outcome: Outcome::from_columns(&self.outcome, self.reason)?,
            request_id: self.request_id,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

fn seq_from_db(seq: i64) -> Result<u64, AuditError> {
    u64::try_from(seq).map_err(|_| AuditError::corrupt(format!("sequence number {seq}")))
}

fn seq_to_db(seq: u64) -> Result<i64, AuditError> {
    i64::try_from(seq).map_err(|_| AuditError::corrupt(format!("sequence number {seq}")))
}

/// What the writer and the reader need from the database.
#[async_trait]
pub(crate) trait AuditStorage: Send + Sync + fmt::Debug {
    /// Appends `batch` in one transaction, each entry to the end of its chain, and returns
    /// the stored events in `batch` order. With `retry`, first checks whether an earlier
    /// attempt committed after all (the connection can fail after COMMIT was sent).
    async fn append(
        &self,
        batch: &[PendingEvent],
        retry: bool,
    ) -> Result<Vec<AuditEvent>, AuditError>;

    /// Up to `limit` entries of a chain after `after`, in sequence order, matching `filter`.
    async fn list(
        &self,
        chain_id: &str,
        filter: &AuditFilter,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredRow>, AuditError>;

    /// Up to `limit` raw rows of a chain with `after < seq <= up_to`, in sequence order.
    async fn rows(
        &self,
        chain_id: &str,
        after: u64,
        up_to: u64,
        limit: u32,
    ) -> Result<Vec<StoredRow>, AuditError>;

    /// The chain head: last sequence number and hash.
    async fn head(&self, chain_id: &str) -> Result<Option<(u64, String)>, AuditError>;

    /// Every chain id with a head or an entry.
    async fn chains(&self) -> Result<Vec<String>, AuditError>;
}

macro_rules! impl_audit_storage {
    (
        $(#[$meta:meta])* $name:ident, $db:ty, $pool:ty,
        begin: $begin:literal, lock_head: $lock:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub(crate) struct $name {
            pool: $pool,
        }

        impl $name {
            pub(crate) fn new(pool: $pool) -> Self {
                Self { pool }
            }

            /// The stored events of `batch` when a previous attempt did commit. A batch is one
            /// transaction, so its first entry tells for all of them.
            async fn already_committed(
                &self,
                batch: &[PendingEvent],
            ) -> Result<Option<Vec<AuditEvent>>, AuditError> {
                let Some(first) = batch.first() else {
                    return Ok(Some(Vec::new()));
                };
                let exists: Option<(i64,)> =
                    sqlx::query_as("SELECT seq FROM audit_events WHERE id = $1")
                        .bind(first.id.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                if exists.is_none() {
                    return Ok(None);
                }
                let mut events = Vec::with_capacity(batch.len());
                for pending in batch {
                    let row: Row = sqlx::query_as(&format!(
                        "SELECT {COLUMNS} FROM audit_events WHERE id = $1"
                    ))
                    .bind(pending.id.to_string())
                    .fetch_one(&self.pool)
                    .await?;
                    events.push(StoredRow::from_row(row)?.into_event()?);
                }
                Ok(Some(events))
            }
        }

        #[async_trait]
        impl AuditStorage for $name {
            async fn append(
                &self,
                batch: &[PendingEvent],
                retry: bool,
            ) -> Result<Vec<AuditEvent>, AuditError> {
                if batch.is_empty() {
                    return Ok(Vec::new());
                }
                if retry && let Some(events) = self.already_committed(batch).await? {
                    return Ok(events);
                }
                let keys: Vec<String> = batch.iter().map(|p| p.entry.chain.key()).collect();
                // Heads are locked in chain-id order, so two processes whose batches share
                // chains cannot deadlock; within a chain the recording order is kept.
                let mut order: Vec<usize> = (0..batch.len()).collect();
                order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));

                let mut tx = self.pool.begin_with($begin).await?;
                let mut rows: Vec<(usize, StoredRow)> = Vec::with_capacity(batch.len());
                for group in order.chunk_by(|&a, &b| keys[a] == keys[b]) {
                    let Some(&first) = group.first() else { continue };
                    let chain_id = keys[first].as_str();
                    // Make sure a head row exists, so the lock below always has a row to take.
                    sqlx::query(
                        "INSERT INTO audit_chain_heads (chain_id, last_seq, last_hash) \
                         VALUES ($1, 0, $2) ON CONFLICT (chain_id) DO NOTHING",
                    )
                    .bind(chain_id)
                    .bind(GENESIS)
                    .execute(&mut *tx)
                    .await?;
                    let (last_seq, mut prev_hash): (i64, String) = sqlx::query_as(concat!(
                        "SELECT last_seq, last_hash FROM audit_chain_heads WHERE chain_id = $1",
                        $lock
                    ))
                    .bind(chain_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let mut seq = seq_from_db(last_seq)?;
                    for &index in group {
                        seq += 1;
                        let row = StoredRow::chained(chain_id, seq, &batch[index], prev_hash);
                        prev_hash = row.hash.clone();
                        rows.push((index, row));
                    }
                    sqlx::query(
                        "UPDATE audit_chain_heads SET last_seq = $2, last_hash = $3 \
                         WHERE chain_id = $1",
                    )
                    .bind(chain_id)
                    .bind(seq_to_db(seq)?)
                    .bind(&prev_hash)
                    .execute(&mut *tx)
                    .await?;
                }

                for chunk in rows.chunks(INSERT_CHUNK) {
                    let mut bound = Vec::with_capacity(chunk.len());
                    for (_, row) in chunk {
                        bound.push((seq_to_db(row.seq)?, DbTime::new(row.occurred_at), row));
                    }
                    let mut insert = sqlx::QueryBuilder::<$db>::new(format!(
                        "INSERT INTO audit_events ({COLUMNS}) "
                    ));
                    insert.push_values(bound, |mut values, (seq, time, row)| {
                        values
                            .push_bind(row.chain_id.as_str())
                            .push_bind(seq)
                            .push_bind(row.id.as_str())
                            .push_bind(time)
                            .push_bind(row.actor_kind.as_str())
                            .push_bind(row.actor_id.as_deref())
                            .push_bind(row.actor_run_id.as_deref())
                            .push_bind(row.action.as_str())
                            .push_bind(row.target.as_str())
                            .push_bind(row.outcome.as_str())
                            .push_bind(row.reason.as_deref())
                            .push_bind(row.request_id.as_deref())
                            .push_bind(row.prev_hash.as_str())
                            .push_bind(row.hash.as_str());
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;

                rows.sort_by_key(|(index, _)| *index);
                rows.into_iter().map(|(_, row)| row.into_event()).collect()
            }

            async fn list(
                &self,
                chain_id: &str,
                filter: &AuditFilter,
                after: Option<u64>,
                limit: u32,
            ) -> Result<Vec<StoredRow>, AuditError> {
                let rows: Vec<Row> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM audit_events \
                     WHERE chain_id = $1 AND ($2 IS NULL OR seq > $2) \
                       AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR target = $4) \
                       AND ($5 IS NULL OR occurred_at >= $5) AND ($6 IS NULL OR occurred_at < $6) \
                     ORDER BY seq LIMIT $7"
                ))
                .bind(chain_id)
                .bind(after.map(seq_to_db).transpose()?)
                .bind(filter.action.as_ref().map(|action| action.as_str()))
                .bind(filter.target.as_deref())
                .bind(filter.since.map(DbTime::new))
                .bind(filter.until.map(DbTime::new))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(StoredRow::from_row).collect()
            }

            async fn rows(
                &self,
                chain_id: &str,
                after: u64,
                up_to: u64,
                limit: u32,
            ) -> Result<Vec<StoredRow>, AuditError> {
                let rows: Vec<Row> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM audit_events \
                     WHERE chain_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4"
                ))
                .bind(chain_id)
                .bind(seq_to_db(after)?)
                .bind(seq_to_db(up_to.min(i64::MAX as u64))?)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(StoredRow::from_row).collect()
            }

            async fn head(&self, chain_id: &str) -> Result<Option<(u64, String)>, AuditError> {
                let head: Option<(i64, String)> = sqlx::query_as(
                    "SELECT last_seq, last_hash FROM audit_chain_heads WHERE chain_id = $1",
                )
                .bind(chain_id)
                .fetch_optional(&self.pool)
                .await?;
                head.map(|(seq, hash)| Ok((seq_from_db(seq)?, hash))).transpose()
            }

            async fn chains(&self) -> Result<Vec<String>, AuditError> {
                let chains: Vec<(String,)> = sqlx::query_as(
                    "SELECT chain_id FROM audit_chain_heads \
                     UNION SELECT chain_id FROM audit_events ORDER BY chain_id",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(chains.into_iter().map(|(chain,)| chain).collect())
            }
        }
    };
}

impl_audit_storage!(
    /// The audit tables on SQLite.
    SqliteAuditStorage, sqlx::Sqlite, sqlx::SqlitePool,
    begin: "BEGIN IMMEDIATE", lock_head: ""
);
impl_audit_storage!(
    /// The audit tables on PostgreSQL. READ COMMITTED is explicit: under a stricter server
    /// default, two processes locking the same head would fail with serialization errors
    /// instead of waiting for each other.
    PostgresAuditStorage, sqlx::Postgres, sqlx::PgPool,
    begin: "BEGIN ISOLATION LEVEL READ COMMITTED", lock_head: " FOR UPDATE"
);

/// Picks the implementation for a connected, migrated database.
pub(crate) fn storage_for(
    database: &switchyard_store::Database,
) -> std::sync::Arc<dyn AuditStorage> {
    match database {
        switchyard_store::Database::Sqlite(pool) => {
            std::sync::Arc::new(SqliteAuditStorage::new(pool.clone()))
        }
        switchyard_store::Database::Postgres(pool) => {
            std::sync::Arc::new(PostgresAuditStorage::new(pool.clone()))
        }
    }
}
