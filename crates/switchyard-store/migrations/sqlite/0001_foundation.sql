-- Tenants, their API keys, idempotency records and platform settings.
-- Timestamps are RFC 3339 text in UTC (sqlx's encoding of time::OffsetDateTime).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    environment TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    -- SHA-256 of the whole key, hex. Keys carry 256 random bits, so a fast hash is enough.
    key_hash   TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, id);

CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    status_code     INTEGER,
    content_type    TEXT,
    response_body   BLOB,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);

CREATE TABLE platform_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
