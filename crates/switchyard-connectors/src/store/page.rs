//! The write path of records: a page of a sync, and the deletion sweep after a full refresh.
//!
//! Every write to a stream first locks the stream's `sync_streams` row (an upsert, so the
//! first page creates it). Writers of one stream therefore run one after the other, and each
//! numbers its changes from the `last_seq` it read under the lock: `seq` is gap-free and in
//! commit order, which a database sequence is not on PostgreSQL (numbers are taken before
//! commit, so a reader could pass a smaller number that commits later).
//!
//! A page costs a fixed handful of statements whatever its size (up to [`CHUNK`] records per
//! statement; on SQLite the upsert and the changes take the whole page as one JSON parameter,
//! see [`SQLITE_UPSERT`]): lock, read the stored hashes, upsert, append the changes, save the
//! stream; plus one statement per explicit deletion, which pages rarely carry (a full refresh
//! finds its deletions with [`sweep_unseen`], one statement).
//!
//! Every lookup by key is a probe of the primary key that the planner cannot turn into a scan
//! of the whole stream: the stored hashes are read by a correlated subquery per key, updates go
//! through `ON CONFLICT` (whose arbiter is the primary key), deletions match the full key.
//! (`primary_key IN (…)` lets PostgreSQL scan the stream's prefix of the index and filter
//! whenever it estimates the stream small, which it does for a new stream growing to a million
//! records: every page would then read the whole stream.)

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use switchyard_core::{ConnectionId, RunId, TenantId};
use switchyard_store::{Database, DbTime, Transaction, with_tx};

use super::error::{Result, StoreError, is_foreign_key_violation};
use super::hash::{Canonical, canonical_json};
use super::records::{ChangeKind, PageCounts, PageWrite, RecordUpsert};

/// Rows per multi-row statement: far below either engine's limit on bound parameters
/// (SQLite 32766, PostgreSQL 65535) at four parameters a row.
const CHUNK: usize = 500;

/// The stream every statement is scoped to: `$1`, `$2`, `$3` in each of them.
struct Scope {
    tenant: String,
    connection: String,
    stream: String,
}

impl Scope {
    fn new(tenant: &TenantId, connection: &ConnectionId, stream: &str) -> Result<Self> {
        if stream.is_empty() {
            return Err(StoreError::Invalid {
                field: "stream",
                reason: "must not be empty",
            });
        }
        Ok(Self {
            tenant: tenant.to_string(),
            connection: connection.to_string(),
            stream: stream.to_owned(),
        })
    }
}

/// An upserted record in canonical form.
struct Prepared {
    primary_key: String,
    canonical: Canonical,
}

/// A change to append, borrowing its key and data from the page or the deleted rows.
struct NewChange<'a> {
    kind: ChangeKind,
    primary_key: &'a str,
    data: &'a str,
}

fn check_key(primary_key: &str) -> Result<()> {
    if primary_key.is_empty() {
        return Err(StoreError::Invalid {
            field: "primary_key",
            reason: "must not be empty",
        });
    }
    Ok(())
}

/// The page's upserts in canonical form, one per key: the last copy's data, at the position
/// of the first.
fn last_copy_wins(upserts: Vec<RecordUpsert>) -> Result<Vec<Prepared>> {
    let mut prepared: Vec<Prepared> = Vec::with_capacity(upserts.len());
    let mut position: HashMap<String, usize> = HashMap::with_capacity(upserts.len());
    for upsert in upserts {
        check_key(&upsert.primary_key)?;
        let canonical = Canonical::of(&upsert.data)?;
        match position.get(&upsert.primary_key) {
            Some(&index) => prepared[index].canonical = canonical,
            None => {
                position.insert(upsert.primary_key.clone(), prepared.len());
                prepared.push(Prepared {
                    primary_key: upsert.primary_key,
                    canonical,
                });
            }
        }
    }
    Ok(prepared)
}

fn distinct(keys: Vec<String>) -> Result<Vec<String>> {
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    let mut distinct = Vec::with_capacity(keys.len());
    for key in keys {
        check_key(&key)?;
        if seen.insert(key.clone()) {
            distinct.push(key);
        }
    }
    Ok(distinct)
}

/// Writes `pages` in order in one transaction: all of them or none.
pub(super) async fn write_pages(
    database: &Database,
    pages: Vec<PageWrite<'_>>,
) -> Result<Vec<PageCounts>> {
    let mut tx = database.begin().await?;
    let mut counts = Vec::with_capacity(pages.len());
    for page in pages {
        counts.push(write_page_in(&mut tx, page).await?);
    }
    tx.commit().await?;
    Ok(counts)
}

