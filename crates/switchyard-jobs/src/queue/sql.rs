//! The queue's statements, written once and instantiated per backend by [`queue_statements!`].
//!
//! How a list is bound differs between engines and is a macro argument (a JSON array read
//! with `json_each` on SQLite, a `text[]` on PostgreSQL); times are bound as [`DbTime`] on
//! both. The claim statement differs in substance and is written per backend below.

use switchyard_store::DbTime;
use time::OffsetDateTime;

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

/// Times are bound as the store's one encoding on both engines (fixed-width UTC text on SQLite,
/// so text comparison is time order; `timestamptz` on PostgreSQL).
pub(super) fn bind_time(time: OffsetDateTime) -> DbTime {
    DbTime::new(time)
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

// The fair claim, index-driven (`jobs_claim` in migration 0007: `(kind, COALESCE(tenant_id,
// ''), priority DESC, run_at, id) WHERE status IN ('queued', 'failed')`), so its cost depends
// on the number of (kind, tenant) groups with runnable jobs and the batch size, not on the
// backlog:
//
// 1. `groups`: the distinct tenants per requested kind, by a loose index scan (one index
//    descent per group, each seeking past the previous tenant). Platform jobs are tenant ''.
// 2. `quota`: q = min(per-tenant cap, ceil(candidates / groups)) jobs per group, at least 1.
// 3. `heads`: each group's first q runnable jobs straight off the index, in claim order.
// 4. Rank within the tenant (across its kinds) and take every tenant's first job before
//    anyone's second, then by priority and run_at: one tenant's backlog delays another
//    tenant's job by at most one claim per tenant ahead of it. Ranks up to q are exact (each
//    kind contributed its own first q), so only those are kept.
//
// A claim can return fewer jobs than asked while more are runnable (q rows per group are a
// sample, not the whole backlog); the worker simply claims again.
//
// Binds, the same on both backends: $1 now, $2 kinds, $3 excluded tenants, $4 per-tenant
// cap, $5 limit, $6 owner, $7 lease expiry, $8 candidates.
macro_rules! claim_ranking {
    (
        kinds: $kinds:literal,
        excluded: $excluded:literal,
        group_jobs: $open:literal ... $close:literal,
        group_columns: $columns:literal,
        quota_also: $quota_also:literal $(,)?
    ) => {
        concat!(
            "WITH RECURSIVE groups(kind, tenant) AS ( \
                SELECT k.value, (SELECT COALESCE(j.tenant_id, '') FROM jobs j \
                    WHERE j.status IN ('queued', 'failed') AND j.kind = k.value \
                    ORDER BY COALESCE(j.tenant_id, '') LIMIT 1) \
                FROM ",
            $kinds,
            " \
                UNION ALL \
                SELECT g.kind, (SELECT COALESCE(j.tenant_id, '') FROM jobs j \
                    WHERE j.status IN ('queued', 'failed') AND j.kind = g.kind \
                      AND COALESCE(j.tenant_id, '') > g.tenant \
                    ORDER BY COALESCE(j.tenant_id, '') LIMIT 1) \
                FROM groups g WHERE g.tenant IS NOT NULL \
             ), eligible AS ( \
                SELECT kind, tenant FROM groups \
                WHERE tenant IS NOT NULL AND NOT (",
            $excluded,
            ") \
             ), quota AS ( \
                SELECT CASE WHEN n = 0 THEN 1 WHEN ($8 + n - 1) / n > $4 THEN $4 \
                    ELSE ($8 + n - 1) / n END AS q \
                FROM (SELECT COUNT(*) AS n FROM eligible) counted",
            $quota_also,
            " \
             ), heads AS ( \
                SELECT h.id, g.tenant, h.priority, h.run_at FROM eligible g ",
            $open,
            "SELECT ",
            $columns,
            " FROM jobs j \
                    WHERE j.status IN ('queued', 'failed') AND j.kind = g.kind \
                      AND COALESCE(j.tenant_id, '') = g.tenant AND j.run_at <= $1 \
                    ORDER BY j.priority DESC, j.run_at, j.id \
                    LIMIT (SELECT q FROM quota)",
            $close,
            " \
             ), ranked AS ( \
                SELECT id, priority, run_at, row_number() OVER ( \
                    PARTITION BY tenant ORDER BY priority DESC, run_at, id) AS tenant_rank \
                FROM heads \
             ), candidates AS ( \
                SELECT id, tenant_rank, priority, run_at FROM ranked \
                WHERE tenant_rank <= (SELECT q FROM quota) \
                ORDER BY tenant_rank, priority DESC, run_at, id LIMIT $8 \
             ) "
        )
    };
}

/// SQLite has no LATERAL: `j.id IN (correlated subquery)` is evaluated per group and looked up
/// by primary key, which is the same plan. One statement, so it is atomic without an explicit
/// write transaction (SQLite has a single writer; nothing to skip).
const SQLITE_CLAIM: &str = concat!(
    claim_ranking!(
        kinds: "json_each($2) AS k",
        excluded: "tenant IN (SELECT value FROM json_each($3))",
        group_jobs: "JOIN jobs h ON h.id IN (" ... ")",
        group_columns: "j.id",
        quota_also: "",
    ),
    "UPDATE jobs SET status = 'running', attempts = attempts + 1, \
        lease_owner = $6, lease_expires_at = $7, started_at = $1, updated_at = $1 \
     WHERE id IN (SELECT id FROM candidates \
        ORDER BY tenant_rank, priority DESC, run_at, id LIMIT $5) \
     RETURNING "
);

/// As on SQLite, plus `FOR UPDATE SKIP LOCKED` so concurrent claimers in other processes take
/// disjoint jobs without waiting on each other; the lock re-checks the status, so a job
/// claimed and committed by another process meanwhile is not taken twice.
///
/// The claim commits with `synchronous_commit = off` (transaction-local, set inside the
/// statement so it costs no round trip): it returns without waiting for the WAL flush, which
/// on a slow disk is most of a claim's time. This loses nothing the queue promises. Other
/// sessions see the claim at commit either way; only a *server* crash within the WAL writer's
/// delay (well under a second) can forget it, and then the job is simply `queued` again: the
/// worker's completion finds no lease (`status = 'running'` fails) and reports it lost, and
/// the job runs again, which at-least-once delivery already allows (handlers are
/// idempotent). The attempt is then not counted. Enqueues and completions keep synchronous
/// commits: an enqueue that returned, and a success once recorded, survive a crash. A later
/// synchronous commit also flushes every earlier WAL record, so a recorded completion implies
/// its claim is durable.
const POSTGRES_CLAIM: &str = concat!(
    claim_ranking!(
        kinds: "unnest($2::text[]) AS k(value)",
        excluded: "tenant = ANY($3)",
        group_jobs: "CROSS JOIN LATERAL (" ... ") h",
        group_columns: "j.id, j.priority, j.run_at",
        // Evaluated once, with the quota; see the note above on why a claim need not wait
        // for its WAL flush.
        quota_also: ", (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed",
    ),
    ", locked AS ( \
        SELECT j.id AS locked_id FROM jobs j JOIN candidates c ON c.id = j.id \
        WHERE j.status IN ('queued', 'failed') \
        ORDER BY c.tenant_rank, c.priority DESC, c.run_at, c.id \
        LIMIT $5 FOR UPDATE OF j SKIP LOCKED \
     ) \
     UPDATE jobs SET status = 'running', attempts = attempts + 1, \
        lease_owner = $6, lease_expires_at = $7, started_at = $1, updated_at = $1 \
     FROM locked WHERE jobs.id = locked.locked_id RETURNING "
);

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
    ($module:ident, $conn:ty, $list:path, $claim:expr, $complete_many:expr) => {
        pub(super) mod $module {
            use time::OffsetDateTime;

            use super::{COLUMNS, ClaimParams, JobRow};

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
                    .bind(super::bind_time(params.now))
                    .bind($list(params.kinds))
                    .bind($list(params.exclude_tenants))
                    .bind(params.per_tenant)
                    .bind(params.limit)
                    .bind(params.owner)
                    .bind(super::bind_time(params.lease_expires_at))
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
                .bind(super::bind_time(now))
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
                    .bind(super::bind_time(now))
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
                .bind(retry_at.map(super::bind_time))
                .bind(error)
                .bind(class)
                .bind(super::bind_time(now))
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
                .bind(super::bind_time(expires_at))
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
                .bind(super::bind_time(now))
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
                .bind(super::bind_time(now))
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
                .bind(super::bind_time(now))
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
        }
    };
}

