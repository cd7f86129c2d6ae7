//! The queue's statements, written once and instantiated per backend by [`queue_statements!`].
//!
//! Two things differ between engines and are macro arguments: how a time is bound (fixed-width
//! RFC 3339 text on SQLite so text comparison is time order, `timestamptz` on PostgreSQL) and
//! how a list is bound (a JSON array read with `json_each` on SQLite, a `text[]` on
//! PostgreSQL). The claim statement differs in substance and is written per backend below.

use time::{OffsetDateTime, UtcOffset, format_description::BorrowedFormatItem};

/// One row of `jobs`, as stored.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct JobRow {
    pub id: String,
    pub kind: String,
    pub tenant_id: Option<String>,
    pub payload: sqlx::types::Json<serde_json::Value>,
    pub priority: i32,
    pub status: String,
    pub run_at: OffsetDateTime,
    pub attempts: i32,
    pub max_attempts: Option<i32>,
    pub unique_key: Option<String>,
    pub last_error: Option<String>,
    pub last_error_class: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
}

pub(super) const COLUMNS: &str = "id, kind, tenant_id, payload, priority, status, run_at, \
    attempts, max_attempts, unique_key, last_error, last_error_class, lease_owner, \
    lease_expires_at, created_at, updated_at, started_at, finished_at";

/// Fixed-width UTC RFC 3339 with microseconds, so SQLite text comparison is time order.
const SQLITE_TIME: &[BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

pub(super) fn sqlite_time(time: OffsetDateTime) -> String {
    // Formatting a UTC time with this description cannot fail; fall back to RFC 3339 anyway
    // rather than panic.
    let time = time.to_offset(UtcOffset::UTC);
    time.format(SQLITE_TIME)
        .unwrap_or_else(|_| time.to_string())
}

pub(super) fn postgres_time(time: OffsetDateTime) -> OffsetDateTime {
    time
}

pub(super) fn sqlite_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

pub(super) fn postgres_list(items: &[String]) -> Vec<String> {
    items.to_vec()
}

/// Everything a claim needs, bound the same way on both backends.
#[derive(Debug)]
pub(super) struct ClaimParams<'a> {
    pub now: OffsetDateTime,
    pub kinds: &'a [String],
    pub exclude_tenants: &'a [String],
    pub per_tenant: i64,
    pub limit: i64,
    pub owner: &'a str,
    pub lease_expires_at: OffsetDateTime,
}

/// Candidates considered per claimed job: with several processes claiming at once, some
/// candidates are locked by another claimer and skipped, so look a little further.
pub(super) const CANDIDATE_FACTOR: i64 = 4;

/// Fairness: rank runnable jobs within their tenant (platform jobs form one group), then take
/// every tenant's first job before anyone's second. A tenant with a backlog of thousands thus
/// delays another tenant's job by at most one claim per tenant ahead of it. One statement, so
/// it is atomic without an explicit write transaction. (`$8`, the candidate count, only
/// matters on PostgreSQL; it is used here so both statements take the same binds.)
const SQLITE_CLAIM: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1, \
        lease_owner = $6, lease_expires_at = $7, started_at = $1, updated_at = $1 \
     WHERE id IN ( \
        SELECT id FROM ( \
            SELECT id, priority, run_at, row_number() OVER ( \
                PARTITION BY tenant_id ORDER BY priority DESC, run_at, id) AS tenant_rank \
            FROM jobs \
            WHERE status IN ('queued', 'failed') AND run_at <= $1 \
              AND kind IN (SELECT value FROM json_each($2)) \
              AND COALESCE(tenant_id, '') NOT IN (SELECT value FROM json_each($3)) \
        ) WHERE tenant_rank <= $4 \
        ORDER BY tenant_rank, priority DESC, run_at, id LIMIT MIN($5, $8) \
     ) RETURNING ";