/// Writes `pages` in order in the caller's transaction (a webhook's records with the events
/// they announce).
pub(super) async fn write_pages_in(
    tx: &mut Transaction,
    pages: Vec<PageWrite<'_>>,
) -> Result<Vec<PageCounts>> {
    let mut counts = Vec::with_capacity(pages.len());
    for page in pages {
        counts.push(write_page_in(tx, page).await?);
    }
    Ok(counts)
}

async fn write_page_in(tx: &mut Transaction, page: PageWrite<'_>) -> Result<PageCounts> {
    let scope = Scope::new(page.tenant, page.connection, page.stream)?;
    let upserts = last_copy_wins(page.upserts)?;
    let deletions = distinct(page.deletions)?;
    let checkpoint = page.checkpoint.as_ref().map(canonical_json).transpose()?;
    let run = page.run.map(ToString::to_string);
    let seen_by = page.seen_by.or(page.run).map(ToString::to_string);
    let now = DbTime::now();

    let last_seq = lock_stream(tx, &scope, now).await?;
    let live_hashes = live_hashes(tx, &scope, &upserts).await?;

    let mut counts = PageCounts::default();
    let mut written: Vec<(ChangeKind, &Prepared)> = Vec::new();
    // Rows to send to the upsert: the changed ones, and within a run the unchanged ones too,
    // so that the upsert notes the run that saw them (for the sweep) without rewriting them.
    let mut upserted: Vec<&Prepared> = Vec::new();
    for (record, live_hash) in upserts.iter().zip(&live_hashes) {
        match live_hash {
            Some(hash) if *hash == record.canonical.hash => {
                counts.unchanged += 1;
                if seen_by.is_some() {
                    upserted.push(record);
                }
                continue;
            }
            Some(_) => {
                counts.updated += 1;
                written.push((ChangeKind::Updated, record));
            }
            // New, or back after a deletion.
            None => {
                counts.added += 1;
                written.push((ChangeKind::Added, record));
            }
        }
        upserted.push(record);
    }
    upsert_records(tx, &scope, &upserted, seen_by.as_deref(), now).await?;
    if let Some(seen_by) = seen_by.as_deref() {
        mark_seen(tx, &scope, &distinct(page.seen)?, seen_by).await?;
    }
    let deleted = mark_deleted(tx, &scope, &deletions, now).await?;
    counts.deleted = deleted.len() as u64;

    let changes: Vec<NewChange<'_>> = written
        .iter()
        .map(|(kind, record)| NewChange {
            kind: *kind,
            primary_key: &record.primary_key,
            data: &record.canonical.text,
        })
        .chain(deleted.iter().map(|(primary_key, data)| NewChange {
            kind: ChangeKind::Deleted,
            primary_key,
            data,
        }))
        .collect();
    let last_seq = append_changes(tx, &scope, last_seq, &changes, run.as_deref(), now).await?;
    if !changes.is_empty() || checkpoint.is_some() {
        save_stream(
            tx,
            &scope,
            last_seq,
            checkpoint.as_deref(),
            run.as_deref(),
            now,
        )
        .await?;
    }
    Ok(counts)
}

pub(super) async fn sweep_unseen(
    database: &Database,
    tenant: &TenantId,
    connection: &ConnectionId,
    stream: &str,
    seen_by: &RunId,
    run: &RunId,
) -> Result<u64> {
    let scope = Scope::new(tenant, connection, stream)?;
    let seen_by = seen_by.to_string();
    let run = run.to_string();
    let now = DbTime::now();
    let mut tx = database.begin().await?;
    // A stream without a row has never been written: nothing to sweep.
    let last_seq: Option<i64> = with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "UPDATE sync_streams SET last_seq = last_seq \
             WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3 RETURNING last_seq",
        )
        .bind(&scope.tenant)
        .bind(&scope.connection)
        .bind(&scope.stream)
        .fetch_optional(&mut *conn)
        .await?
    });
    let Some(last_seq) = last_seq else {
        return Ok(0);
    };
    // Run ids are ULIDs, which sort by creation time: a record stamped after the read began
    // (a webhook's write while the read was under way) is newer than it and stays.
    let sweep = if tx.as_sqlite().is_some() {
        SWEEP.replace("{collate}", "")
    } else {
        SWEEP.replace("{collate}", " COLLATE \"C\"")
    };
    let mut deleted: Vec<(String, String)> = with_tx!(tx, |conn| {
        sqlx::query_as(&sweep)
            .bind(&scope.tenant)
            .bind(&scope.connection)
            .bind(&scope.stream)
            .bind(&seen_by)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?
    });
    if deleted.is_empty() {
        return Ok(0);
    }
    // RETURNING has no order; the change stream should not depend on the plan.
    deleted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let changes: Vec<NewChange<'_>> = deleted
        .iter()
        .map(|(primary_key, data)| NewChange {
            kind: ChangeKind::Deleted,
            primary_key,
            data,
        })
        .collect();
    let last_seq = append_changes(&mut tx, &scope, last_seq, &changes, Some(&run), now).await?;
    save_stream(&mut tx, &scope, last_seq, None, Some(&run), now).await?;
    tx.commit().await?;
    Ok(deleted.len() as u64)
}

