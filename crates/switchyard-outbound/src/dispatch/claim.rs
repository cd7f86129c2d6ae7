//! Claiming due deliveries with a lease, fairly across endpoints.
//!
//! The statement is index-driven (`webhook_deliveries_claim`: `(endpoint_id, next_attempt_at,
//! id) WHERE status = 'pending'`), so its cost grows with the number of endpoints that have
//! pending work, not with the backlog:
//!
//! 1. `groups`: the endpoints with pending deliveries, by a loose index scan.
//! 2. `eligible`: of those, the enabled ones this process has room for (the caller excludes
//!    endpoints at their in-flight cap, throttled ones and those whose breaker is open).
//! 3. `heads`: each endpoint's first `quota` due deliveries. A delivery with an ordering key is
//!    due only when no older unfinished delivery has the same endpoint and key, so a key whose
//!    head keeps failing holds back only itself.
//! 4. Every endpoint's first delivery before anyone's second: one endpoint's backlog delays
//!    another's delivery by at most one claim slot.
//!
//! PostgreSQL adds `FOR UPDATE SKIP LOCKED`, so dispatchers in several processes claim disjoint
//! rows without waiting on each other; SQLite has one writer and one process.

use switchyard_store::{Database, DbTime};
use switchyard_vault::AuditedVault;
use time::OffsetDateTime;
use tracing::warn;

use crate::db::{db_time, parse_id, with_conn};
use crate::error::Result;
use crate::publish::open_body;

macro_rules! claim_ranking {
    (excluded: $excluded:literal, heads: $open:literal ... $close:literal, columns: $columns:literal $(,)?) => {
        concat!(
            "WITH RECURSIVE groups(endpoint_id) AS ( \
                SELECT (SELECT d.endpoint_id FROM webhook_deliveries d \
                    WHERE d.status = 'pending' ORDER BY d.endpoint_id LIMIT 1) \
                UNION ALL \
                SELECT (SELECT d.endpoint_id FROM webhook_deliveries d \
                    WHERE d.status = 'pending' AND d.endpoint_id > g.endpoint_id \
                    ORDER BY d.endpoint_id LIMIT 1) \
                FROM groups g WHERE g.endpoint_id IS NOT NULL \
             ), eligible AS ( \
                SELECT g.endpoint_id FROM groups g \
                JOIN webhook_endpoints e ON e.id = g.endpoint_id \
                WHERE g.endpoint_id IS NOT NULL AND e.enabled AND NOT (",
            $excluded,
            ") \
             ), heads AS ( \
                SELECT h.id, h.endpoint_id, h.next_attempt_at FROM eligible g ",
            $open,
            "SELECT ",
            $columns,
            " FROM webhook_deliveries d \
                    WHERE d.status = 'pending' AND d.endpoint_id = g.endpoint_id \
                      AND d.next_attempt_at <= $1 \
                      AND (d.ordering_key IS NULL OR NOT EXISTS ( \
                        SELECT 1 FROM webhook_deliveries o \
                        WHERE o.endpoint_id = d.endpoint_id AND o.ordering_key = d.ordering_key \
                          AND o.status IN ('pending', 'sending') AND o.id < d.id)) \
                    ORDER BY d.next_attempt_at, d.id LIMIT $3",
            $close,
            " \
             ), ranked AS ( \
                SELECT id, next_attempt_at, row_number() OVER ( \
                    PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS endpoint_rank \
                FROM heads \
             ) "
        )
    };
}

const RETURNING: &str = "webhook_deliveries.id, webhook_deliveries.tenant_id, \
    webhook_deliveries.endpoint_id, webhook_deliveries.event_id, webhook_deliveries.attempts, \
    webhook_deliveries.retry_base, webhook_deliveries.ordering_key";

/// SQLite has no LATERAL: `h.id IN (correlated subquery)` runs per endpoint and is looked up
/// by primary key, the same plan.
const SQLITE_CLAIM: &str = concat!(
    claim_ranking!(
        excluded: "g.endpoint_id IN (SELECT value FROM json_each($2))",
        heads: "JOIN webhook_deliveries h ON h.id IN (" ... ")",
        columns: "d.id",
    ),
    "UPDATE webhook_deliveries SET status = 'sending', lease_owner = $5, \
        lease_expires_at = $6, updated_at = $1 \
     WHERE id IN (SELECT id FROM ranked ORDER BY endpoint_rank, next_attempt_at, id LIMIT $4) \
     RETURNING "
);

const POSTGRES_CLAIM: &str = concat!(
    claim_ranking!(
        excluded: "g.endpoint_id = ANY($2)",
        heads: "CROSS JOIN LATERAL (" ... ") h",
        columns: "d.id, d.endpoint_id, d.next_attempt_at",
    ),
    ", locked AS ( \
        SELECT d.id AS locked_id FROM webhook_deliveries d JOIN ranked c ON c.id = d.id \
        WHERE d.status = 'pending' \
        ORDER BY c.endpoint_rank, c.next_attempt_at, c.id \
        LIMIT $4 FOR UPDATE OF d SKIP LOCKED \
     ) \
     UPDATE webhook_deliveries SET status = 'sending', lease_owner = $5, \
        lease_expires_at = $6, updated_at = $1 \
     FROM locked WHERE webhook_deliveries.id = locked.locked_id RETURNING "
);

