-- Outbound webhooks (owned by switchyard-outbound; nothing else writes these tables).
-- Times are DbTime text (fixed-width UTC RFC 3339, microseconds), so text order is time order.
-- JSON columns are text on both engines so one SQL text serves both.
-- No foreign key to tenants, as for jobs: purging a tenant must not wait on its queue.

CREATE TABLE webhook_endpoints (
    id                          TEXT PRIMARY KEY,
    tenant_id                   TEXT NOT NULL,
    url                         TEXT NOT NULL,
    description                 TEXT NOT NULL DEFAULT '',
    -- JSON array of patterns (`a.b`, `a.*`); empty: every type.
    event_types                 TEXT NOT NULL,
    -- JSON object of extra request headers.
    headers                     TEXT NOT NULL,
    rate_limit                  INTEGER CHECK (rate_limit IS NULL OR rate_limit > 0),
    ordering                    TEXT NOT NULL CHECK (ordering IN ('none', 'key')),
    -- JSON array of milliseconds; NULL: the dispatcher's schedule.
    retry_schedule              TEXT,
    enabled                     BOOLEAN NOT NULL,
    disabled_reason             TEXT,
    -- Vault secret names and versions; the secrets themselves live only in the vault.
    secret_name                 TEXT NOT NULL,
    secret_version              INTEGER NOT NULL,
    secret_fingerprint          TEXT NOT NULL,
    signing_key_name            TEXT,
    signing_key_version         INTEGER,
    public_key                  TEXT,
    -- During a rotation's grace period deliveries are signed with the previous versions too.
    previous_secret_version     INTEGER,
    previous_signing_key_version INTEGER,
    previous_expires_at         TEXT,
    -- First failure since the last success (NULL: healthy); drives automatic disabling.
    failing_since               TEXT,
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_by_tenant ON webhook_endpoints (tenant_id, id);
CREATE INDEX webhook_endpoints_rotations ON webhook_endpoints (previous_expires_at)
    WHERE previous_expires_at IS NOT NULL;

CREATE TABLE webhook_events (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    -- The `webhook-id`: the caller's id (the idempotency key) or `id`.
    webhook_id   TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    ordering_key TEXT,
    -- The exact bytes signed and sent on every attempt.
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (tenant_id, webhook_id)
);
CREATE INDEX webhook_events_by_tenant ON webhook_events (tenant_id, id);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

-- The delivery queue. status: pending (waiting for next_attempt_at), sending (leased),
-- succeeded, failed (no attempt left, or the endpoint is gone: dead letter).
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    -- Set only for endpoints that order by key: the head of a key blocks the rest.
    ordering_key     TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'succeeded', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Attempts made before the last manual retry or replay: the schedule restarts there.
    retry_base       INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    finished_at      TEXT
);
-- Claiming: a loose index scan over endpoints with pending work, then each one's due rows.
CREATE INDEX webhook_deliveries_claim ON webhook_deliveries (endpoint_id, next_attempt_at, id)
    WHERE status = 'pending';
-- Ordering by key: is there an older unfinished delivery of the same key?
CREATE INDEX webhook_deliveries_ordering ON webhook_deliveries (endpoint_id, ordering_key, id)
    WHERE ordering_key IS NOT NULL AND status IN ('pending', 'sending');
CREATE INDEX webhook_deliveries_lease ON webhook_deliveries (lease_expires_at)
    WHERE status = 'sending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (finished_at)
    WHERE finished_at IS NOT NULL;

CREATE TABLE webhook_delivery_attempts (
    delivery_id       TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt           INTEGER NOT NULL,
    tenant_id         TEXT NOT NULL,
    endpoint_id       TEXT NOT NULL,
    started_at        TEXT NOT NULL,
    duration_ms       INTEGER NOT NULL,
    status_code       INTEGER,
    -- JSON object of response headers.
    response_headers  TEXT NOT NULL,
    -- The first 64 KiB of the response body, in the blob store (kind `delivery-response`).
    response_body_key TEXT,
    response_body_len INTEGER NOT NULL DEFAULT 0,
    error_class       TEXT,
    error             TEXT,
    succeeded         BOOLEAN NOT NULL,
    created_at        TEXT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX webhook_delivery_attempts_created ON webhook_delivery_attempts (created_at);
