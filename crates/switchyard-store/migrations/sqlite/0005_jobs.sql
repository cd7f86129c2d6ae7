-- Job queue (owned by switchyard-jobs; nothing else writes this table).
-- Timestamps are RFC 3339 text in UTC with exactly six fraction digits (the jobs crate binds
-- them itself), so text comparison is time order.
-- No foreign key to tenants: a purged tenant's jobs are removed by the purge job, and the
-- queue must not block the purge.

-- status: queued (waiting for run_at), running (leased by lease_owner until lease_expires_at),
-- failed (the last attempt failed; a retry waits for run_at), succeeded, dead (no retry left,
-- or the error was not retryable; kept for inspection and requeue).
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    tenant_id        TEXT,
    payload          TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    run_at           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- NULL: the kind's retry policy decides.
    max_attempts     INTEGER CHECK (max_attempts IS NULL OR max_attempts > 0),
    -- Enqueueing an existing key is a no-op for as long as the row exists.
    unique_key       TEXT UNIQUE,
    last_error       TEXT,
    last_error_class TEXT,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT
);
-- Claiming scans only runnable rows, in run_at order.
CREATE INDEX jobs_runnable ON jobs (run_at) WHERE status IN ('queued', 'failed');
-- Heartbeats and shutdown release go by owner; the reaper by lease expiry.
CREATE INDEX jobs_leased_by_owner ON jobs (lease_owner) WHERE status = 'running';
CREATE INDEX jobs_lease_expiry ON jobs (lease_expires_at) WHERE status = 'running';
-- Inspection of dead jobs and the depth gauges.
CREATE INDEX jobs_by_status_kind ON jobs (status, kind);
