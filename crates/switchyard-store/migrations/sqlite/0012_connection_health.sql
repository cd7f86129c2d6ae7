-- Connection health (owned by switchyard-health; nothing else writes these tables).
-- Times are DbTime text (fixed-width UTC RFC 3339, microseconds), so text order is time order.
-- No foreign key to tenants, as for jobs and webhooks: purging a tenant must not wait on them.

-- Attempts of provider calls per connection and minute. Every process adds its counts to the
-- same row (INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n), so several stateless
-- processes sharing the database sum up. latency_NN counts attempts per latency bucket
-- (upper bounds in switchyard_health::histogram::BOUNDS_MS).
CREATE TABLE connection_health_buckets (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    minute        TEXT NOT NULL,
    success       INTEGER NOT NULL DEFAULT 0,
    auth_failure  INTEGER NOT NULL DEFAULT 0,
    rate_limited  INTEGER NOT NULL DEFAULT 0,
    client_error  INTEGER NOT NULL DEFAULT 0,
    server_error  INTEGER NOT NULL DEFAULT 0,
    timeout       INTEGER NOT NULL DEFAULT 0,
    transport     INTEGER NOT NULL DEFAULT 0,
    circuit_open  INTEGER NOT NULL DEFAULT 0,
    latency_00    INTEGER NOT NULL DEFAULT 0,
    latency_01    INTEGER NOT NULL DEFAULT 0,
    latency_02    INTEGER NOT NULL DEFAULT 0,
    latency_03    INTEGER NOT NULL DEFAULT 0,
    latency_04    INTEGER NOT NULL DEFAULT 0,
    latency_05    INTEGER NOT NULL DEFAULT 0,
    latency_06    INTEGER NOT NULL DEFAULT 0,
    latency_07    INTEGER NOT NULL DEFAULT 0,
    latency_08    INTEGER NOT NULL DEFAULT 0,
    latency_09    INTEGER NOT NULL DEFAULT 0,
    latency_10    INTEGER NOT NULL DEFAULT 0,
    latency_11    INTEGER NOT NULL DEFAULT 0,
    latency_12    INTEGER NOT NULL DEFAULT 0,
    latency_13    INTEGER NOT NULL DEFAULT 0,
    latency_14    INTEGER NOT NULL DEFAULT 0,
    latency_15    INTEGER NOT NULL DEFAULT 0,
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
    status_changed_at    TEXT,
    last_success_at      TEXT,
    last_failure_at      TEXT,
    -- Drives the rule "a refused credential with no success since is unhealthy".
    last_auth_failure_at TEXT,
    -- JSON array of the last errors, oldest first: time, method, route template, status,
    -- class and a stable code. Never request or response content.
    recent_errors        TEXT NOT NULL DEFAULT '[]',
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (tenant_id, connection_id)
);
CREATE INDEX connection_health_updated ON connection_health (updated_at);