queue_statements!(
    sqlite,
    sqlx::SqliteConnection,
    super::sqlite_list,
    super::SQLITE_CLAIM,
    super::SQLITE_COMPLETE_MANY
);
queue_statements!(
    postgres,
    sqlx::PgConnection,
    super::postgres_list,
    super::POSTGRES_CLAIM,
    super::POSTGRES_COMPLETE_MANY
);

/// Several enqueues in one statement (PostgreSQL): one round trip for a batch instead of one
/// per job. Rows whose unique key exists are skipped, as the single-row insert skips them;
/// rows go in in batch order, so of two with the same key the first is kept, as with one
/// insert per job. Returns the ids inserted.
/// SQLite enqueue: the batch in one statement, as JSON objects read with `json_each`, so the
/// text is the same for every batch size (it stays cached) and has no bound-parameter limit.
/// Returns the ids inserted; the others met an existing unique key.
pub(super) async fn sqlite_insert_many(
    conn: &mut sqlx::SqliteConnection,
    rows: &[(String, &crate::queue::NewJob)],
    now: OffsetDateTime,
) -> Result<Vec<String>, sqlx::Error> {
    let jobs: Vec<serde_json::Value> = rows
        .iter()
        .map(|(id, job)| {
            serde_json::json!({
                "id": id,
                "kind": job.kind,
                "tenant_id": job.tenant.map(|t| t.to_string()),
                "payload": job.payload,
                "priority": job.priority,
                "run_at": DbTime::new(job.run_at.unwrap_or(now)).to_sqlite_text(),
                "max_attempts": job.max_attempts.map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
                "unique_key": job.unique_key,
            })
        })
        .collect();
    // `json(… -> 'payload')` stores the payload as the same JSON text a bound `Json` would;
    // the `WHERE` keeps SQLite's parser from reading `ON CONFLICT` as a join constraint.
    let inserted: Vec<(String,)> = sqlx::query_as(
        "INSERT INTO jobs (id, kind, tenant_id, payload, priority, status, run_at, attempts, \
            max_attempts, unique_key, created_at, updated_at) \
         SELECT value ->> 'id', value ->> 'kind', value ->> 'tenant_id', \
            json(value -> 'payload'), value ->> 'priority', 'queued', value ->> 'run_at', 0, \
            value ->> 'max_attempts', value ->> 'unique_key', $2, $2 \
         FROM json_each($1) WHERE true ORDER BY key \
         ON CONFLICT (unique_key) DO NOTHING RETURNING id",
    )
    .bind(serde_json::Value::from(jobs).to_string())
    .bind(bind_time(now))
    .fetch_all(&mut *conn)
    .await?;
    Ok(inserted.into_iter().map(|(id,)| id).collect())
}

