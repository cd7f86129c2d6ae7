-- Connection health (owned by switchyard-health; nothing else writes these tables).
-- Same tables as the SQLite migration, in PostgreSQL types.
-- No foreign key to tenants, as for jobs and webhooks: purging a tenant must not wait on them.

-- Attempts of provider calls per connection and minute. Every process adds its counts to the
-- same row (INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n), so several stateless
-- processes sharing the database sum up. latency_NN counts attempts per latency bucket
-- (upper bounds in switchyard_health::histogram::BOUNDS_MS).
CREATE TABLE connection_health_buckets (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    minute        TIMESTAMPTZ NOT NULL,
    success       BIGINT NOT NULL DEFAULT 0,
    auth_failure  BIGINT NOT NULL DEFAULT 0,
    rate_limited  BIGINT NOT NULL DEFAULT 0,
    client_error  BIGINT NOT NULL DEFAULT 0,
    server_error  BIGINT NOT NULL DEFAULT 0,
    timeout       BIGINT NOT NULL DEFAULT 0,
    transport     BIGINT NOT NULL DEFAULT 0,
    circuit_open  BIGINT NOT NULL DEFAULT 0,
    latency_00    BIGINT NOT NULL DEFAULT 0,
    latency_01    BIGINT NOT NULL DEFAULT 0,
    latency_02    BIGINT NOT NULL DEFAULT 0,
    latency_03    BIGINT NOT NULL DEFAULT 0,
    latency_04    BIGINT NOT NULL DEFAULT 0,
    latency_05    BIGINT NOT NULL DEFAULT 0,
    latency_06    BIGINT NOT NULL DEFAULT 0,
    latency_07    BIGINT NOT NULL DEFAULT 0,
    latency_08    BIGINT NOT NULL DEFAULT 0,
    latency_09    BIGINT NOT NULL DEFAULT 0,
    latency_10    BIGINT NOT NULL DEFAULT 0,
    latency_11    BIGINT NOT NULL DEFAULT 0,
    latency_12    BIGINT NOT NULL DEFAULT 0,
    latency_13    BIGINT NOT NULL DEFAULT 0,
    latency_14    BIGINT NOT NULL DEFAULT 0,
    latency_15    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, connection_id, minute)
);
-- Retention deletes by age.
CREATE INDEX connection_health_buckets_minute ON connection_health_buckets (minute);

-- One row per connection: what outlives the window, and the status last announced.
-- `status` changes only by compare-and-set, so of several processes one emits each change.
CREATE TABLE connection_health (
    tenant_id            TEXT NOT NULL,
    connection_id        TEXT NOT NULL,
    provider             TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('healthy', 'degraded', 'unhealthy')),
    status_changed_at    TIMESTAMPTZ,
    last_success_at      TIMESTAMPTZ,
    last_failure_at      TIMESTAMPTZ,
    -- Drives the rule "a refused credential with no success since is unhealthy".
    last_auth_failure_at TIMESTAMPTZ,
    -- JSON array of the last errors, oldest first: time, method, route template, status,
    -- class and a stable code. Never request or response content.
    recent_errors        TEXT NOT NULL DEFAULT '[]',
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, connection_id)
);
CREATE INDEX connection_health_updated ON connection_health (updated_at);
