-- Schedules, runs and run attempts (owned by switchyard-jobs: `schedule` and `runs` modules).
-- Same tables as the SQLite migration, in PostgreSQL types.
-- Rows of a tenant go with it when it is purged (ON DELETE CASCADE); `tenant_id` NULL means
-- the platform's own (purges and the like).

-- A recurring schedule. The spec is either an interval (every_seconds, jitter_percent) or a
-- cron expression in an IANA time zone; the CHECK keeps the two shapes apart.
CREATE TABLE schedules (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    subject         TEXT NOT NULL,
    job_kind        TEXT NOT NULL,
    job_payload     JSONB NOT NULL,
    spec_type       TEXT NOT NULL,
    every_seconds   BIGINT,
    jitter_percent  BIGINT,
    cron_expression TEXT,
    time_zone       TEXT,
    catch_up        TEXT NOT NULL CHECK (catch_up IN ('skip', 'run_once')),
    enabled         BOOLEAN NOT NULL,
    next_tick       TIMESTAMPTZ NOT NULL,
    last_tick       TIMESTAMPTZ,
    -- Bumped by every change; the scheduler's compare-and-swap checks it with next_tick.
    revision        BIGINT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
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
    job_payload   JSONB NOT NULL,
    job_id        TEXT,
    retry_of      TEXT REFERENCES runs (id) ON DELETE SET NULL,
    retried_by    TEXT,
    counters      JSONB NOT NULL,
    error_class   TEXT CHECK (error_class IN
        ('auth', 'rate_limited', 'provider_unavailable', 'timeout', 'invalid_response', 'internal')),
    error_message TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ
);
CREATE INDEX runs_by_tenant ON runs (tenant_id, id);
CREATE INDEX runs_by_subject ON runs (tenant_id, subject, id);
CREATE INDEX runs_by_status ON runs (tenant_id, status, id);
CREATE INDEX runs_by_created ON runs (tenant_id, created_at);

-- One execution of a run (the queue's automatic retries add attempts).
CREATE TABLE run_attempts (
    run_id        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    attempt       BIGINT NOT NULL CHECK (attempt > 0),
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    outcome       TEXT CHECK (outcome IN ('succeeded', 'failed', 'cancelled', 'abandoned')),
    error_class   TEXT CHECK (error_class IN
        ('auth', 'rate_limited', 'provider_unavailable', 'timeout', 'invalid_response', 'internal')),
    error_message TEXT,
    duration_ms   BIGINT,
    counters      JSONB NOT NULL,
    PRIMARY KEY (run_id, attempt)
);