/// A claimed delivery, leased to this process.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    pub id: String,
    pub tenant_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub attempts: i32,
    pub retry_base: i32,
    pub ordering_key: Option<String>,
}

/// The parts of an event a send needs, its body in plaintext.
#[derive(Debug)]
pub(crate) struct EventBody {
    pub id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub body: String,
}

#[derive(sqlx::FromRow)]
struct SealedEvent {
    id: String,
    tenant_id: String,
    webhook_id: String,
    event_type: String,
    body: String,
}

impl SealedEvent {
    async fn open(&self, vault: &AuditedVault) -> Result<String> {
        let tenant = parse_id("webhook_events", &self.tenant_id)?;
        open_body(vault, tenant, &self.id, &self.body).await
    }
}

pub(crate) struct ClaimParams<'a> {
    pub now: OffsetDateTime,
    pub excluded: &'a [String],
    pub per_endpoint: i64,
    pub limit: i64,
    pub owner: &'a str,
    pub lease_expires_at: OffsetDateTime,
}

pub(crate) async fn claim(
    database: &Database,
    params: &ClaimParams<'_>,
) -> Result<Vec<ClaimedRow>> {
    let (now, expires) = (db_time(params.now), db_time(params.lease_expires_at));
    let rows = match database {
        Database::Sqlite(pool) => {
            sqlx::query_as(&format!("{SQLITE_CLAIM}{RETURNING}"))
                .bind(now)
                .bind(serde_json::Value::from(params.excluded.to_vec()).to_string())
                .bind(params.per_endpoint)
                .bind(params.limit)
                .bind(params.owner)
                .bind(expires)
                .fetch_all(pool)
                .await?
        }
        Database::Postgres(pool) => {
            sqlx::query_as(&format!("{POSTGRES_CLAIM}{RETURNING}"))
                .bind(now)
                .bind(params.excluded.to_vec())
                .bind(params.per_endpoint)
                .bind(params.limit)
                .bind(params.owner)
                .bind(expires)
                .fetch_all(pool)
                .await?
        }
    };
    Ok(rows)
}

/// The claimed deliveries' events, each body decrypted once here for all its deliveries.
/// An event whose body does not decrypt is left out with a warning (the caller postpones its
/// deliveries), so one bad row or a vault hiccup does not stop the others.
pub(crate) async fn event_bodies(
    database: &Database,
    vault: &AuditedVault,
    ids: &[String],
) -> Result<Vec<EventBody>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<SealedEvent> = with_conn!(database, |conn| {
        let sql = format!(
            "SELECT id, tenant_id, webhook_id, event_type, body FROM webhook_events WHERE {}",
            crate::db::member(&*conn, "id", 1)
        );
        let ids = crate::db::list(&*conn, ids);
        sqlx::query_as(&sql).bind(ids).fetch_all(&mut *conn).await?
    });
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        match row.open(vault).await {
            Ok(body) => events.push(EventBody {
                id: row.id,
                webhook_id: row.webhook_id,
                event_type: row.event_type,
                body,
            }),
            Err(e) => warn!(error = %e, event = %row.id, "event body unreadable; postponing"),
        }
    }
    Ok(events)
}

/// Puts deliveries whose lease ran out (their process died) back in the queue. The attempt
/// was never recorded, so it is not counted.
pub(crate) async fn reap_expired(database: &Database, now: OffsetDateTime) -> Result<u64> {
    let now: DbTime = db_time(now);
    Ok(with_conn!(database, |conn| {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', lease_owner = NULL, \
                lease_expires_at = NULL, updated_at = $1 \
             WHERE status = 'sending' AND lease_expires_at < $1",
        )
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    }))
}

/// Gives back every delivery `owner` still holds (shutdown), uncounted and due at once.
pub(crate) async fn release_owner(database: &Database, owner: &str) -> Result<u64> {
    let now = crate::publish::now_db();
    Ok(with_conn!(database, |conn| {
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', lease_owner = NULL, \
                lease_expires_at = NULL, updated_at = $2 \
             WHERE status = 'sending' AND lease_owner = $1",
        )
        .bind(owner)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    }))
}

/// The `limit` endpoints with the most unfinished deliveries, and the total, for metrics.
pub(crate) async fn backlog(database: &Database, limit: i64) -> Result<(Vec<(String, i64)>, i64)> {
    let top: Vec<(String, i64)> = with_conn!(database, |conn| {
        sqlx::query_as(
            "SELECT endpoint_id, COUNT(*) AS n FROM webhook_deliveries \
             WHERE status IN ('pending', 'sending') GROUP BY endpoint_id \
             ORDER BY n DESC, endpoint_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
    });
    let total: i64 = with_conn!(database, |conn| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(&mut *conn)
        .await?
    });
    Ok((top, total))
}

pub(crate) async fn disabled_count(database: &Database) -> Result<i64> {
    Ok(with_conn!(database, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE NOT enabled")
            .fetch_one(&mut *conn)
            .await?
    }))
}
