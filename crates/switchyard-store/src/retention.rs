//! Retention: deleting rows of a data class once they are older than its retention period, in
//! small batches so a purge never holds long locks or a long write transaction.
//!
//! Each owner of a table family declares its classes ([`RetentionClass`]: table, age column,
//! default period); the composition root lists them all, applies configured overrides and runs
//! the purge periodically and from `switchyard purge`. Rows are chosen by age alone; a class
//! whose rows must survive a condition (for example an unfinished run) says so in `condition`.

use std::time::Duration;

use time::OffsetDateTime;

use crate::{Database, DbTime, StoreError};

/// Rows deleted per statement: small enough that each delete is a short transaction.
pub const DEFAULT_BATCH_SIZE: u32 = 500;

/// One kind of data with its own retention period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionClass {
    /// The name used in configuration (`retention.<name>`) and reports.
    pub name: &'static str,
    pub table: &'static str,
    /// The timestamp column compared with the cut-off.
    pub age_column: &'static str,
    /// An extra SQL condition rows must meet to be purged (static text, never user input).
    pub condition: Option<&'static str>,
    pub default_period: Duration,
}

/// What one purge did (or, dry, would do) for one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    pub class: &'static str,
    pub cutoff: OffsetDateTime,
    pub rows: u64,
}

impl RetentionClass {
    fn filter(&self) -> String {
        match self.condition {
            Some(condition) => format!("{} < $1 AND ({condition})", self.age_column),
            None => format!("{} < $1", self.age_column),
        }
    }
}

/// The cut-off for `period` before now.
pub fn cutoff_for(period: Duration) -> OffsetDateTime {
    let period = time::Duration::try_from(period).unwrap_or(time::Duration::MAX);
    OffsetDateTime::now_utc()
        .checked_sub(period)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Counts the rows of `class` older than `cutoff` (`switchyard purge --dry-run`).
///
/// # Errors
/// When the database fails.
pub async fn count_expired(
    database: &Database,
    class: &RetentionClass,
    cutoff: OffsetDateTime,
) -> Result<PurgeReport, StoreError> {
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE {}",
        class.table,
        class.filter()
    );
    let rows: i64 = match database {
        Database::Sqlite(pool) => {
            sqlx::query_scalar(&sql)
                .bind(DbTime::new(cutoff))
                .fetch_one(pool)
                .await?
        }
        Database::Postgres(pool) => {
            sqlx::query_scalar(&sql)
                .bind(DbTime::new(cutoff))
                .fetch_one(pool)
                .await?
        }
    };
    Ok(PurgeReport {
        class: class.name,
        cutoff,
        rows: u64::try_from(rows).unwrap_or(0),
    })
}

/// Deletes the rows of `class` older than `cutoff`, `batch_size` rows per statement, until
/// none is left.
///
/// # Errors
/// When the database fails; rows deleted by earlier batches stay deleted.
pub async fn purge_expired(
    database: &Database,
    class: &RetentionClass,
    cutoff: OffsetDateTime,
    batch_size: u32,
) -> Result<PurgeReport, StoreError> {
    // Row identity differs by engine: SQLite's rowid, PostgreSQL's ctid. Both let one
    // statement delete a bounded batch without a primary key of known shape.
    let (sqlite, postgres) = (
        format!(
            "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {filter} LIMIT $2)",
            table = class.table,
            filter = class.filter()
        ),
        format!(
            "DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE {filter} LIMIT $2)",
            table = class.table,
            filter = class.filter()
        ),
    );
    let mut total = 0u64;
    loop {
        let deleted = match database {
            Database::Sqlite(pool) => sqlx::query(&sqlite)
                .bind(DbTime::new(cutoff))
                .bind(i64::from(batch_size))
                .execute(pool)
                .await?
                .rows_affected(),
            Database::Postgres(pool) => sqlx::query(&postgres)
                .bind(DbTime::new(cutoff))
                .bind(i64::from(batch_size))
                .execute(pool)
                .await?
                .rows_affected(),
        };
        total += deleted;
        if deleted < u64::from(batch_size) {
            break;
        }
        // Let other writers in between batches.
        tokio::task::yield_now().await;
    }
    Ok(PurgeReport {
        class: class.name,
        cutoff,
        rows: total,
    })
}

/// The store's own classes: deleted tenants (their API keys go with them by foreign key;
/// their idempotency records expire with their own class) and idempotency records.
pub fn store_classes(deleted_tenants: Duration, idempotency_ttl: Duration) -> Vec<RetentionClass> {
    vec![
        RetentionClass {
            name: "deleted_tenants",
            table: "tenants",
            age_column: "deleted_at",
            condition: None,
            default_period: deleted_tenants,
        },
        RetentionClass {
            name: "idempotency_keys",
            table: "idempotency_keys",
            age_column: "created_at",
            condition: None,
            default_period: idempotency_ttl,
        },
    ]
}
