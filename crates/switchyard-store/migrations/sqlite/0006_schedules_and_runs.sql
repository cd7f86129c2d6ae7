-- Schedules, runs and run attempts (owned by switchyard-jobs: `schedule` and `runs` modules).
-- Times are RFC 3339 text in UTC with exactly six fraction digits (the jobs crate binds them
-- itself), so text comparison is time order and equal times are equal strings.
-- Rows of a tenant go with it when it is purged (ON DELETE CASCADE); `tenant_id` NULL means
-- the platform's own (purges and the like).

-- A recurring schedule. The spec is either an interval (every_seconds, jitter_percent) or a
-- cron expression in an IANA time zone; the CHECK keeps the two shapes apart.
CREATE TABLE schedules (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    subject         TEXT NOT NULL,
    job_kind        TEXT NOT NULL,
    job_payload     TEXT NOT NULL,
    spec_type       TEXT NOT NULL,
    every_seconds   INTEGER,
    jitter_percent  INTEGER,
    cron_expression TEXT,
    time_zone       TEXT,
    catch_up        TEXT NOT NULL CHECK (catch_up IN ('skip', 'run_once')),
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    next_tick       TEXT NOT NULL,
    last_tick       TEXT,
    -- Bumped by every change; the scheduler's compare-and-swap checks it with next_tick.
    revision        INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    CHECK (
        (spec_type = 'interval' AND every_seconds > 0 AND jitter_percent BETWEEN 0 AND 50
            AND cron_expression IS NULL AND time_zone IS NULL)
        OR (spec_type = 'cron' AND every_seconds IS NULL AND jitter_percent IS NULL
            AND cron_expression IS NOT NULL AND time_zone IS NOT NULL)
    )
);
-- The scheduler's poll: enabled schedules by next tick.
CREATE INDEX schedules_due ON schedules (next_tick) WHERE enabled;
CREATE INDEX schedules_by_subject ON schedules (tenant_id, subject, id);

-- A run: the user-visible record of one unit of work. Counters are a JSON object of
-- integers. `retry_of` links a retry to the run it repeats; `retried_by` is set on the
-- original so it is retried at most once.
CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    subject       TEXT NOT NULL,
    trigger_kind  TEXT NOT NULL CHECK (trigger_kind IN ('schedule', 'manual', 'webhook', 'retry')),
    status        TEXT NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    job_kind      TEXT NOT NULL,
    job_payload   TEXT NOT NULL,
    job_id        TEXT,
    retry_of      TEXT REFERENCES runs (id) ON DELETE SET NULL,
    retried_by    TEXT,
    counters      TEXT NOT NULL,
    error_class   TEXT CHECK (error_class IN
        ('auth', 'rate_limited', 'provider_unavailable', 'timeout', 'invalid_response', 'internal')),
    error_message TEXT,
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT
);
CREATE INDEX runs_by_tenant ON runs (tenant_id, id);
CREATE INDEX runs_by_subject ON runs (tenant_id, subject, id);
CREATE INDEX runs_by_status ON runs (tenant_id, status, id);
CREATE INDEX runs_by_created ON runs (tenant_id, created_at);

-- One execution of a run (the queue's automatic retries add attempts).
CREATE TABLE run_attempts (
    run_id        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    attempt       INTEGER NOT NULL CHECK (attempt > 0),
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    outcome       TEXT CHECK (outcome IN ('succeeded', 'failed', 'cancelled', 'abandoned')),
    error_class   TEXT CHECK (error_class IN
        ('auth', 'rate_limited', 'provider_unavailable', 'timeout', 'invalid_response', 'internal')),
    error_message TEXT,
    duration_ms   INTEGER,
    counters      TEXT NOT NULL,
    PRIMARY KEY (run_id, attempt)
);