/// Marks deleted every live record of the stream last seen before read `$4` (or never):
/// older run ids, and none.
const SWEEP: &str = "UPDATE records SET deleted = TRUE, updated_at = $5 \
     WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3 AND deleted = FALSE \
       AND (last_seen_run IS NULL OR last_seen_run{collate} < $4) \
     RETURNING primary_key, data";

/// Creates or locks the stream's row and returns its `last_seq`. The row lock is held until
/// commit, so this must be every stream write's first statement (on SQLite, a first write also
/// takes the database's write lock at once, instead of failing to upgrade a read later).
async fn lock_stream(tx: &mut Transaction, scope: &Scope, now: DbTime) -> Result<i64> {
    let locked = with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO sync_streams \
                (tenant_id, connection_id, stream, last_seq, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $4) \
             ON CONFLICT (tenant_id, connection_id, stream) \
                DO UPDATE SET last_seq = sync_streams.last_seq \
             RETURNING last_seq",
        )
        .bind(&scope.tenant)
        .bind(&scope.connection)
        .bind(&scope.stream)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
    });
    match locked {
        Ok(last_seq) => Ok(last_seq),
        // The foreign key to `connections`: the tenant has no such connection.
        Err(error) if is_foreign_key_violation(&error) => Err(StoreError::ConnectionNotFound),
        Err(error) => Err(error.into()),
    }
}

/// The content hash of each of `records` that is stored and live, in the order of `records`.
async fn live_hashes(
    tx: &mut Transaction,
    scope: &Scope,
    records: &[Prepared],
) -> Result<Vec<Option<String>>> {
    let mut hashes = Vec::with_capacity(records.len());
    for chunk in records.chunks(CHUNK) {
        // `column1` is the name both engines give a VALUES column. The subquery in the select
        // list is run per key with the full primary key (see the module's comment).
        let keys: Vec<String> = (0..chunk.len()).map(|i| format!("(${})", 4 + i)).collect();
        let sql = format!(
            "SELECT keys.column1, \
                (SELECT content_hash FROM records \
                 WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3 \
                   AND primary_key = keys.column1 AND deleted = FALSE) \
             FROM (VALUES {}) AS keys",
            keys.join(", ")
        );
        let rows: Vec<(String, Option<String>)> = with_tx!(tx, |conn| {
            let mut query = sqlx::query_as(&sql)
                .persistent(false)
                .bind(&scope.tenant)
                .bind(&scope.connection)
                .bind(&scope.stream);
            for record in chunk {
                query = query.bind(&record.primary_key);
            }
            query.fetch_all(&mut *conn).await?
        });
        let mut by_key: HashMap<String, Option<String>> = rows.into_iter().collect();
        hashes.extend(
            chunk
                .iter()
                .map(|record| by_key.remove(&record.primary_key).flatten()),
        );
    }
    Ok(hashes)
}