pub(super) async fn postgres_insert_many(
    conn: &mut sqlx::PgConnection,
    rows: &[(String, &crate::queue::NewJob)],
    now: OffsetDateTime,
) -> Result<Vec<String>, sqlx::Error> {
    let mut ids = Vec::with_capacity(rows.len());
    let mut kinds = Vec::with_capacity(rows.len());
    let mut tenants = Vec::with_capacity(rows.len());
    let mut payloads = Vec::with_capacity(rows.len());
    let mut priorities = Vec::with_capacity(rows.len());
    let mut run_ats = Vec::with_capacity(rows.len());
    let mut max_attempts = Vec::with_capacity(rows.len());
    let mut unique_keys = Vec::with_capacity(rows.len());
    for (id, job) in rows {
        ids.push(id.clone());
        kinds.push(job.kind.clone());
        tenants.push(job.tenant.map(|t| t.to_string()));
        payloads.push(sqlx::types::Json(&job.payload));
        priorities.push(job.priority);
        run_ats.push(job.run_at.unwrap_or(now));
        max_attempts.push(
            job.max_attempts
                .map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
        );
        unique_keys.push(job.unique_key.clone());
    }
    let inserted: Vec<(String,)> = sqlx::query_as(
        "INSERT INTO jobs (id, kind, tenant_id, payload, priority, status, run_at, attempts, \
            max_attempts, unique_key, created_at, updated_at) \
         SELECT id, kind, tenant_id, payload, priority, 'queued', run_at, 0, max_attempts, \
            unique_key, $9, $9 \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::int4[], \
            $6::timestamptz[], $7::int4[], $8::text[]) WITH ORDINALITY \
            AS n(id, kind, tenant_id, payload, priority, run_at, max_attempts, unique_key, nth) \
         ORDER BY nth \
         ON CONFLICT (unique_key) DO NOTHING RETURNING id",
    )
    .bind(ids)
    .bind(kinds)
    .bind(tenants)
    .bind(payloads)
    .bind(priorities)
    .bind(run_ats)
    .bind(max_attempts)
    .bind(unique_keys)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    Ok(inserted.into_iter().map(|(id,)| id).collect())
}
