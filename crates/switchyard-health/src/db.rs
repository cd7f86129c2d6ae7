//! Every statement on the health tables. Written once in the dialect both engines accept
//! (`$n`, `ON CONFLICT`, `RETURNING`); the macros expand one body per backend. Every statement
//! is scoped by `tenant_id`.

use std::sync::LazyLock;

use sqlx::Row;
use switchyard_core::TenantId;
use switchyard_http::OutcomeClass;
use switchyard_store::{Database, DbTime, Transaction};
use time::OffsetDateTime;

use crate::accumulator::{ConnectionKey, Pending, newest};
use crate::counts::{CLASSES, OutcomeCounts};
use crate::error::{HealthError, Result};
use crate::histogram::BUCKETS;
use crate::model::RecentError;
use crate::status::HealthStatus;

const BUCKETS_TABLE: &str = "connection_health_buckets";
const CONNECTIONS_TABLE: &str = "connection_health";

use switchyard_store::{with_conn, with_tx};

/// The count columns of a bucket row: the classes in [`OutcomeClass::ALL`] order, then the
/// latency buckets.
static COUNT_COLUMNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    OutcomeClass::ALL
        .iter()
        .map(|class| class.as_str().to_owned())
        .chain((0..BUCKETS).map(|i| format!("latency_{i:02}")))
        .collect()
});

/// Adds counts to a minute's row; a row another process wrote gets the sum.
static UPSERT_BUCKET: LazyLock<String> = LazyLock::new(|| {
    let columns = COUNT_COLUMNS.join(", ");
    let values: Vec<String> = (0..COUNT_COLUMNS.len())
        .map(|i| format!("${}", i + 4))
        .collect();
    let sums: Vec<String> = COUNT_COLUMNS
        .iter()
        .map(|c| format!("{c} = {BUCKETS_TABLE}.{c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {BUCKETS_TABLE} (tenant_id, connection_id, minute, {columns}) \
         VALUES ($1, $2, $3, {}) \
         ON CONFLICT (tenant_id, connection_id, minute) DO UPDATE SET {}",
        values.join(", "),
        sums.join(", ")
    )
});

static SELECT_WINDOW: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM {BUCKETS_TABLE} \
         WHERE tenant_id = $1 AND connection_id = $2 AND minute >= $3",
        COUNT_COLUMNS.join(", ")
    )
});

/// The later of the stored and the new time; a NULL on either side keeps the other.
fn later_sql(column: &str) -> String {
    format!(
        "{column} = CASE WHEN excluded.{column} IS NULL THEN {CONNECTIONS_TABLE}.{column} \
           WHEN {CONNECTIONS_TABLE}.{column} IS NULL \
             OR excluded.{column} > {CONNECTIONS_TABLE}.{column} THEN excluded.{column} \
           ELSE {CONNECTIONS_TABLE}.{column} END"
    )
}

static UPSERT_CONNECTION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO {CONNECTIONS_TABLE} (tenant_id, connection_id, provider, status, \
            last_success_at, last_failure_at, last_auth_failure_at, recent_errors, created_at, \
            updated_at) \
         VALUES ($1, $2, $3, 'healthy', $4, $5, $6, '[]', $7, $7) \
         ON CONFLICT (tenant_id, connection_id) DO UPDATE SET provider = excluded.provider, \
            {}, {}, {}, updated_at = excluded.updated_at \
         RETURNING recent_errors",
        later_sql("last_success_at"),
        later_sql("last_failure_at"),
        later_sql("last_auth_failure_at"),
    )
});

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Adds `pending` to the stored buckets and the connection's row, in one transaction.
///
/// Lock order is the same in every process (buckets by minute, then the row), so concurrent
/// flushes of one connection queue behind each other instead of deadlocking.
pub(crate) async fn write_pending(
    database: &Database,
    key: &ConnectionKey,
    pending: &Pending,
    now: OffsetDateTime,
) -> Result<()> {
    let tenant = key.tenant.to_string();
    let mut tx = database.begin().await?;
    for (minute, counts) in &pending.minutes {
        if counts.is_empty() {
            continue;
        }
        with_tx!(tx, |conn| {
            let mut query = sqlx::query(UPSERT_BUCKET.as_str())
                .bind(&tenant)
                .bind(&key.connection)
                .bind(DbTime::new(*minute));
            for count in counts.by_class().iter().chain(counts.latency()) {
                query = query.bind(to_i64(*count));
            }
            query.execute(&mut *conn).await?;
        });
    }
    let stored_errors: String = with_tx!(tx, |conn| {
        sqlx::query_scalar(UPSERT_CONNECTION.as_str())
            .bind(&tenant)
            .bind(&key.connection)
            .bind(&pending.provider)
            .bind(pending.last_success_at.map(DbTime::new))
            .bind(pending.last_failure_at.map(DbTime::new))
            .bind(pending.last_auth_failure_at.map(DbTime::new))
            .bind(DbTime::new(now))
            .fetch_one(&mut *conn)
            .await?
    });
    if !pending.recent_errors.is_empty() {
        // The row is locked by the upsert above until commit, so no other process's errors
        // can be lost between this read and the write below.
        let mut errors = parse_errors(&stored_errors)?;
        errors.extend(pending.recent_errors.iter().cloned());
        let merged = serde_json::to_string(&newest(errors))
            .map_err(|e| HealthError::corrupt(CONNECTIONS_TABLE, e))?;
        with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE connection_health SET recent_errors = $3 \
                 WHERE tenant_id = $1 AND connection_id = $2",
            )
            .bind(&tenant)
            .bind(&key.connection)
            .bind(&merged)
            .execute(&mut *conn)
            .await?;
        });
    }
    tx.commit().await?;
    Ok(())
}