/// Inserts new records, rewrites changed or returning ones and, for a record whose content is
/// unchanged, only notes the run that saw it (a write outside a run keeps the last run).
/// `created_at` stays the first insert's.
async fn upsert_records(
    tx: &mut Transaction,
    scope: &Scope,
    records: &[&Prepared],
    run: Option<&str>,
    now: DbTime,
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    if let Some(conn) = tx.as_sqlite() {
        let rows: Vec<(&str, &str, &str)> = records
            .iter()
            .map(|r| {
                (
                    r.primary_key.as_str(),
                    r.canonical.text.as_str(),
                    r.canonical.hash.as_str(),
                )
            })
            .collect();
        sqlx::query(&SQLITE_UPSERT)
            .bind(&scope.tenant)
            .bind(&scope.connection)
            .bind(&scope.stream)
            .bind(run)
            .bind(now)
            .bind(serde_json::to_string(&rows).map_err(StoreError::InvalidJson)?)
            .execute(&mut **conn)
            .await?;
        return Ok(());
    }
    for chunk in records.chunks(CHUNK) {
        let mut values = String::new();
        for i in 0..chunk.len() {
            let first = 6 + 3 * i;
            let separator = if i == 0 { "" } else { ", " };
            let _ = write!(
                values,
                "{separator}($1, $2, $3, ${first}, ${}, ${}, FALSE, $4, $5, $5)",
                first + 1,
                first + 2
            );
        }
        let sql = format!(
            "INSERT INTO records (tenant_id, connection_id, stream, primary_key, data, \
                content_hash, deleted, last_seen_run, created_at, updated_at) \
             VALUES {values} {}",
            *UPSERT_CONFLICT
        );
        with_tx!(tx, |conn| {
            let mut query = sqlx::query(&sql)
                .persistent(false)
                .bind(&scope.tenant)
                .bind(&scope.connection)
                .bind(&scope.stream)
                .bind(run)
                .bind(now);
            for record in chunk {
                query = query
                    .bind(&record.primary_key)
                    .bind(&record.canonical.text)
                    .bind(&record.canonical.hash);
            }
            query.execute(&mut *conn).await?;
        });
    }
    Ok(())
}

/// In an upsert's `DO UPDATE`: the stored row is deleted or has other content.
const CHANGED: &str = "(records.deleted OR records.content_hash <> excluded.content_hash)";

/// What a record upsert does on an existing key (both engines).
static UPSERT_CONFLICT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "ON CONFLICT (tenant_id, connection_id, stream, primary_key) DO UPDATE SET \
            data = excluded.data, content_hash = excluded.content_hash, deleted = FALSE, \
            last_seen_run = COALESCE(excluded.last_seen_run, records.last_seen_run), \
            updated_at = CASE WHEN {CHANGED} THEN excluded.updated_at \
                ELSE records.updated_at END \
         WHERE {CHANGED} OR (excluded.last_seen_run IS NOT NULL \
            AND (records.last_seen_run IS NULL \
                 OR records.last_seen_run <> excluded.last_seen_run))"
    )
});

/// SQLite gets a page's rows as one JSON array of `[key, data, hash]` (`$6`): SQLite looks
/// up each `$n` of a statement by name, one after the other, so a multi-row statement with
/// three parameters a row costs time quadratic in its rows to prepare and bind (a third of a
/// sync's time at 100 records a page); this text is also the same for every page, so it
/// stays prepared. The `WHERE` keeps the parser from reading `ON CONFLICT` as a join's.
static SQLITE_UPSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO records (tenant_id, connection_id, stream, primary_key, data, \
            content_hash, deleted, last_seen_run, created_at, updated_at) \
         SELECT $1, $2, $3, value ->> 0, value ->> 1, value ->> 2, FALSE, $4, $5, $5 \
         FROM json_each($6) WHERE true ORDER BY key {}",
        *UPSERT_CONFLICT
    )
});

/// A page's changes on SQLite, as `[seq, kind, key, data]` rows (`$6`), for the reason
/// given at [`SQLITE_UPSERT`].
const SQLITE_APPEND_CHANGES: &str = "INSERT INTO record_changes \
        (tenant_id, connection_id, stream, seq, kind, primary_key, data, run_id, at) \
     SELECT $1, $2, $3, value ->> 0, value ->> 1, value ->> 2, value ->> 3, $4, $5 \
     FROM json_each($6) ORDER BY key";

/// Marks the live ones among `keys` deleted; returns their keys and last data, in the order
/// of `keys`. One statement per key, matching the full primary key.
async fn mark_deleted(
    tx: &mut Transaction,
    scope: &Scope,
    keys: &[String],
    now: DbTime,
) -> Result<Vec<(String, String)>> {
    let mut deleted = Vec::new();
    for key in keys {
        let data: Option<String> = with_tx!(tx, |conn| {
            sqlx::query_scalar(
                "UPDATE records SET deleted = TRUE, updated_at = $5 \
                 WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3 \
                   AND primary_key = $4 AND deleted = FALSE \
                 RETURNING data",
            )
            .bind(&scope.tenant)
            .bind(&scope.connection)
            .bind(&scope.stream)
            .bind(key)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
        });
        if let Some(data) = data {
            deleted.push((key.clone(), data));
        }
    }
    Ok(deleted)
}

/// Notes that `run` saw the live ones among `keys`, leaving their content and times alone.
/// One statement per key, matching the full primary key.
async fn mark_seen(tx: &mut Transaction, scope: &Scope, keys: &[String], run: &str) -> Result<()> {
    for key in keys {
        with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE records SET last_seen_run = $5 \
                 WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3 \
                   AND primary_key = $4 AND deleted = FALSE",
            )
            .bind(&scope.tenant)
            .bind(&scope.connection)
            .bind(&scope.stream)
            .bind(key)
            .bind(run)
            .execute(&mut *conn)
            .await?;
        });
    }
    Ok(())
}