/// As on SQLite, plus `FOR UPDATE SKIP LOCKED` so concurrent claimers in other processes take
/// disjoint jobs without waiting on each other; the lock re-checks the status, so a job
/// claimed and committed by another process meanwhile is not taken twice.
const POSTGRES_CLAIM: &str = "WITH ranked AS ( \
        SELECT id, priority, run_at, row_number() OVER ( \
            PARTITION BY tenant_id ORDER BY priority DESC, run_at, id) AS tenant_rank \
        FROM jobs \
        WHERE status IN ('queued', 'failed') AND run_at <= $1 \
          AND kind = ANY($2) AND NOT (COALESCE(tenant_id, '') = ANY($3)) \
     ), candidates AS ( \
        SELECT id, tenant_rank, priority, run_at FROM ranked WHERE tenant_rank <= $4 \
        ORDER BY tenant_rank, priority DESC, run_at, id LIMIT $8 \
     ), locked AS ( \
        SELECT j.id AS locked_id FROM jobs j JOIN candidates c ON c.id = j.id \
        WHERE j.status IN ('queued', 'failed') \
        ORDER BY c.tenant_rank, c.priority DESC, c.run_at, c.id \
        LIMIT $5 FOR UPDATE OF j SKIP LOCKED \
     ) \
     UPDATE jobs SET status = 'running', attempts = attempts + 1, \
        lease_owner = $6, lease_expires_at = $7, started_at = $1, updated_at = $1 \
     FROM locked WHERE jobs.id = locked.locked_id RETURNING ";

/// Completes a batch in one statement. The `id:attempt` keys make each completion apply only
/// to the attempt that ran; the owner filter uses the partial index first, so the expression
/// is evaluated only over this worker's running jobs.
const SQLITE_COMPLETE_MANY: &str = "UPDATE jobs SET status = 'succeeded', lease_owner = NULL, \
        lease_expires_at = NULL, finished_at = $3, updated_at = $3 \
     WHERE lease_owner = $1 AND status = 'running' \
       AND (id || ':' || attempts) IN (SELECT value FROM json_each($2)) RETURNING id";

const POSTGRES_COMPLETE_MANY: &str = "UPDATE jobs SET status = 'succeeded', lease_owner = NULL, \
        lease_expires_at = NULL, finished_at = $3, updated_at = $3 \
     WHERE lease_owner = $1 AND status = 'running' \
       AND (id || ':' || attempts) = ANY($2) RETURNING id";