/// The sum of a connection's buckets from `since` on.
pub(crate) async fn window_counts(
    database: &Database,
    tenant: TenantId,
    connection: &str,
    since: OffsetDateTime,
) -> Result<OutcomeCounts> {
    let mut total = OutcomeCounts::default();
    with_conn!(database, |conn| {
        let rows = sqlx::query(SELECT_WINDOW.as_str())
            .bind(tenant.to_string())
            .bind(connection)
            .bind(DbTime::new(since))
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let mut by_class = [0; CLASSES];
            let mut latency = [0; BUCKETS];
            for (i, slot) in by_class.iter_mut().chain(latency.iter_mut()).enumerate() {
                *slot = to_u64(row.try_get::<i64, _>(i)?);
            }
            total.merge(&OutcomeCounts::from_columns(by_class, latency));
        }
    });
    Ok(total)
}

/// A connection's row as stored.
#[derive(Debug, Clone)]
pub(crate) struct StoredConnection {
    pub provider: String,
    pub status: HealthStatus,
    pub status_changed_at: Option<OffsetDateTime>,
    pub last_success_at: Option<OffsetDateTime>,
    pub last_failure_at: Option<OffsetDateTime>,
    pub last_auth_failure_at: Option<OffsetDateTime>,
    /// Oldest first.
    pub recent_errors: Vec<RecentError>,
}

type ConnectionRow = (
    String,
    String,
    Option<DbTime>,
    Option<DbTime>,
    Option<DbTime>,
    Option<DbTime>,
    String,
);

/// The row of `connection` in `tenant`, if health was ever recorded for it.
pub(crate) async fn connection(
    database: &Database,
    tenant: TenantId,
    connection: &str,
) -> Result<Option<StoredConnection>> {
    let row: Option<ConnectionRow> = with_conn!(database, |conn| {
        sqlx::query_as(
            "SELECT provider, status, status_changed_at, last_success_at, last_failure_at, \
                last_auth_failure_at, recent_errors FROM connection_health \
             WHERE tenant_id = $1 AND connection_id = $2",
        )
        .bind(tenant.to_string())
        .bind(connection)
        .fetch_optional(&mut *conn)
        .await?
    });
    let Some((provider, status, changed, success, failure, auth, errors)) = row else {
        return Ok(None);
    };
    Ok(Some(StoredConnection {
        provider,
        status: status
            .parse()
            .map_err(|e| HealthError::corrupt(CONNECTIONS_TABLE, e))?,
        status_changed_at: changed.map(DbTime::get),
        last_success_at: success.map(DbTime::get),
        last_failure_at: failure.map(DbTime::get),
        last_auth_failure_at: auth.map(DbTime::get),
        recent_errors: parse_errors(&errors)?,
    }))
}

/// Moves the stored status from `from` to `to`, only if it still is `from`: of several
/// processes seeing the same change, exactly one gets `true`.
pub(crate) async fn compare_and_set_status(
    tx: &mut Transaction,
    tenant: TenantId,
    connection: &str,
    from: HealthStatus,
    to: HealthStatus,
    now: OffsetDateTime,
) -> Result<bool> {
    let changed = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE connection_health SET status = $4, status_changed_at = $5 \
             WHERE tenant_id = $1 AND connection_id = $2 AND status = $3",
        )
        .bind(tenant.to_string())
        .bind(connection)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(DbTime::new(now))
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(changed == 1)
}

fn parse_errors(text: &str) -> Result<Vec<RecentError>> {
    serde_json::from_str(text).map_err(|e| HealthError::corrupt(CONNECTIONS_TABLE, e))
}