/// Appends `changes` numbered from `last_seq + 1`; returns the new `last_seq`.
async fn append_changes(
    tx: &mut Transaction,
    scope: &Scope,
    last_seq: i64,
    changes: &[NewChange<'_>],
    run: Option<&str>,
    now: DbTime,
) -> Result<i64> {
    if changes.is_empty() {
        return Ok(last_seq);
    }
    let mut seq = last_seq;
    if let Some(conn) = tx.as_sqlite() {
        let rows: Vec<(i64, &str, &str, &str)> = changes
            .iter()
            .map(|change| {
                seq += 1;
                (seq, change.kind.as_str(), change.primary_key, change.data)
            })
            .collect();
        sqlx::query(SQLITE_APPEND_CHANGES)
            .bind(&scope.tenant)
            .bind(&scope.connection)
            .bind(&scope.stream)
            .bind(run)
            .bind(now)
            .bind(serde_json::to_string(&rows).map_err(StoreError::InvalidJson)?)
            .execute(&mut **conn)
            .await?;
        return Ok(seq);
    }
    for chunk in changes.chunks(CHUNK) {
        let mut values = String::new();
        for i in 0..chunk.len() {
            let first = 6 + 4 * i;
            let separator = if i == 0 { "" } else { ", " };
            let _ = write!(
                values,
                "{separator}($1, $2, $3, ${first}, ${}, ${}, ${}, $4, $5)",
                first + 1,
                first + 2,
                first + 3
            );
        }
        let sql = format!(
            "INSERT INTO record_changes \
                (tenant_id, connection_id, stream, seq, kind, primary_key, data, run_id, at) \
             VALUES {values}"
        );
        with_tx!(tx, |conn| {
            let mut query = sqlx::query(&sql)
                .persistent(false)
                .bind(&scope.tenant)
                .bind(&scope.connection)
                .bind(&scope.stream)
                .bind(run)
                .bind(now);
            for change in chunk {
                seq += 1;
                query = query
                    .bind(seq)
                    .bind(change.kind.as_str())
                    .bind(change.primary_key)
                    .bind(change.data);
            }
            query.execute(&mut *conn).await?;
        });
    }
    Ok(seq)
}

/// Stores the stream's new `last_seq` and, when given, its checkpoint and the run saving it.
async fn save_stream(
    tx: &mut Transaction,
    scope: &Scope,
    last_seq: i64,
    checkpoint: Option<&str>,
    run: Option<&str>,
    now: DbTime,
) -> Result<()> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE sync_streams SET last_seq = $4, updated_at = $5, \
                checkpoint = CASE WHEN $6 IS NULL THEN checkpoint ELSE $6 END, \
                checkpoint_run = CASE WHEN $6 IS NULL THEN checkpoint_run ELSE $7 END, \
                checkpoint_at = CASE WHEN $6 IS NULL THEN checkpoint_at ELSE $5 END \
             WHERE tenant_id = $1 AND connection_id = $2 AND stream = $3",
        )
        .bind(&scope.tenant)
        .bind(&scope.connection)
        .bind(&scope.stream)
        .bind(last_seq)
        .bind(now)
        .bind(checkpoint)
        .bind(run)
        .execute(&mut *conn)
        .await?;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn upsert(key: &str, data: serde_json::Value) -> RecordUpsert {
        RecordUpsert {
            primary_key: key.to_owned(),
            data,
        }
    }

    #[test]
    fn the_last_copy_of_a_key_wins_at_the_first_position() {
        let prepared = last_copy_wins(vec![
            upsert("a", json!(1)),
            upsert("b", json!(2)),
            upsert("a", json!(3)),
        ])
        .unwrap();
        let keys: Vec<(&str, &str)> = prepared
            .iter()
            .map(|p| (p.primary_key.as_str(), p.canonical.text.as_str()))
            .collect();
        assert_eq!(keys, [("a", "3"), ("b", "2")]);
    }

    #[test]
    fn empty_keys_are_refused() {
        assert!(matches!(
            last_copy_wins(vec![upsert("", json!(1))]),
            Err(StoreError::Invalid {
                field: "primary_key",
                ..
            })
        ));
        assert!(distinct(vec![String::new()]).is_err());
        assert_eq!(
            distinct(vec!["x".into(), "y".into(), "x".into()]).unwrap(),
            ["x", "y"]
        );
    }
}