macro_rules! queue_statements {
    ($module:ident, $conn:ty, $time:path, $list:path, $claim:expr, $complete_many:expr) => {
        pub(super) mod $module {
            use sqlx::types::Json;
            use time::OffsetDateTime;

            use super::{COLUMNS, ClaimParams, JobRow};

            pub(in crate::queue) async fn insert(
                conn: &mut $conn,
                id: &str,
                job: &crate::queue::NewJob,
                now: OffsetDateTime,
            ) -> Result<bool, sqlx::Error> {
                let inserted = sqlx::query(
                    "INSERT INTO jobs (id, kind, tenant_id, payload, priority, status, run_at, \
                        attempts, max_attempts, unique_key, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'queued', $6, 0, $7, $8, $9, $9) \
                     ON CONFLICT (unique_key) DO NOTHING",
                )
                .bind(id)
                .bind(&job.kind)
                .bind(job.tenant.map(|t| t.to_string()))
                .bind(Json(&job.payload))
                .bind(job.priority)
                .bind($time(job.run_at.unwrap_or(now)))
                .bind(job.max_attempts.map(|m| i32::try_from(m).unwrap_or(i32::MAX)))
                .bind(job.unique_key.as_deref())
                .bind($time(now))
                .execute(&mut *conn)
                .await?
                .rows_affected();
                Ok(inserted == 1)
            }

            pub(in crate::queue) async fn find_unique(
                conn: &mut $conn,
                key: &str,
            ) -> Result<Option<String>, sqlx::Error> {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM jobs WHERE unique_key = $1")
                        .bind(key)
                        .fetch_optional(&mut *conn)
                        .await?;
                Ok(row.map(|(id,)| id))
            }

            pub(in crate::queue) async fn get(
                conn: &mut $conn,
                id: &str,
            ) -> Result<Option<JobRow>, sqlx::Error> {
                sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
            }

            pub(in crate::queue) async fn list(
                conn: &mut $conn,
                status: &str,
                kind: Option<&str>,
                after: Option<&str>,
                limit: i64,
            ) -> Result<Vec<JobRow>, sqlx::Error> {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM jobs WHERE status = $1 \
                     AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR id > $3) \
                     ORDER BY id LIMIT $4"
                ))
                .bind(status)
                .bind(kind)
                .bind(after)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await
            }

            pub(in crate::queue) async fn claim(
                conn: &mut $conn,
                params: &ClaimParams<'_>,
            ) -> Result<Vec<JobRow>, sqlx::Error> {
                sqlx::query_as(&format!("{}{COLUMNS}", $claim))
                    .bind($time(params.now))
                    .bind($list(params.kinds))
                    .bind($list(params.exclude_tenants))
                    .bind(params.per_tenant)
                    .bind(params.limit)
                    .bind(params.owner)
                    .bind($time(params.lease_expires_at))
                    .bind(params.limit.saturating_mul(super::CANDIDATE_FACTOR))
                    .fetch_all(&mut *conn)
                    .await
            }

            /// Marks the attempt succeeded, if this owner still holds it.
            pub(in crate::queue) async fn complete(
                conn: &mut $conn,
                id: &str,
                owner: &str,
                attempt: i32,
                now: OffsetDateTime,
            ) -> Result<bool, sqlx::Error> {
                let done = sqlx::query(
                    "UPDATE jobs SET status = 'succeeded', lease_owner = NULL, \
                        lease_expires_at = NULL, finished_at = $4, updated_at = $4 \
                     WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'",
                )
                .bind(id)
                .bind(owner)
                .bind(attempt)
                .bind($time(now))
                .execute(&mut *conn)
                .await?
                .rows_affected();
                Ok(done == 1)
            }

            /// Marks several attempts (`id:attempt` keys) succeeded; returns the ids recorded.
            pub(in crate::queue) async fn complete_many(
                conn: &mut $conn,
                owner: &str,
                keys: &[String],
                now: OffsetDateTime,
            ) -> Result<Vec<(String,)>, sqlx::Error> {
                sqlx::query_as($complete_many)
                    .bind(owner)
                    .bind($list(keys))
                    .bind($time(now))
                    .fetch_all(&mut *conn)
                    .await
            }

            /// Records a failed attempt: `failed` with a retry time, or `dead` without one.
            #[allow(clippy::too_many_arguments)]
            pub(in crate::queue) async fn fail(
                conn: &mut $conn,
                id: &str,
                owner: &str,
                attempt: i32,
                retry_at: Option<OffsetDateTime>,
                error: &str,
                class: &str,
                now: OffsetDateTime,
            ) -> Result<bool, sqlx::Error> {
                let status = if retry_at.is_some() { "failed" } else { "dead" };
                let done = sqlx::query(
                    "UPDATE jobs SET status = $4, run_at = COALESCE($5, run_at), \
                        last_error = $6, last_error_class = $7, lease_owner = NULL, \
                        lease_expires_at = NULL, updated_at = $8, \
                        finished_at = CASE WHEN $4 = 'dead' THEN $8 ELSE NULL END \
                     WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'",
                )
                .bind(id)
                .bind(owner)
                .bind(attempt)
                .bind(status)
                .bind(retry_at.map($time))
                .bind(error)
                .bind(class)
                .bind($time(now))
                .execute(&mut *conn)
                .await?
                .rows_affected();
                Ok(done == 1)
            }

            pub(in crate::queue) async fn heartbeat(
                conn: &mut $conn,
                owner: &str,
                expires_at: OffsetDateTime,
            ) -> Result<u64, sqlx::Error> {
                Ok(sqlx::query(
                    "UPDATE jobs SET lease_expires_at = $2 \
                     WHERE lease_owner = $1 AND status = 'running'",
                )
                .bind(owner)
                .bind($time(expires_at))
                .execute(&mut *conn)
                .await?
                .rows_affected())
            }

            /// Gives jobs back without counting the attempt: they did not fail, we stopped.
            pub(in crate::queue) async fn release(
                conn: &mut $conn,
                owner: &str,
                id: Option<&str>,
                now: OffsetDateTime,
            ) -> Result<u64, sqlx::Error> {
                Ok(sqlx::query(
                    "UPDATE jobs SET status = 'queued', attempts = attempts - 1, \
                        lease_owner = NULL, lease_expires_at = NULL, run_at = $3, updated_at = $3 \
                     WHERE lease_owner = $1 AND status = 'running' AND ($2 IS NULL OR id = $2)",
                )
                .bind(owner)
                .bind(id)
                .bind($time(now))
                .execute(&mut *conn)
                .await?
                .rows_affected())
            }

            /// Puts jobs whose lease ran out (their process died or stalled) back in the queue.
            /// The attempt stays counted: the worker's claim sends a job that has used up its
            /// attempts this way to `dead` instead of running it forever.
            pub(in crate::queue) async fn reap(
                conn: &mut $conn,
                now: OffsetDateTime,
            ) -> Result<Vec<(String,)>, sqlx::Error> {
                sqlx::query_as(
                    "UPDATE jobs SET status = 'queued', lease_owner = NULL, \
                        lease_expires_at = NULL, last_error = 'lease expired', \
                        last_error_class = 'internal', updated_at = $1 \
                     WHERE status = 'running' AND lease_expires_at < $1 RETURNING kind",
                )
                .bind($time(now))
                .fetch_all(&mut *conn)
                .await
            }

            pub(in crate::queue) async fn requeue_dead(
                conn: &mut $conn,
                id: &str,
                now: OffsetDateTime,
            ) -> Result<bool, sqlx::Error> {
                let done = sqlx::query(
                    "UPDATE jobs SET status = 'queued', attempts = 0, run_at = $2, \
                        finished_at = NULL, updated_at = $2 \
                     WHERE id = $1 AND status = 'dead'",
                )
                .bind(id)
                .bind($time(now))
                .execute(&mut *conn)
                .await?
                .rows_affected();
                Ok(done == 1)
            }

            pub(in crate::queue) async fn counts(
                conn: &mut $conn,
            ) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
                // Succeeded rows only grow until purged; they are counted by the run-time
                // histogram instead.
                sqlx::query_as(
                    "SELECT kind, status, COUNT(*) FROM jobs WHERE status <> 'succeeded' \
                     GROUP BY kind, status",
                )
                .fetch_all(&mut *conn)
                .await
            }

            pub(in crate::queue) async fn tenant_backlog(
                conn: &mut $conn,
                limit: i64,
            ) -> Result<Vec<(String, i64)>, sqlx::Error> {
                sqlx::query_as(
                    "SELECT tenant_id, COUNT(*) AS backlog FROM jobs \
                     WHERE status IN ('queued', 'failed') AND tenant_id IS NOT NULL \
                     GROUP BY tenant_id ORDER BY backlog DESC, tenant_id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&mut *conn)
                .await
            }

            pub(in crate::queue) async fn next_run_at(
                conn: &mut $conn,
            ) -> Result<Option<OffsetDateTime>, sqlx::Error> {
                let row: Option<(OffsetDateTime,)> = sqlx::query_as(
                    "SELECT run_at FROM jobs WHERE status IN ('queued', 'failed') \
                     ORDER BY run_at LIMIT 1",
                )
                .fetch_optional(&mut *conn)
                .await?;
                Ok(row.map(|(t,)| t))
            }

            pub(in crate::queue) async fn purge_succeeded(
                conn: &mut $conn,
                before: OffsetDateTime,
            ) -> Result<u64, sqlx::Error> {
                Ok(sqlx::query(
                    "DELETE FROM jobs WHERE status = 'succeeded' AND finished_at < $1",
                )
                .bind($time(before))
                .execute(&mut *conn)
                .await?
                .rows_affected())
            }
        }
    };
}

queue_statements!(
    sqlite,
    sqlx::SqliteConnection,
    super::sqlite_time,
    super::sqlite_list,
    super::SQLITE_CLAIM,
    super::SQLITE_COMPLETE_MANY
);
queue_statements!(
    postgres,
    sqlx::PgConnection,
    super::postgres_time,
    super::postgres_list,
    super::POSTGRES_CLAIM,
    super::POSTGRES_COMPLETE_MANY
);
